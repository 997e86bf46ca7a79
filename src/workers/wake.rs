//! One app's wake-up signals for its delivery workers. The handle lives in the app state, so
//! two apps in one process (parallel tests) never wake each other's workers.

use std::sync::Arc;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Wakes idle delivery workers of this app; cheap to clone (clones share the signals).
#[derive(Clone, Default)]
pub struct Wake {
    signals: Arc<Signals>,
}

#[derive(Default)]
struct Signals {
    deliveries: Notify,
    inbound: Notify,
}

impl Wake {
    /// Deliveries were enqueued (or a channel needs registering): idle workers look for work,
    /// and a running inbound pass yields to it.
    pub fn deliveries(&self) {
        self.signals.deliveries.notify_waiters();
    }

    /// A channel's inbox became due (the inbound watcher's call). Kept apart from
    /// [`Wake::deliveries`] so our own sends, seen on the streams, never interrupt an inbound
    /// pass.
    pub fn inbound(&self) {
        self.signals.inbound.notify_waiters();
    }

    /// Completes at the next [`Wake::deliveries`] after it is enabled (or first polled).
    pub(crate) fn deliveries_notified(&self) -> Notified<'_> {
        self.signals.deliveries.notified()
    }

    /// Completes at the next [`Wake::inbound`] after it is enabled (or first polled).
    pub(crate) fn inbound_notified(&self) -> Notified<'_> {
        self.signals.inbound.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handles_are_separate_and_clones_share() {
        let a = Wake::default();
        let b = Wake::default();
        let waiting = a.deliveries_notified();
        tokio::pin!(waiting);
        waiting.as_mut().enable();
        let inbound = a.inbound_notified();
        tokio::pin!(inbound);
        inbound.as_mut().enable();
        b.deliveries();
        a.inbound();
        assert!(
            futures_util::poll!(waiting.as_mut()).is_pending(),
            "another app's wake"
        );
        assert!(futures_util::poll!(inbound.as_mut()).is_ready());
        a.clone().deliveries();
        assert!(futures_util::poll!(waiting.as_mut()).is_ready());
    }
}

//! One app's wake-up signals for its delivery workers. The handle lives in the app state, so
//! two apps in one process (parallel tests) never wake each other's workers.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::futures::Notified;
use tokio::sync::{Mutex, Notify};

/// Wakes idle delivery workers of this app; cheap to clone (clones share the signals).
#[derive(Clone, Default)]
pub struct Wake {
    signals: Arc<Signals>,
}

#[derive(Default)]
struct Signals {
    deliveries: Notify,
    inbound: Notify,
    /// A notice to other replicas is queued (spawned, not yet started).
    others_queued: AtomicBool,
    /// Held while a notice to other replicas runs: one at a time.
    others_running: Mutex<()>,
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

    /// Runs `notice` (telling other replicas' workers about new deliveries: Postgres
    /// `NOTIFY`) in the background, coalesced: one runs at a time, calls made meanwhile share
    /// one more that starts after them, and the caller never waits. A `NOTIFY` is a commit,
    /// flushed to disk while holding Postgres's cluster-wide notification-queue lock, so one
    /// per announcement queued every request behind the others' flushes (issue 15).
    pub fn others<F, Fut>(&self, notice: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        if self.signals.others_queued.swap(true, Ordering::AcqRel) {
            // The queued notice has not started yet, so it covers this call too.
            return;
        }
        let signals = self.signals.clone();
        tokio::spawn(async move {
            let _one = signals.others_running.lock().await;
            signals.others_queued.store(false, Ordering::Release);
            notice().await;
        });
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

    #[tokio::test]
    async fn notices_to_other_replicas_coalesce_but_follow_every_call() {
        let wake = Wake::default();
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
        let notice = |label: u32| {
            let done = done.clone();
            move || async move { done.send(label).expect("receiver alive") }
        };
        // A burst before the first notice starts: one notice covers all of it.
        for label in 1..=10 {
            wake.others(notice(label));
        }
        assert_eq!(finished.recv().await, Some(1));
        // A later call gets a notice of its own (the burst left none queued behind it).
        wake.others(notice(11));
        assert_eq!(finished.recv().await, Some(11));
    }
}

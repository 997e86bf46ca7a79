//! The delivery pipeline: workers that turn pending `deliveries` rows into XMTP DM messages.
//!
//! One step ([`Worker::run_once`]): take the sender lease of a channel with due work, open its
//! XMTP client (state in the database), then drain it batch by batch: claim due rows (critical
//! first), skip unsubscribed and not-on-XMTP recipients, resolve inbox ids (≤50 per call),
//! create missing DMs, encrypt and publish everything in batched SendGroupMessages calls (MLS
//! state is persisted before anything is published), and settle the batch in one transaction
//! fenced by the lease token. A crash anywhere leaves leased rows that become claimable again
//! when the lease expires; the resend carries the same idempotency key, which receivers dedupe.
//!
//! Workers wake on the app's [`Wake`] (announcements created in this process), on
//! [`PipelineStore::wake_others`](crate::store::PipelineStore::wake_others) from other replicas
//! (Postgres `NOTIFY`, heard through `listen_others`), and otherwise poll every [`IDLE_POLL`].
//!
//! Inbound chat rides on the same lease and client ([`inbound`]): after draining, a worker
//! reads the channel's inbox when it is due — a stream saw something arrive
//! ([`crate::workers::inbound_watch`]) or the periodic fallback came round — and channels with
//! only inbound work are candidates too. So each channel identity has one MLS writer, and an
//! expired lease hands both jobs to another replica.

mod clients;
pub mod content;
pub mod governor;
mod inbound;
mod prepare;
mod rounds;
mod send;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::crypto::MasterKey;
use crate::inbound::ChatLimiter;
use crate::store::pipeline::SenderLease;
use crate::store::{InboundPlan, Store};
use crate::workers::{Outcome, Wake};
use crate::xmtp::channel::{open_client, ChannelXmtpError};
use crate::xmtp::Xmtp;
use clients::{ClientCache, OpenClient};
use governor::Governor;
use inbound::Deferrals;

/// Poll interval when idle (wake-ups usually come sooner).
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// Pause after an unexpected error in a step.
const ERROR_PAUSE: Duration = Duration::from_secs(2);
/// How long a channel whose client cannot be opened is left alone.
const CHANNEL_HOLD_OFF: chrono::Duration = chrono::Duration::seconds(10);
/// Channels looked at per step.
const CANDIDATES: i64 = 16;
/// How long a shutdown waits for a worker's step to end on its own (it stops between
/// batches) before dropping it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Completes [`SHUTDOWN_GRACE`] after `shutdown` fires.
async fn grace_expired(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}
/// Channel clients kept open between drains, per worker.
const KEPT_CLIENTS_PER_WORKER: usize = 2;

/// Everything a worker needs; cheap to clone.
#[derive(Clone)]
pub struct Worker {
    pub store: Arc<dyn Store>,
    pub kek: Arc<MasterKey>,
    pub xmtp: Arc<Xmtp>,
    governor: Option<Arc<Governor>>,
    /// Channel clients kept open between drains (shared by this process's workers).
    clients: Arc<ClientCache>,
    id: String,
    /// Reply to a first chat message when the channel has no welcome text of its own.
    welcome: Arc<str>,
    /// Inbound passes put off for new deliveries (shared by this process's workers).
    deferrals: Arc<Deferrals>,
    /// Per-sender limits on chat commands (shared by this process's workers).
    chat_limits: Arc<ChatLimiter>,
    /// The app's wake-up signals.
    wake: Wake,
}

/// Builds `n` workers sharing the deployment's XMTP write budget.
pub fn workers(
    store: Arc<dyn Store>,
    kek: Arc<MasterKey>,
    xmtp: Arc<Xmtp>,
    wake: Wake,
) -> Vec<Worker> {
    let c = &xmtp.config;
    let governor = xmtp.governor_on().then(|| {
        let shape = governor::Shape::new(
            c.rate_burst,
            c.rate_per_minute,
            c.rate_multiplier,
            c.rate_reserve_percent,
        );
        Arc::new(Governor::new(
            store.clone(),
            format!("writes {}", xmtp.url),
            shape,
        ))
    });
    let process = ulid::Ulid::new().to_string();
    let deferrals = Arc::new(Deferrals::default());
    let chat_limits = Arc::new(ChatLimiter::new(
        c.inbound_commands_per_minute,
        c.inbound_command_burst,
    ));
    let clients = Arc::new(ClientCache::new(
        KEPT_CLIENTS_PER_WORKER * c.workers,
        c.resident_groups,
    ));
    (0..c.workers)
        .map(|i| Worker {
            store: store.clone(),
            kek: kek.clone(),
            xmtp: xmtp.clone(),
            governor: governor.clone(),
            clients: clients.clone(),
            id: format!("w{i}-{process}"),
            // `spawn` sets the configured text; the command list is a sane stand-in.
            welcome: Arc::from(crate::inbound::handler::HELP_TEXT),
            deferrals: deferrals.clone(),
            chat_limits: chat_limits.clone(),
            wake: wake.clone(),
        })
        .collect()
}

impl Worker {
    /// Sets the default welcome text for first chat contacts.
    pub fn with_welcome(mut self, text: &str) -> Self {
        self.welcome = Arc::from(text);
        self
    }

    fn lease_len(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.xmtp.config.lease_secs.max(2) as i64)
    }

    /// Runs until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(worker = %self.id, "delivery worker started");
        loop {
            let notified = self.wake.deliveries_notified();
            let inbound = self.wake.inbound_notified();
            tokio::pin!(notified, inbound);
            notified.as_mut().enable();
            inbound.as_mut().enable();
            // A step sees the shutdown itself (between batches) and then gives its sender
            // lease back, so a restart resumes at once; only a step still busy after
            // SHUTDOWN_GRACE is dropped, its lease left to expire.
            let pause = tokio::select! {
                () = grace_expired(&shutdown) => break,
                r = self.run_once(&shutdown) => match r {
                    Ok(Outcome::Worked(_)) => continue,
                    Ok(Outcome::Idle) => IDLE_POLL,
                    Err(e) => {
                        tracing::warn!(worker = %self.id, error = %e, "delivery step failed");
                        ERROR_PAUSE
                    }
                },
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut notified => {}
                _ = &mut inbound => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Takes one channel with work and drains it.
    pub async fn run_once(&self, shutdown: &CancellationToken) -> anyhow::Result<Outcome> {
        if shutdown.is_cancelled() {
            return Ok(Outcome::Idle);
        }
        let now = Utc::now();
        let pipeline = self.store.pipeline();
        let mut candidates = pipeline.sender_candidates(now, CANDIDATES).await?;
        if self.xmtp.config.inbound {
            for channel in self.store.inbound_due_channels(now, CANDIDATES).await? {
                if !candidates.contains(&channel) {
                    candidates.push(channel);
                }
            }
        }
        for channel in candidates {
            let Some(lease) = pipeline
                .acquire_sender(&channel, &self.id, now + self.lease_len(), now)
                .await?
            else {
                continue;
            };
            let sent = self.drain(&lease, shutdown).await;
            return match sent {
                Ok(n) => {
                    pipeline.release_sender(&lease, None, None).await?;
                    Ok(Outcome::Worked(n.max(1)))
                }
                Err(e) => {
                    let hold = Utc::now() + CHANNEL_HOLD_OFF;
                    tracing::warn!(channel.id = %lease.channel, error = %e, "channel send paused");
                    pipeline
                        .release_sender(&lease, Some(&e.to_string()), Some(hold))
                        .await?;
                    Ok(Outcome::Worked(1))
                }
            };
        }
        Ok(Outcome::Idle)
    }

    /// Serves a leased channel with one client: sends its due deliveries, then reads its
    /// inbox if that is due. Returns units of work done.
    async fn drain(
        &self,
        lease: &SenderLease,
        shutdown: &CancellationToken,
    ) -> Result<u64, ChannelXmtpError> {
        let mut open = match self.clients.take(lease) {
            Some(open) => open,
            None => {
                let (client, state) =
                    open_client(&self.store, &self.kek, &self.xmtp, lease).await?;
                OpenClient {
                    client: Arc::new(client),
                    state,
                    cache: prepare::DrainCache::default(),
                }
            }
        };
        open.cache.trim();
        let served = self
            .serve(lease, &open.client, &mut open.cache, shutdown)
            .await;
        // Keep the client for the channel's next drain only if this one ended normally with
        // the lease still held (so its memory matches what it wrote).
        if served.is_ok() && matches!(self.renew(lease).await, Ok(true)) {
            self.clients.keep(lease.channel.clone(), open).await;
        }
        served
    }

    async fn serve(
        &self,
        lease: &SenderLease,
        client: &Arc<xmtp_client::Client>,
        cache: &mut prepare::DrainCache,
        shutdown: &CancellationToken,
    ) -> Result<u64, ChannelXmtpError> {
        let mut settled = 0;
        let mut yielded = false;
        loop {
            let sent = self.send_due(lease, client, cache, shutdown).await?;
            settled += sent;
            // The wake-up a pass yielded to may be for another channel: when this one had
            // nothing new, the worker looks at every channel again.
            if yielded && sent == 0 {
                return Ok(settled.max(1));
            }
            if !self.xmtp.config.inbound || shutdown.is_cancelled() {
                return Ok(settled);
            }
            // New deliveries (this process's announcements, or NOTIFY from others) interrupt
            // the pass: reading every DM a broadcast just reached can take a while, and sending
            // comes first. The channel stays due, so the pass runs again later. Listening
            // starts now, so an announcement made while the groups are recorded counts too.
            let deliveries = self.wake.deliveries_notified();
            tokio::pin!(deliveries);
            deliveries.as_mut().enable();
            if sent > 0 {
                self.record_groups(lease, client).await?;
            }
            let started = Utc::now();
            let plan = match self.store.inbound_plan(&lease.channel, started).await? {
                InboundPlan::Nothing => return Ok(settled),
                plan => plan,
            };
            let may_yield = self
                .deferrals
                .may_yield(&lease.channel, matches!(plan, InboundPlan::All));
            tokio::select! {
                r = self.read_inbox(lease, client, plan, started) => {
                    self.deferrals.done(&lease.channel);
                    return Ok(settled + r?);
                }
                lost = self.heartbeat(lease) => return lost.map(|()| settled),
                () = &mut deliveries, if may_yield => {
                    tracing::debug!(channel.id = %lease.channel, "inbound pass yields to new deliveries");
                    self.deferrals.yielded(&lease.channel);
                    yielded = true;
                }
            }
        }
    }

    /// Renews the lease every third of its length; returns only when it was lost.
    async fn heartbeat(&self, lease: &SenderLease) -> Result<(), ChannelXmtpError> {
        let every = Duration::from_millis(self.xmtp.config.lease_secs.max(2) * 1000 / 3);
        loop {
            tokio::time::sleep(every).await;
            if !self.renew(lease).await? {
                tracing::warn!(channel.id = %lease.channel, "sender lease lost mid-round");
                return Ok(());
            }
        }
    }

    async fn renew(&self, lease: &SenderLease) -> Result<bool, ChannelXmtpError> {
        Ok(self
            .store
            .pipeline()
            .renew_sender(lease, Utc::now() + self.lease_len())
            .await?)
    }
}

/// Spawns the configured workers and the bridge that wakes them on other replicas' work.
pub fn spawn(app: &crate::app::App, xmtp: Arc<Xmtp>) {
    if xmtp.config.workers == 0 {
        return;
    }
    for w in workers(app.store(), app.kek(), xmtp.clone(), app.wake()) {
        app.spawn_worker(move |state, shutdown| {
            w.with_welcome(&state.selfservice.welcome_text)
                .run(shutdown)
        });
    }
    if xmtp.config.inbound {
        let watch = crate::workers::inbound_watch::Watcher::new(
            app.store(),
            xmtp.streams.clone(),
            app.kek(),
            app.wake(),
        );
        app.spawn_worker(move |_, shutdown| watch.run(shutdown));
    }
    app.spawn_worker(|state, shutdown| listen(state.store, state.wake, shutdown));
}

/// Forwards other processes' wake-ups to this app's workers, listening again after a lost
/// connection; returns at once where the database has a single process (SQLite).
async fn listen(store: Arc<dyn Store>, wake: Wake, shutdown: CancellationToken) {
    loop {
        let run = async {
            let Some(mut others) = store.pipeline().listen_others().await? else {
                return Ok::<bool, crate::store::StoreError>(false);
            };
            loop {
                others.recv().await?;
                wake.deliveries();
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = run => match r {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) => tracing::debug!(error = %e, "delivery LISTEN connection lost"),
            },
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(ERROR_PAUSE) => {}
        }
    }
}

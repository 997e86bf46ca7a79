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
//! Workers wake on [`wake`] (announcements created in this process), on Postgres
//! `NOTIFY herald_deliveries` (other replicas), and otherwise poll every [`IDLE_POLL`].
//!
//! Inbound chat rides on the same lease and client ([`inbound`]): after draining, a worker
//! reads the channel's inbox when it is due — a stream saw something arrive
//! ([`crate::workers::inbound_watch`]) or the periodic fallback came round — and channels with
//! only inbound work are candidates too. So each channel identity has one MLS writer, and an
//! expired lease hands both jobs to another replica.

mod clients;
mod governor;
mod inbound;
mod send;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::crypto::MasterKey;
use crate::domain::ChannelId;
use crate::store::pipeline::SenderLease;
use crate::store::{InboundPlan, Store};
use crate::workers::Outcome;
use crate::xmtp::channel::{open_client, ChannelXmtpError};
use crate::xmtp::Xmtp;
use clients::{ClientCache, OpenClient};
use governor::Governor;

/// Poll interval when idle (wake-ups usually come sooner).
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// Pause after an unexpected error in a step.
const ERROR_PAUSE: Duration = Duration::from_secs(2);
/// How long a channel whose client cannot be opened is left alone.
const CHANNEL_HOLD_OFF: chrono::Duration = chrono::Duration::seconds(10);
/// Channels looked at per step.
const CANDIDATES: i64 = 16;
/// Channel clients kept open between drains, per worker.
const KEPT_CLIENTS_PER_WORKER: usize = 2;

static WAKE: Notify = Notify::const_new();
static WAKE_INBOUND: Notify = Notify::const_new();

/// Wakes idle delivery workers of this process (call after enqueueing deliveries). A running
/// inbound pass yields to it.
pub fn wake() {
    WAKE.notify_waiters();
}

/// Wakes idle workers because a channel's inbox became due (the inbound watcher's call). Kept
/// apart from [`wake`] so our own sends, seen on the streams, never interrupt an inbound pass.
pub fn wake_inbound() {
    WAKE_INBOUND.notify_waiters();
}

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
}

/// How long new deliveries may keep putting off a channel's full inbox read (the periodic
/// fallback behind the streams, every `inbound_poll_secs`, 300 s by default).
const FULL_PASS_DEFER_MAX: Duration = Duration::from_secs(60);

/// Inbound passes that yielded to new deliveries, per channel, since when. A pass reading only
/// the DMs streams saw arrivals in (a STOP, say) yields once, then runs to its end; the full
/// read of every DM (seconds for a large channel) yields to sending for up to
/// [`FULL_PASS_DEFER_MAX`]. So a burst of announcements goes out back to back, and chat is
/// never starved.
#[derive(Default)]
struct Deferrals(std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>);

impl Deferrals {
    fn may_yield(&self, channel: &ChannelId, full: bool) -> bool {
        match self.0.lock().expect("poisoned").get(channel.as_str()) {
            None => true,
            Some(since) => full && since.elapsed() < FULL_PASS_DEFER_MAX,
        }
    }

    fn yielded(&self, channel: &ChannelId) {
        self.0
            .lock()
            .expect("poisoned")
            .entry(channel.as_str().to_owned())
            .or_insert_with(std::time::Instant::now);
    }

    fn done(&self, channel: &ChannelId) {
        self.0.lock().expect("poisoned").remove(channel.as_str());
    }
}

/// Rows the first batch of a pipelined drain takes at most (later ones take `batch_size`).
const FIRST_BATCH: usize = 100;

/// What [`Worker::claim_next`] found.
enum Claimed {
    Batch(send::Prepared),
    /// Nothing due.
    Empty,
    /// The lease was lost while claiming (claimed rows return when their lease expires).
    LeaseLost,
    /// Waited for the rate budget; try again.
    Waited,
}

/// Builds `n` workers sharing one rate governor.
pub fn workers(store: Arc<dyn Store>, kek: Arc<MasterKey>, xmtp: Arc<Xmtp>) -> Vec<Worker> {
    let c = &xmtp.config;
    let governor = xmtp
        .governor_on()
        .then(|| Arc::new(Governor::new(c.rate_burst, c.rate_per_minute)));
    let process = ulid::Ulid::new().to_string();
    let deferrals = Arc::new(Deferrals::default());
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
            let notified = WAKE.notified();
            let inbound = WAKE_INBOUND.notified();
            tokio::pin!(notified, inbound);
            notified.as_mut().enable();
            inbound.as_mut().enable();
            let pause = tokio::select! {
                _ = shutdown.cancelled() => break,
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
                    cache: send::DrainCache::default(),
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
        cache: &mut send::DrainCache,
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
            let deliveries = WAKE.notified();
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

    /// Sends the channel's due deliveries while the lease holds; returns rows settled.
    ///
    /// With a rate governor the budget is re-read before every claim, so rounds run one
    /// after another (the rate, not the round, is the limit there). Without one (the embedded
    /// node) three batches are in flight: while batch N is published and settled, batch N+1
    /// is encrypted and made durable, and batch N+2 is claimed and checked by a task of its
    /// own. Each stage keeps the order of the batches, and a ciphertext is still published
    /// only after its ratchet state is durable. A drain that ends early gives what it
    /// claimed ahead back to pending at once.
    async fn send_due(
        &self,
        lease: &SenderLease,
        client: &Arc<xmtp_client::Client>,
        cache: &mut send::DrainCache,
        shutdown: &CancellationToken,
    ) -> Result<u64, ChannelXmtpError> {
        let round = send::Round {
            worker: self,
            client,
            lease,
            governor: self.governor.as_deref(),
        };
        if self.governor.is_some() {
            return self.send_one_by_one(&round, cache, shutdown).await;
        }
        let mut settled = 0;
        let mut ready: Option<send::Prepared> = None;
        let mut sealed: Option<send::Sealed> = None;
        // The last claim found work (else claim again only once the pipeline is empty).
        let mut more = true;
        loop {
            if sealed.is_none() && ready.is_none() {
                if shutdown.is_cancelled() {
                    return Ok(settled);
                }
                // The batch that starts the pipeline is small, so its stages (and the first
                // messages) finish sooner; the batches claimed behind it are full.
                let first = self.xmtp.config.batch_size.min(FIRST_BATCH);
                match self.claim_next(&round, cache, first).await? {
                    Claimed::Batch(p) => {
                        ready = Some(p);
                        more = true;
                    }
                    Claimed::Waited => continue,
                    Claimed::Empty | Claimed::LeaseLost => return Ok(settled),
                }
            }
            let ahead_task = (more && ready.is_some() && !shutdown.is_cancelled()).then(|| {
                let (worker, client, lease) = (self.clone(), client.clone(), lease.clone());
                let mut cache = std::mem::take(cache);
                tokio::spawn(async move {
                    let round = send::Round {
                        worker: &worker,
                        client: &client,
                        lease: &lease,
                        governor: None,
                    };
                    let next = worker
                        .claim_next(&round, &mut cache, worker.xmtp.config.batch_size)
                        .await;
                    (next, cache)
                })
            });
            let (publishing, sealing) = (sealed.take(), ready.take());
            let work = async {
                tokio::join!(
                    async {
                        match publishing {
                            Some(s) => Some(round.publish(s).await),
                            None => None,
                        }
                    },
                    async {
                        match sealing {
                            Some(p) => Some(round.seal(p).await),
                            None => None,
                        }
                    }
                )
            };
            // A round can outlast the lease (first contact creates DMs): renew it meanwhile,
            // and give the round up if the lease is lost anyway.
            let (published, newly_sealed) = tokio::select! {
                r = work => r,
                lost = self.heartbeat(lease) => {
                    if let Some(task) = ahead_task {
                        task.abort();
                    }
                    return lost.map(|()| settled);
                }
            };
            let next = match ahead_task {
                Some(task) => {
                    let (next, kept) = match task.await {
                        Ok(done) => done,
                        // Never aborted here; a panic stays a panic.
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    };
                    *cache = kept;
                    Some(next)
                }
                None => None,
            };
            let mut stop = shutdown.is_cancelled();
            let mut failed = None;
            match published {
                Some(Ok(send::RoundEnd::Continue(n))) => settled += n,
                Some(Ok(send::RoundEnd::Paused(n))) => {
                    settled += n;
                    stop = true;
                }
                Some(Err(e)) => failed = Some(e),
                None => {}
            }
            match newly_sealed {
                Some(Ok(s)) => sealed = Some(s),
                Some(Err(e)) => failed = failed.or(Some(e)),
                None => {}
            }
            match next {
                Some(Ok(Claimed::Batch(p))) => ready = Some(p),
                Some(Ok(Claimed::Empty)) => more = false,
                Some(Ok(Claimed::LeaseLost)) => stop = true,
                Some(Ok(Claimed::Waited)) | None => {}
                Some(Err(e)) => failed = failed.or(Some(e)),
            }
            if sealed.as_ref().is_some_and(send::Sealed::ends_drain) {
                stop = true;
            }
            if stop || failed.is_some() {
                // Batches in flight: one that must stop the drain (rate limited, lease lost)
                // settles what it knows; anything else goes back to pending.
                if let Some(s) = sealed.take() {
                    let done = if s.ends_drain() {
                        round.publish(s).await.map(|end| {
                            settled += match end {
                                send::RoundEnd::Continue(n) | send::RoundEnd::Paused(n) => n,
                            }
                        })
                    } else {
                        round.release_sealed(s).await
                    };
                    if let Err(e) = done {
                        failed = failed.or(Some(e));
                    }
                }
                if let Some(p) = ready.take() {
                    if let Err(e) = round.release(p).await {
                        failed = failed.or(Some(e));
                    }
                }
                return failed.map_or(Ok(settled), Err);
            }
            // A long drain meets a new set of recipients every round: bound the memory.
            if client.resident_groups().await > self.clients.resident_limit() {
                client.release_groups().await?;
            }
        }
    }

    /// Rounds one after another (with a rate governor): claim within the budget, send, settle.
    async fn send_one_by_one(
        &self,
        round: &send::Round<'_>,
        cache: &mut send::DrainCache,
        shutdown: &CancellationToken,
    ) -> Result<u64, ChannelXmtpError> {
        let mut settled = 0;
        while !shutdown.is_cancelled() {
            let batch = self.xmtp.config.batch_size;
            let prepared = match self.claim_next(round, cache, batch).await? {
                Claimed::Batch(p) => p,
                Claimed::Waited => continue,
                Claimed::Empty | Claimed::LeaseLost => return Ok(settled),
            };
            let end = tokio::select! {
                r = round.deliver(prepared) => r?,
                lost = self.heartbeat(round.lease) => return lost.map(|()| settled),
            };
            match end {
                send::RoundEnd::Continue(n) => settled += n,
                send::RoundEnd::Paused(n) => return Ok(settled + n),
            }
            let client = round.client;
            if client.resident_groups().await > self.clients.resident_limit() {
                client.release_groups().await?;
            }
        }
        Ok(settled)
    }

    /// Claims the next batch (critical first, within the rate budget) and prepares it.
    async fn claim_next(
        &self,
        round: &send::Round<'_>,
        cache: &mut send::DrainCache,
        limit: usize,
    ) -> Result<Claimed, ChannelXmtpError> {
        let lease = round.lease;
        let mut limit = limit.max(1);
        if let Some(g) = &self.governor {
            match g.available(&lease.channel) {
                Ok(n) => limit = limit.min(n),
                Err(wait) => {
                    // Keep the lease while waiting for the budget to refill.
                    let wait = wait.min(Duration::from_secs(self.xmtp.config.lease_secs / 3 + 1));
                    tokio::time::sleep(wait).await;
                    return Ok(if self.renew(lease).await? {
                        Claimed::Waited
                    } else {
                        Claimed::LeaseLost
                    });
                }
            }
        }
        let t0 = std::time::Instant::now();
        let now = Utc::now();
        let batch = self
            .store
            .pipeline()
            .claim_deliveries(lease, now, now + self.lease_len(), limit as i64)
            .await?;
        if batch.is_empty() {
            return Ok(Claimed::Empty);
        }
        if !self.renew(lease).await? {
            return Ok(Claimed::LeaseLost);
        }
        tracing::debug!(target: "herald::timing", claim_renew = ?t0.elapsed(), "claim");
        Ok(Claimed::Batch(round.prepare(batch, cache).await?))
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

/// Spawns the configured workers and, on Postgres, the `LISTEN` bridge that wakes them.
pub fn spawn(app: &crate::app::App, xmtp: Arc<Xmtp>, database_url: Option<String>) {
    for w in workers(app.store(), app.kek(), xmtp.clone()) {
        app.spawn_worker(move |state, shutdown| {
            w.with_welcome(&state.selfservice.welcome_text)
                .run(shutdown)
        });
    }
    if xmtp.config.inbound && xmtp.config.workers > 0 {
        let watch =
            crate::workers::inbound_watch::Watcher::new(app.store(), xmtp.grpc.clone(), app.kek());
        app.spawn_worker(move |_, shutdown| watch.run(shutdown));
    }
    if let Some(url) = database_url.filter(|_| xmtp.config.workers > 0) {
        app.spawn_worker(move |_, shutdown| listen(url, shutdown));
    }
}

/// Forwards Postgres notifications to [`wake`]; reconnects after errors.
async fn listen(url: String, shutdown: CancellationToken) {
    loop {
        let run = async {
            let mut l = sqlx::postgres::PgListener::connect(&url).await?;
            l.listen("herald_deliveries").await?;
            loop {
                l.recv().await?;
                wake();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = run => if let Err(e) = r {
                tracing::debug!(error = %e, "delivery LISTEN connection lost");
            },
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(ERROR_PAUSE) => {}
        }
    }
}

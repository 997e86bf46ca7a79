//! A drain's rounds: claim and prepare batches, then send them — one after another with a
//! rate governor, three in flight without one (see [`Worker::send_due`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{prepare, send, Worker};
use crate::store::pipeline::SenderLease;
use crate::xmtp::channel::ChannelXmtpError;

/// Rows the first batch of a pipelined drain takes at most (later ones take `batch_size`).
const FIRST_BATCH: usize = 100;

/// What [`Worker::claim_next`] found.
enum Claimed {
    Batch(prepare::Prepared),
    /// Nothing due.
    Empty,
    /// The lease was lost while claiming (claimed rows return when their lease expires).
    LeaseLost,
    /// Waited for the rate budget; try again.
    Waited,
}

/// Owned copies of what a round borrows, for a task of a pipelined drain (which sends without
/// a rate governor).
struct Owned {
    worker: Worker,
    client: Arc<xmtp_client::Client>,
    lease: SenderLease,
}

impl Owned {
    fn round(&self) -> send::Round<'_> {
        send::Round {
            worker: &self.worker,
            client: &self.client,
            lease: &self.lease,
            governor: None,
        }
    }
}

impl Worker {
    /// Sends the channel's due deliveries while the lease holds; returns rows settled.
    ///
    /// With a rate governor the budget is re-read before every claim, so rounds run one
    /// after another (the rate, not the round, is the limit there). Without one (the embedded
    /// node) three batches are in flight: while batch N is published and settled, batch N+1
    /// is encrypted and made durable, and batch N+2 is claimed and checked, each by a task of its
    /// own. Each stage keeps the order of the batches, and a ciphertext is still published
    /// only after its ratchet state is durable. A drain that ends early gives what it
    /// claimed ahead back to pending at once.
    pub(super) async fn send_due(
        &self,
        lease: &SenderLease,
        client: &Arc<xmtp_client::Client>,
        cache: &mut prepare::DrainCache,
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
        let mut ready: Option<prepare::Prepared> = None;
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
            let owned = || Owned {
                worker: self.clone(),
                client: client.clone(),
                lease: lease.clone(),
            };
            let ahead_task = (more && ready.is_some() && !shutdown.is_cancelled()).then(|| {
                let owned = owned();
                let mut cache = std::mem::take(cache);
                tokio::spawn(async move {
                    let batch = owned.worker.xmtp.config.batch_size;
                    let next = owned
                        .worker
                        .claim_next(&owned.round(), &mut cache, batch)
                        .await;
                    (next, cache)
                })
            });
            // Sealing runs as a task of its own: encryption holds its thread for the whole
            // batch (the DMs are encrypted on scoped threads), and polled next to the publish
            // it kept the publish from reading its own query's answer until the seal was done
            // (15-25 ms of a ~25 ms round on SQLite).
            let (publishing, sealing) = (sealed.take(), ready.take());
            let seal_task = sealing.map(|p| {
                let owned = owned();
                tokio::spawn(async move { owned.round().seal(p).await })
            });
            let seal_abort = seal_task
                .as_ref()
                .map(tokio::task::JoinHandle::abort_handle);
            let work = async {
                tokio::join!(
                    async {
                        match publishing {
                            Some(s) => Some(round.publish(s).await),
                            None => None,
                        }
                    },
                    async {
                        match seal_task {
                            Some(task) => Some(match task.await {
                                Ok(sealed) => sealed,
                                // Aborted only below, with the round given up; a panic stays
                                // a panic.
                                Err(e) => std::panic::resume_unwind(e.into_panic()),
                            }),
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
                    if let Some(seal) = seal_abort {
                        seal.abort();
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
        cache: &mut prepare::DrainCache,
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
        cache: &mut prepare::DrainCache,
        limit: usize,
    ) -> Result<Claimed, ChannelXmtpError> {
        let lease = round.lease;
        let mut limit = limit.max(1);
        if let Some(g) = &self.governor {
            let critical = self
                .store
                .pipeline()
                .due_is_critical(&lease.channel, Utc::now())
                .await?;
            match g.take(limit, critical).await? {
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
        if let Some(g) = &self.governor {
            // Tokens were taken for `limit` rows; give back what the claim did not find.
            g.adjust(limit as i64 - batch.len() as i64).await?;
        }
        if batch.is_empty() {
            return Ok(Claimed::Empty);
        }
        if !self.renew(lease).await? {
            return Ok(Claimed::LeaseLost);
        }
        tracing::debug!(target: "herald::timing", claim_renew = ?t0.elapsed(), "claim");
        Ok(Claimed::Batch(round.prepare(batch, cache).await?))
    }
}

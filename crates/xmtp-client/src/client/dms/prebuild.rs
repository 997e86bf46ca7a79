//! DMs built ahead of their creation: the delivery pipeline builds the next batch's DMs while
//! the current one is sealed, so the creation only publishes them.

use super::*;

/// DMs built ahead of their creation ([`Client::prebuild_dms`]): peer inbox id → when it was
/// built, and the DM. Kept apart from the DM book, whose lock a send holds throughout.
#[derive(Default)]
pub(in crate::client) struct Prebuilt(std::sync::Mutex<HashMap<String, (Instant, PendingDm)>>);

impl Prebuilt {
    /// Takes the still-fresh DMs built for `peers`.
    pub(super) fn take(&self, peers: &[String]) -> HashMap<String, PendingDm> {
        let mut built = self.0.lock().expect("poisoned");
        let now = Instant::now();
        peers
            .iter()
            .filter_map(|peer| {
                let (at, dm) = built.remove(peer)?;
                if now.duration_since(at) < PREFETCH_FRESH {
                    Some((peer.clone(), dm))
                } else {
                    built.insert(peer.clone(), (at, dm));
                    None
                }
            })
            .collect()
    }

    /// Whether a fresh DM is built for `peer`.
    fn has_fresh(&self, peer: &str, now: Instant) -> bool {
        let built = self.0.lock().expect("poisoned");
        built
            .get(peer)
            .is_some_and(|(at, _)| now.duration_since(*at) < PREFETCH_FRESH)
    }
}

impl Client {
    /// Builds now the DMs a creation with `peers` will need — identities verified, key
    /// packages validated, commits and welcomes made — and publishes and writes nothing, so
    /// that a [`Client::create_dms`] (or a send) with them within 30 s only publishes them.
    /// Takes no lock a send holds: the delivery pipeline calls it for the next batch while the
    /// current one is sealed. Skips peers with a ready DM or a fresh built one; a peer whose DM
    /// cannot be built (unknown inbox, no key package) is left to the creation, which reports
    /// why. A DM built but not created within 30 s is dropped (it was never published or
    /// written). Returns how many DMs were built.
    pub async fn prebuild_dms(&self, peers: &[String]) -> Result<usize, ClientError> {
        let now = Instant::now();
        let wanted = self.without_ready_dm(peers, |p| !self.prebuilt.has_fresh(p, now));
        if wanted.is_empty() {
            return Ok(0);
        }
        let built = self.build_dms(&wanted).await?;
        let now = Instant::now();
        let mut dropped = Vec::new();
        let mut n = 0;
        {
            let mut prebuilt = self.prebuilt.0.lock().expect("poisoned");
            let stale: Vec<String> = prebuilt
                .iter()
                .filter(|(_, (at, _))| now.duration_since(*at) >= PREFETCH_FRESH)
                .map(|(peer, _)| peer.clone())
                .collect();
            for peer in stale {
                dropped.extend(prebuilt.remove(&peer).map(|(_, dm)| dm));
            }
            for (peer, dm) in wanted.into_iter().zip(built) {
                if let Ok(dm) = dm {
                    n += 1;
                    dropped.extend(prebuilt.insert(peer, (now, dm)).map(|(_, old)| old));
                }
            }
        }
        for dm in dropped {
            dm::discard_creation(&self.provider, &dm.group);
        }
        Ok(n)
    }
}

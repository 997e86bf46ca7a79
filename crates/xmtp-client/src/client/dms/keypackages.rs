//! The peers' key packages for a DM creation: fetched in one call, validated together.

use super::*;
use crate::mls::dm::KeyPackageCheck;

/// Key packages that passed validation, by the (inbox, installation) they were checked for.
#[derive(Default)]
pub(in crate::client) struct ValidKeyPackages(HashMap<(String, Vec<u8>), KeyPackage>);

impl Client {
    /// One FetchKeyPackages call for every installation of the peers and our other
    /// installations, then validated ([`Client::validate_key_packages`]).
    pub(super) async fn fetch_key_packages(
        &self,
        peers: &[String],
        states: &HashMap<String, InboxState>,
    ) -> Result<ValidKeyPackages, ClientError> {
        let mut wanted: Vec<(String, Vec<u8>)> = Vec::new();
        let mut seen = HashSet::new();
        let inboxes = peers.iter().chain(std::iter::once(&self.inbox_id));
        for inbox in inboxes {
            for inst in states
                .get(inbox)
                .map(|s| s.state.installations())
                .unwrap_or_default()
            {
                if inst[..] != self.key.public_key() && seen.insert((inbox, inst.clone())) {
                    wanted.push((inbox.clone(), inst));
                }
            }
        }
        let mut installations: Vec<Vec<u8>> = wanted.iter().map(|(_, i)| i.clone()).collect();
        installations.sort_unstable();
        installations.dedup();
        let fetched = self.fetch_key_packages_for(installations).await?;
        Ok(self.validate_key_packages(&wanted, &fetched))
    }

    pub(in crate::client) async fn fetch_key_packages_for(
        &self,
        installations: Vec<Vec<u8>>,
    ) -> Result<HashMap<Vec<u8>, Vec<u8>>, ClientError> {
        if installations.is_empty() {
            return Ok(HashMap::new());
        }
        let req = FetchKeyPackagesRequest {
            installation_keys: installations.clone(),
        };
        let resp = self.transport.fetch_key_packages(req).await?;
        Ok(installations
            .into_iter()
            .zip(resp.key_packages)
            .filter(|(_, kp)| !kp.key_package_tls_serialized.is_empty())
            .map(|(i, kp)| (i, kp.key_package_tls_serialized))
            .collect())
    }

    /// Validates the fetched key package of each (inbox, installation) in `wanted`, spread over
    /// the cores, each core's share with its signatures checked as one batch
    /// ([`dm::validate_key_packages`]). Missing and invalid ones are left out.
    pub(in crate::client) fn validate_key_packages(
        &self,
        wanted: &[(String, Vec<u8>)],
        fetched: &HashMap<Vec<u8>, Vec<u8>>,
    ) -> ValidKeyPackages {
        let checks: Vec<KeyPackageCheck<'_>> = wanted
            .iter()
            .filter_map(|(inbox, inst)| {
                fetched.get(inst).map(|bytes| KeyPackageCheck {
                    bytes,
                    installation: inst,
                    inbox_id: inbox,
                })
            })
            .collect();
        let results = parallel::map_chunks(&checks, |chunk| {
            dm::validate_key_packages(&self.provider, chunk)
        });
        ValidKeyPackages(
            checks
                .iter()
                .zip(results)
                .filter_map(|(c, r)| {
                    let key = (c.inbox_id.to_owned(), c.installation.to_vec());
                    r.ok().map(|kp| (key, kp))
                })
                .collect(),
        )
    }

    /// The validated key packages for every installation of `inbox_id` in `state`; returns the
    /// usable recipients and the installations that must be listed as failed.
    pub(in crate::client) fn recipients_for(
        &self,
        inbox_id: &str,
        installations: &[Vec<u8>],
        valid: &ValidKeyPackages,
    ) -> (Vec<Recipient>, Vec<Vec<u8>>) {
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for inst in installations {
            if inst[..] == self.key.public_key() {
                continue;
            }
            match valid.0.get(&(inbox_id.to_owned(), inst.clone())) {
                Some(key_package) => ok.push(Recipient {
                    installation: inst.clone(),
                    key_package: key_package.clone(),
                }),
                None => failed.push(inst.clone()),
            }
        }
        (ok, failed)
    }
}

//! The peers' key packages for a DM creation: fetched in one call, validated per installation.

use super::*;

impl Client {
    /// One FetchKeyPackages call for every installation of the peers and our other
    /// installations; installation → TLS key package (missing ones omitted).
    pub(super) async fn fetch_key_packages(
        &self,
        peers: &[String],
        states: &HashMap<String, InboxState>,
    ) -> Result<HashMap<Vec<u8>, Vec<u8>>, ClientError> {
        let mut wanted: Vec<Vec<u8>> = Vec::new();
        let mut seen = HashSet::new();
        let inboxes = peers.iter().chain(std::iter::once(&self.inbox_id));
        for inbox in inboxes {
            for inst in states
                .get(inbox)
                .map(|s| s.state.installations())
                .unwrap_or_default()
            {
                if inst[..] != self.key.public_key() && seen.insert(inst.clone()) {
                    wanted.push(inst);
                }
            }
        }
        self.fetch_key_packages_for(wanted).await
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

    /// Validates key packages for every installation of `inbox_id` in `state`; returns the
    /// usable recipients and the installations that must be listed as failed.
    pub(in crate::client) fn recipients_for(
        &self,
        inbox_id: &str,
        installations: &[Vec<u8>],
        key_packages: &HashMap<Vec<u8>, Vec<u8>>,
    ) -> (Vec<Recipient>, Vec<Vec<u8>>) {
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for inst in installations {
            if inst[..] == self.key.public_key() {
                continue;
            }
            let kp = key_packages
                .get(inst)
                .and_then(|b| dm::validate_key_package(&self.provider, b, inst, inbox_id).ok());
            match kp {
                Some(key_package) => ok.push(Recipient {
                    installation: inst.clone(),
                    key_package,
                }),
                None => failed.push(inst.clone()),
            }
        }
        (ok, failed)
    }
}

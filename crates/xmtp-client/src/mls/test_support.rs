//! Offline parties for the MLS unit tests: a provider, an installation key and an inbox id.

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{GroupId, MlsGroup};
use openmls_traits::OpenMlsProvider as _;

use super::keypackage::build_key_package;
use super::provider::XmtpProvider;
use super::signer::InstallationKey;

pub(crate) struct Party {
    pub provider: XmtpProvider,
    pub key: InstallationKey,
    pub inbox: String,
}

/// A party whose inbox id is `c` 64 times.
pub(crate) fn party(c: char) -> Party {
    Party {
        provider: XmtpProvider::new(),
        key: InstallationKey::generate(),
        inbox: c.to_string().repeat(64),
    }
}

/// A key package of `p` as published (TLS bytes) and its init private key.
pub(crate) fn published_kp(p: &Party) -> (Vec<u8>, Vec<u8>) {
    let bundle = build_key_package(&p.provider, &p.key, &p.inbox).unwrap();
    let bytes = bundle.key_package().tls_serialize_detached().unwrap();
    (bytes, bundle.init_private_key().to_vec())
}

/// A restarted `p`: a new provider holding only what `p`'s storage has written (its dirty
/// entries, taken), and the group `id` loaded from it.
pub(crate) fn restarted(p: &Party, id: &GroupId) -> (XmtpProvider, MlsGroup) {
    let written: Vec<(Vec<u8>, Vec<u8>)> = p
        .provider
        .storage()
        .take_dirty()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let restarted = XmtpProvider::new();
    restarted.storage().load(written);
    let group = MlsGroup::load(restarted.storage(), id)
        .unwrap()
        .expect("group stored");
    (restarted, group)
}

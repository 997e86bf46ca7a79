//! Helpers shared by herald's fuzz targets: splitting one input into parts, and the fixtures
//! (an MLS DM between two installations, a chain config, an event log) that a target builds
//! once per process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use alloy_primitives::{Bytes, LogData, B256};
use openmls::prelude::tls_codec::Serialize;
use openmls::prelude::MlsGroup;
use xmtp_client::mls::dm::{create_dm, join, merge_pending, validate_key_package};
use xmtp_client::mls::group_ext::DmSpec;
use xmtp_client::mls::keypackage::build_key_package;
use xmtp_client::mls::provider::XmtpProvider;
use xmtp_client::mls::signer::InstallationKey;
use xmtp_client::mls::welcome::{unwrap_welcome, wrap_welcome};

/// Splits `data` at NUL bytes into at most `n` parts; the last part keeps any further NULs.
/// Missing parts are empty, so every input maps to a well-formed call.
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, &[]);
    out
}

/// Builds a log from raw bytes: the first byte picks the topic count (0-5, so the decoder also
/// sees more topics than a log may carry), then 32-byte topics, then the data.
pub fn log_from_bytes(bytes: &[u8]) -> LogData {
    let Some((&count, mut rest)) = bytes.split_first() else {
        return LogData::new_unchecked(Vec::new(), Bytes::new());
    };
    let mut topics = Vec::new();
    for _ in 0..count % 6 {
        let take = rest.len().min(32);
        let mut word = [0u8; 32];
        word[..take].copy_from_slice(&rest[..take]);
        topics.push(B256::from(word));
        rest = &rest[take..];
    }
    LogData::new_unchecked(topics, Bytes::copy_from_slice(rest))
}

/// One side of a DM: its openmls provider, installation key and inbox id.
pub struct Party {
    pub provider: XmtpProvider,
    pub key: InstallationKey,
    pub inbox: String,
}

impl Party {
    pub fn new(c: char) -> Self {
        Self {
            provider: XmtpProvider::new(),
            key: InstallationKey::generate(),
            inbox: c.to_string().repeat(64),
        }
    }
}

/// A DM between Alice and Bob, both sides joined, plus the messages that built it.
pub struct Dm {
    pub alice: Party,
    pub bob: Party,
    pub alice_group: MlsGroup,
    pub bob_group: MlsGroup,
    /// Bob's published key package (TLS) and its HPKE init private key.
    pub bob_key_package: Vec<u8>,
    pub bob_init_key: Vec<u8>,
    /// The commit that created the DM and the wrapped welcome Bob received.
    pub commit: Vec<u8>,
    pub welcome: Vec<u8>,
    pub wrapped_welcome: Vec<u8>,
    pub wrapped_metadata: Vec<u8>,
}

impl Dm {
    /// Runs the same steps as `xmtp-client`'s DM round-trip test.
    pub fn new() -> Self {
        let (alice, bob) = (Party::new('a'), Party::new('b'));
        let bundle = build_key_package(&bob.provider, &bob.key, &bob.inbox).expect("key package");
        let bob_key_package = bundle
            .key_package()
            .tls_serialize_detached()
            .expect("serialize");
        let bob_init_key = bundle.init_private_key().to_vec();
        let kp = validate_key_package(
            &alice.provider,
            &bob_key_package,
            &bob.key.public_key(),
            &bob.inbox,
        )
        .expect("valid key package");
        let spec = DmSpec {
            creator_inbox_id: alice.inbox.clone(),
            peer_inbox_id: bob.inbox.clone(),
            membership: HashMap::from([(alice.inbox.clone(), 1), (bob.inbox.clone(), 2)]),
            failed_installations: vec![],
        };
        let (mut alice_group, out) = create_dm(
            &alice.provider,
            &alice.key,
            &spec,
            std::slice::from_ref(&kp),
        )
        .expect("create dm");
        merge_pending(&alice.provider, &mut alice_group).expect("merge");
        let wrapped = wrap_welcome(&out.welcome, b"", kp.hpke_init_key().as_slice()).expect("wrap");
        let (welcome, _) = unwrap_welcome(&wrapped.data, &wrapped.welcome_metadata, &bob_init_key)
            .expect("unwrap");
        let bob_group = join(&bob.provider, &welcome).expect("join");
        Self {
            alice,
            bob,
            alice_group,
            bob_group,
            bob_key_package,
            bob_init_key,
            commit: out.commit,
            welcome,
            wrapped_welcome: wrapped.data,
            wrapped_metadata: wrapped.welcome_metadata,
        }
    }
}

impl Default for Dm {
    fn default() -> Self {
        Self::new()
    }
}

/// The process-wide DM fixture (building it costs a few milliseconds of MLS work).
pub fn dm() -> &'static Mutex<Dm> {
    static DM: OnceLock<Mutex<Dm>> = OnceLock::new();
    DM.get_or_init(|| Mutex::new(Dm::new()))
}

/// The chain every trigger target is validated against.
pub fn chain() -> &'static herald::chain::ChainConfig {
    static CHAIN: OnceLock<herald::chain::ChainConfig> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let mut c =
            herald::chain::ChainConfig::new(1, "ethereum", vec!["http://127.0.0.1:1".into()]);
        c.explorer_url = Some("https://etherscan.io".into());
        c
    })
}

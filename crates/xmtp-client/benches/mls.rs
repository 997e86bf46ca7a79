//! `cargo bench -p xmtp-client`: per-message encrypt cost and DM-creation cost, printed as
//! medians, next to the same operations with a signer that re-derives the Ed25519 key on every
//! signature (what openmls's stock `SignatureKeyPair` does).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::KeyPackage;
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::types::SignatureScheme;
use openmls_traits::OpenMlsProvider as _;
use xmtp_client::mls::content::{encode_text, envelope};
use xmtp_client::mls::creator_leaf::CreatorLeaf;
use xmtp_client::mls::dm::{
    create_dm, create_dm_sharing_leaf, encrypt, merge_pending, validate_key_package,
};
use xmtp_client::mls::group_ext::DmSpec;
use xmtp_client::mls::keypackage::build_key_package;
use xmtp_client::mls::provider::XmtpProvider;
use xmtp_client::mls::signer::InstallationKey;
use xmtp_client::mls::welcome::wrap_welcome;

/// openmls-style signer: keeps only the seed and rebuilds the signing key per signature.
struct ReDerivingSigner {
    seed: [u8; 32],
}

impl Signer for ReDerivingSigner {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(SigningKey::from_bytes(&self.seed)
            .sign(payload)
            .to_bytes()
            .to_vec())
    }
    fn signature_scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(name: &str, samples: Vec<Duration>) {
    let m = median(samples);
    println!(
        "{name:<58} median {:>8.1} µs  ({:>7.0} ops/s/core)",
        m.as_secs_f64() * 1e6,
        1.0 / m.as_secs_f64()
    );
}

fn peer_key_packages(n: usize, inbox: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|_| {
            let provider = XmtpProvider::new();
            let key = InstallationKey::generate();
            let kp = build_key_package(&provider, &key, inbox).unwrap();
            (
                kp.key_package().tls_serialize_detached().unwrap(),
                key.public_key().to_vec(),
            )
        })
        .collect()
}

fn spec(me: &str, peer: &str) -> DmSpec {
    DmSpec {
        creator_inbox_id: me.into(),
        peer_inbox_id: peer.into(),
        membership: HashMap::from([(me.to_owned(), 1), (peer.to_owned(), 1)]),
        failed_installations: vec![],
    }
}

/// DM creation with a fresh leaf per DM, or sharing a [`CreatorLeaf`] as the client does.
fn bench_dm_creation(installations: usize, rounds: usize, shared: bool) {
    let (me, peer) = ("a".repeat(64), "b".repeat(64));
    let provider = XmtpProvider::new();
    let key = InstallationKey::generate();
    let kps = peer_key_packages(installations, &peer);
    let leaf = CreatorLeaf::default();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let validated: Vec<KeyPackage> = kps
            .iter()
            .map(|(b, i)| validate_key_package(&provider, b, i, &peer).unwrap())
            .collect();
        let spec = spec(&me, &peer);
        let (mut group, out) = if shared {
            create_dm_sharing_leaf(&provider, &key, &leaf, &spec, &validated).unwrap()
        } else {
            create_dm(&provider, &key, &spec, &validated).unwrap()
        };
        merge_pending(&provider, &mut group).unwrap();
        for kp in &validated {
            wrap_welcome(&out.welcome, b"\x08\x01", kp.hpke_init_key().as_slice()).unwrap();
        }
        let _ = provider.storage().take_dirty();
        samples.push(t.elapsed());
    }
    report(
        &format!(
            "DM creation, {installations} installation(s){}: validate+commit+merge+wrap",
            if shared { ", shared leaf" } else { "" }
        ),
        samples,
    );
}

fn bench_encrypt<S: Signer>(label: &str, signer: &S, key: &InstallationKey, rounds: usize) {
    let (me, peer) = ("a".repeat(64), "b".repeat(64));
    let provider = XmtpProvider::new();
    let kps = peer_key_packages(1, &peer);
    let kp = validate_key_package(&provider, &kps[0].0, &kps[0].1, &peer).unwrap();
    let (mut group, _) = create_dm(&provider, key, &spec(&me, &peer), &[kp]).unwrap();
    merge_pending(&provider, &mut group).unwrap();
    let text = "x".repeat(200);
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let payload = envelope(encode_text(&text), &i.to_string());
        let t = Instant::now();
        let msg = group.create_message(&provider, signer, &payload).unwrap();
        let _ = msg.tls_serialize_detached().unwrap();
        let _ = provider.storage().take_dirty();
        samples.push(t.elapsed());
    }
    report(label, samples);
    // The library path (cached signer through xmtp_client::mls::dm::encrypt).
    if std::any::type_name::<S>().contains("InstallationKey") {
        let mut samples = Vec::with_capacity(rounds);
        for i in 0..rounds {
            let payload = envelope(encode_text(&text), &i.to_string());
            let t = Instant::now();
            let _ = encrypt(&provider, key, &mut group, &payload).unwrap();
            let _ = provider.storage().take_dirty();
            samples.push(t.elapsed());
        }
        report(
            "encrypt 200 B text via xmtp_client::mls::dm::encrypt",
            samples,
        );
    }
}

/// Whole-client figures through an in-process devnode on loopback (gRPC, MemoryStore):
/// batched DM creation and batched sends, including node round trips.
fn bench_end_to_end(peers: usize, per_peer: usize) {
    use std::sync::Arc;
    use xmtp_client::{Client, GrpcTransport, MemoryStore, OutgoingText, SendOptions, Wallet};
    use xmtp_devnode::{DevNode, DevNodeConfig};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = DevNode::start(DevNodeConfig::default()).await.unwrap();
        let open = |w: Wallet| {
            let url = node.url();
            async move {
                let t = Arc::new(GrpcTransport::connect_lazy(&url).unwrap());
                Client::open(&w, t, Arc::new(MemoryStore::new()))
                    .await
                    .unwrap()
            }
        };
        let mut inboxes = Vec::new();
        for _ in 0..peers {
            inboxes.push(open(Wallet::generate()).await.inbox_id().to_owned());
        }
        let herald = open(Wallet::generate()).await;
        let t = Instant::now();
        let created = herald.create_dms(&inboxes).await.unwrap();
        assert!(created.values().all(|r| r.is_ok()));
        let dt = t.elapsed();
        println!(
            "{:<58} {:>8.1} µs/DM ({} DMs in {:?})",
            "end-to-end create_dms via devnode (batched)",
            dt.as_secs_f64() * 1e6 / peers as f64,
            peers,
            dt
        );
        for (label, options) in [
            (
                "end-to-end send_batch, sync + installation check",
                SendOptions::default(),
            ),
            (
                "end-to-end send_batch, no per-DM checks",
                SendOptions {
                    sync_groups: false,
                    add_new_installations: false,
                },
            ),
        ] {
            let items: Vec<OutgoingText> = (0..per_peer)
                .flat_map(|n| {
                    inboxes.iter().map(move |p| OutgoingText {
                        peer_inbox_id: p.clone(),
                        content: "x".repeat(200).into(),
                        idempotency_key: format!("{label}-{p}-{n}"),
                    })
                })
                .collect();
            let count = items.len();
            let t = Instant::now();
            herald.send_batch_with(items, options).await.unwrap();
            let dt = t.elapsed();
            println!(
                "{label:<58} {:>8.1} µs/msg ({count} msgs in {dt:?})",
                dt.as_secs_f64() * 1e6 / count as f64
            );
        }
        node.shutdown().await;
    });
}

fn main() {
    // `cargo test --benches` passes --bench-less args; keep quick runs quick.
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 50 } else { 2000 };
    println!("xmtp-client MLS costs (bench profile, one thread), {rounds} rounds each");
    let key = InstallationKey::generate();
    bench_encrypt(
        "encrypt 200 B, openmls-style re-deriving signer (raw openmls)",
        &ReDerivingSigner {
            seed: *key.to_seed(),
        },
        &key,
        rounds,
    );
    bench_encrypt(
        "encrypt 200 B, cached expanded signer (InstallationKey)",
        &key,
        &key,
        rounds,
    );
    bench_dm_creation(1, rounds / 4, false);
    bench_dm_creation(1, rounds / 4, true);
    bench_dm_creation(3, rounds / 8, true);
    if quick {
        bench_end_to_end(10, 10);
    } else {
        bench_end_to_end(100, 20);
    }
}

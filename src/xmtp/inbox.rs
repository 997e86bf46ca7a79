//! `herald inbox`: read a wallet's XMTP DMs as that wallet's own installation, so a newcomer
//! can see an announcement arrive without installing an XMTP app.
//!
//! The installation state is kept in a small redb file (default
//! `<data_dir>/inboxes/<address>.redb`) so repeated runs reuse one installation (an inbox may
//! have at most 10) and show only what arrived since the last run. Messages decrypt only once
//! (MLS forgets the keys), so every message shown is also kept in that file: `--all` prints
//! them all again, oldest first, with the new ones.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use xmtp_client::{Client, RedbStore, Store as _, Wallet};

use super::{Network, XmtpConfig};

/// Store key under which the peers we have DMs with are remembered between runs.
const PEERS_KEY: &[u8] = b"herald-inbox/peers";

/// Store key of the messages shown so far (for `--all`).
const HISTORY_KEY: &[u8] = b"herald-inbox/history";

/// One message as kept for `--all`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Shown {
    created_ns: u64,
    sender: String,
    text: String,
}

/// Syncs the wallet's inbox and prints every message received since the last run (with
/// `all`, also every message shown before).
pub async fn print_inbox(
    key_hex: &str,
    network: &str,
    config: &XmtpConfig,
    state_dir: &Path,
    all: bool,
) -> anyhow::Result<()> {
    let network = Network::parse(network, config.gateway_url.as_deref())?;
    let url = config.dial_url(&network);
    let transport = config.transport(&network, &url)?;
    let bytes: [u8; 32] = hex::decode(key_hex.trim().trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("--key must be a 32-byte private key in hex")?;
    let wallet = Wallet::from_bytes(&bytes).context("not a valid secp256k1 private key")?;
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let store = Arc::new(RedbStore::open(
        state_dir.join(format!("{}.redb", wallet.address())),
    )?);
    let client = Client::open(&wallet, transport, store.clone())
        .await
        .with_context(|| format!("opening the inbox on {url}"))?;
    let mut peers: Vec<String> = match store.get(PEERS_KEY).await? {
        Some(raw) => serde_json::from_slice(&raw).unwrap_or_default(),
        None => Vec::new(),
    };
    for peer in client.sync_welcomes().await? {
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    store
        .write_batch(&[(
            PEERS_KEY.to_vec(),
            Some(serde_json::to_vec(&peers).expect("strings serialize")),
        )])
        .await?;
    println!("inbox {} ({})", client.inbox_id(), client.address());
    let mut history: Vec<Shown> = match store.get(HISTORY_KEY).await? {
        Some(raw) => serde_json::from_slice(&raw).unwrap_or_default(),
        None => Vec::new(),
    };
    let earlier = history.len();
    for peer in &peers {
        for m in client.sync_dm(peer).await? {
            history.push(Shown {
                created_ns: m.created_ns,
                sender: m.sender_inbox_id,
                text: m.text.unwrap_or_else(|| "(non-text content)".into()),
            });
        }
    }
    let new = history.len() - earlier;
    if new > 0 {
        store
            .write_batch(&[(
                HISTORY_KEY.to_vec(),
                Some(serde_json::to_vec(&history).expect("messages serialize")),
            )])
            .await?;
    }
    let from = if all { 0 } else { earlier };
    for m in &history[from..] {
        let at = chrono::DateTime::from_timestamp_nanos(m.created_ns as i64);
        println!(
            "[{}] from {}: {}",
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            m.sender,
            m.text
        );
    }
    if new == 0 {
        println!("no new messages");
    }
    Ok(())
}

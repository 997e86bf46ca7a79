//! The `herald` command line's clap definitions: the top-level [`Cli`] and its subcommand
//! enums. `main.rs` parses them and runs the command.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "REST and on-chain events in, XMTP announcements out"
)]
pub struct Cli {
    /// Configuration file (TOML); environment variables HERALD_* override it. Without this
    /// flag, `./herald.toml` is read when it exists.
    #[arg(long, global = true, env = "HERALD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP API (migrating the database first).
    ///
    /// Settings come from the built-in defaults, then the file given with --config (or
    /// HERALD_CONFIG; default ./herald.toml when present), then HERALD_* environment
    /// variables: HERALD_LISTEN, HERALD_DATABASE_URL, HERALD_DATA_DIR, HERALD_MASTER_KEY,
    /// HERALD_ADMIN_TOKEN, HERALD_XMTP_NETWORK, and every other key as HERALD_<SECTION>_<KEY>.
    /// Every key is documented in src/config.default.toml.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Print the OpenAPI specification (YAML).
    Openapi,
    /// Print the XMTP messages a wallet received (as that wallet's own installation).
    Inbox {
        /// The wallet's private key, 64 hex characters (0x optional).
        #[arg(long, env = "HERALD_INBOX_KEY")]
        key: String,
        /// embedded (the node `herald serve` runs), local, dev, production or a node URL.
        /// Default: the configured `xmtp.network`.
        #[arg(long)]
        network: Option<String>,
        /// Print every message this inbox showed before too (kept in its state file), not
        /// only the new ones.
        #[arg(long)]
        all: bool,
    },
    /// Run herald's local XMTP v3 node (the API the official SDKs speak), e.g. for offline development.
    Devnode(xmtp_devnode::DevNodeArgs),
    /// Check that herald can use its XMTP network: name, connection and TLS, each API, an
    /// inbox lookup, the write budget. One line per check, with the fix when one fails; exits
    /// non-zero if any fails.
    Doctor {
        /// embedded (the node `herald serve` runs), local, dev, production, testnet… or a node
        /// URL. Default: the configured `xmtp.network`.
        #[arg(long)]
        network: Option<String>,
    },
    /// Admin credentials.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage the master key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Send an announcement through a running herald (HERALD_URL, HERALD_API_KEY) and print
    /// its id; --wait follows it with a progress bar. Exit status 3: herald refused the
    /// request; 4: some deliveries failed.
    Announce(herald::client::AnnounceArgs),
    /// Manage a channel's subscribers on a running herald (HERALD_URL, HERALD_API_KEY).
    Subscribers {
        #[command(subcommand)]
        command: herald::client::SubscribersCommand,
    },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Replace the generated admin token with a new one and print it once, alone on stdout.
    /// The old token stops working (running servers switch within 30 s). Not for a token set
    /// in the configuration (`admin_token`): change that there.
    ResetToken,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Re-seal every secret (channel wallet keys, XMTP client state) under a new master key,
    /// in batches, while servers keep running with the new key as `master_key` and the old
    /// one as `master_key_previous`. Resumable: run it again after an interruption. The old
    /// key is the configured one (`master_key`, or `master_key_previous`).
    RotateMaster {
        /// File holding the new master key (64 hex characters or base64).
        #[arg(long)]
        new_key_file: PathBuf,
        /// Values re-sealed per batch.
        #[arg(long, default_value_t = herald::rotate::DEFAULT_BATCH)]
        batch: u32,
        /// Milliseconds to pause after each batch (spreads the load on a busy database).
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its API key once, alone on stdout.
    Create { name: String },
    /// Manage a tenant's API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create another API key for a tenant and print it once, alone on stdout.
    Create {
        /// Tenant id (`ten_…`).
        tenant: String,
        /// Optional label for the key.
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a tenant's API key (running servers stop accepting it within 30 s).
    Revoke {
        /// Tenant id (`ten_…`).
        tenant: String,
        /// Key id (`key_…`, see `GET /v1/keys`).
        key: String,
    },
}

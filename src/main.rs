//! The `herald` command line: `serve`, `migrate`, `tenant create NAME`, `tenant key
//! create|revoke`, `admin reset-token`, `inbox`, `openapi`, `devnode`, `doctor`, `keys
//! rotate-master`. The clap definitions live in `cli.rs`; this file runs the commands.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use herald::app::{self, App};
use herald::config::Config;
use herald::crypto::MasterKey;
use herald::http::openapi;
use herald::{store, telemetry};

use cli::{AdminCommand, Cli, Command, KeyCommand, KeysCommand, TenantCommand};

/// mimalloc instead of glibc malloc: the MLS and gRPC paths allocate a lot of short-lived
/// buffers, and glibc's allocator was ~10% of a first-contact broadcast's CPU (issue 15).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Read from the working directory when `--config` is not given.
const DEFAULT_CONFIG_FILE: &str = "herald.toml";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The tenant commands talk to a running herald: no configuration, no database.
    let cli = match cli.command {
        Command::Announce(args) => return herald::client::run_announce(args).await,
        Command::Subscribers { command } => return herald::client::run_subscribers(command).await,
        _ => cli,
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Openapi => {
            print!("{}", openapi::yaml());
            return Ok(());
        }
        Command::Devnode(args) => {
            telemetry::init_logging(&herald::config::LogConfig {
                format: herald::config::LogFormat::Text,
                filter: "info".into(),
            });
            return xmtp_devnode::run(args)
                .await
                .context("running the XMTP devnode");
        }
        _ => {}
    }
    let file = cli.config.or_else(|| {
        let local = PathBuf::from(DEFAULT_CONFIG_FILE);
        local.exists().then_some(local)
    });
    let config = Config::load(file.as_deref())?;
    telemetry::init_logging(&config.log);
    match cli.command {
        Command::Serve => serve(&config).await,
        Command::Migrate => {
            // The migration table stores whole seconds on SQLite: compare at that precision.
            let started = chrono::Timelike::with_nanosecond(&chrono::Utc::now(), 0)
                .expect("zero nanoseconds is valid");
            let store = store::connect(&config)
                .await
                .context("migrating the database")?;
            let applied = store.applied_migrations().await?;
            let now = applied.iter().filter(|(_, at)| *at >= started).count();
            let latest = applied.last().map_or(0, |(version, _)| *version);
            if now == 0 {
                eprintln!("database is up to date (schema version {latest:04})");
            } else {
                eprintln!(
                    "database migrated: {now} migration(s) applied, now at schema version \
                     {latest:04}"
                );
            }
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::RotateMaster {
                    new_key_file,
                    batch,
                    pause_ms,
                },
        } => {
            let pace = herald::rotate::Pace {
                batch,
                max_batches: None,
                pause: std::time::Duration::from_millis(pause_ms),
            };
            rotate_master(&config, &new_key_file, pace).await
        }
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let store = store::connect(&config)
                .await
                .context("opening the database")?;
            let created = herald::tenants::create_tenant(store.as_ref(), &name)
                .await
                .context("creating tenant")?;
            eprintln!(
                "created tenant {} ({}); its API key follows and is shown only once:",
                created.id, created.name
            );
            println!("{}", created.api_key);
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::ResetToken,
        } => {
            let store = store::connect(&config)
                .await
                .context("opening the database")?;
            let token = app::reset_admin_token(&config, store.as_ref()).await?;
            eprintln!(
                "issued a new admin token; the old one stops working (running servers switch \
                 within {} s). It follows and is shown only once:",
                herald::http::auth::AUTH_CACHE_TTL.as_secs()
            );
            println!("{token}");
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::Key { command },
        } => {
            let store = store::connect(&config)
                .await
                .context("opening the database")?;
            key_command(store.as_ref(), command, config.quotas.max_api_keys).await
        }
        Command::Inbox { key, network, all } => {
            let network = network.unwrap_or_else(|| config.xmtp.network.clone());
            let dir = config.data_dir.join("inboxes");
            herald::xmtp::inbox::print_inbox(&key, &network, &config.xmtp, &dir, all).await
        }
        Command::Doctor { network } => {
            let network = network.unwrap_or_else(|| config.xmtp.network.clone());
            let report = herald::xmtp::doctor::diagnose(&network, &config.xmtp).await;
            for line in report.lines() {
                println!("{line}");
            }
            match report.first_failure() {
                None => Ok(()),
                Some(failed) => anyhow::bail!("XMTP check `{}` failed", failed.name),
            }
        }
        Command::Openapi
        | Command::Devnode(_)
        | Command::Announce(_)
        | Command::Subscribers { .. } => unreachable!("handled above"),
    }
}

async fn key_command(
    store: &dyn store::Store,
    command: KeyCommand,
    max_keys: u32,
) -> anyhow::Result<()> {
    let tenant_id = |raw: &str| {
        herald::domain::TenantId::parse(raw).with_context(|| format!("{raw} is not a tenant id"))
    };
    match command {
        KeyCommand::Create { tenant, name } => {
            let tenant = tenant_id(&tenant)?;
            anyhow::ensure!(store.tenant_exists(&tenant).await?, "no tenant {tenant}");
            let created =
                herald::tenants::create_api_key(store, &tenant, name.as_deref(), max_keys)
                    .await
                    .context("creating the key")?;
            eprintln!(
                "created key {} for tenant {tenant}; it follows and is shown only once:",
                created.id
            );
            println!("{}", created.api_key);
        }
        KeyCommand::Revoke { tenant, key } => {
            let tenant = tenant_id(&tenant)?;
            let id = herald::domain::ApiKeyId::parse(&key)
                .with_context(|| format!("{key} is not a key id"))?;
            match store.revoke_api_key(&tenant, &id, false).await? {
                store::KeyRevoke::Revoked { .. } => eprintln!(
                    "revoked {id}; running servers refuse it within {} s",
                    herald::http::auth::AUTH_CACHE_TTL.as_secs()
                ),
                _ => anyhow::bail!("tenant {tenant} has no active key {id}"),
            }
        }
    }
    Ok(())
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    let token = app.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    app.run().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

async fn rotate_master(
    config: &Config,
    new_key_file: &Path,
    pace: herald::rotate::Pace,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(new_key_file)
        .with_context(|| format!("reading {}", new_key_file.display()))?;
    let new =
        MasterKey::parse(&text).with_context(|| format!("parsing {}", new_key_file.display()))?;
    if config.master_key.is_none() && !config.data_dir.join(app::MASTER_KEY_FILE).exists() {
        anyhow::bail!(
            "no master key configured and no key file in the data folder: nothing to rotate from"
        );
    }
    let old = app::resolve_master_key(config)?;
    let store = store::connect(config)
        .await
        .context("opening the database")?;
    // One line per batch on stderr: how far a run got (and, if it stops, that a re-run
    // resumes from there).
    let progress = |run: &herald::rotate::Rotation| {
        eprintln!(
            "progress: {} re-sealed, {} already under the new key",
            run.resealed, run.already
        )
    };
    let run = herald::rotate::rotate_master_with(store.as_ref(), &old, &new, pace, progress)
        .await
        .context("re-sealing (run again to resume: finished values are skipped)")?;
    eprintln!(
        "re-sealed {} secrets under the new master key ({} already were); every secret now opens \
         with the new key alone: make it `master_key` everywhere and remove `master_key_previous`",
        run.resealed, run.already
    );
    Ok(())
}

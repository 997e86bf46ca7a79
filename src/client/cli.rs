//! The clap arguments of the tenant commands and what each prints: results on stdout (an
//! announcement id, an import summary), progress and errors on stderr, and exit statuses a
//! script can tell apart (see [`super::EXIT_API_ERROR`], [`super::EXIT_PARTIAL`]).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use secrecy::SecretString;

use super::{announce, import_csv, read_csv, AnnounceRequest, Client, ClientError, EXIT_PARTIAL};

/// Where the running herald is and who is calling.
#[derive(Args)]
pub struct Connection {
    /// Base URL of the running herald.
    #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A tenant API key (`hk_…`). Prefer the environment variable: flags show in `ps`.
    #[arg(long, env = "HERALD_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

/// `herald announce`.
#[derive(Args)]
pub struct AnnounceArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Channel id (`ch_…`).
    #[arg(long)]
    pub channel: String,
    /// The message text.
    #[arg(long)]
    pub text: String,
    /// Send only to subscribers of this channel topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// critical, normal (default) or bulk.
    #[arg(long)]
    pub priority: Option<String>,
    /// Makes running the same command again safe (herald answers with the first result for
    /// 24 hours instead of announcing twice).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Follow the announcement until no delivery is pending, with a progress bar; exit 4 if
    /// any delivery failed.
    #[arg(long)]
    pub wait: bool,
}

/// `herald subscribers …`.
#[derive(Subcommand)]
pub enum SubscribersCommand {
    /// Subscribe every address of a CSV file (one per line; the first column, or the one
    /// named `address` in a header row). Prints a summary, and each refused row with its line
    /// number and reason on stderr; exits 4 if any row was refused.
    Import {
        #[command(flatten)]
        connection: Connection,
        /// Channel id (`ch_…`).
        #[arg(long)]
        channel: String,
        /// Addresses sent per request (herald accepts up to `quotas.max_import_batch`).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// The CSV file.
        file: PathBuf,
    },
}

/// Runs `herald announce`: prints the id, and with `--wait` the final counts on stderr.
pub async fn run_announce(args: AnnounceArgs) -> ExitCode {
    let outcome = async {
        let client = Client::new(
            &args.connection.url,
            &SecretString::from(args.connection.api_key),
        )?;
        let request = AnnounceRequest {
            channel: args.channel,
            text: args.text,
            topic: args.topic,
            priority: args.priority,
            idempotency_key: args.idempotency_key,
        };
        announce(&client, request, args.wait, |id| {
            println!("{id}");
            let _ = std::io::stdout().flush();
        })
        .await
    }
    .await;
    match outcome {
        Err(err) => report(&err),
        Ok(done) => {
            if let Some(finished) = &done.finished {
                let counts = &finished["counts"];
                eprintln!(
                    "{}: {} delivered, {} skipped, {} failed of {}",
                    finished["status"].as_str().unwrap_or("?"),
                    counts["delivered"],
                    counts["skipped"],
                    counts["failed"],
                    counts["total"]
                );
            }
            if done.failed() > 0 {
                eprintln!(
                    "error: {} deliveries failed (GET /v1/announcements/{}/deliveries?status=failed lists them)",
                    done.failed(),
                    done.id
                );
                ExitCode::from(EXIT_PARTIAL)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

/// Runs `herald subscribers …`.
pub async fn run_subscribers(command: SubscribersCommand) -> ExitCode {
    let SubscribersCommand::Import {
        connection,
        channel,
        batch,
        file,
    } = command;
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: reading {}: {err}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let (rows, read_errors) = read_csv(&text);
    let outcome = async {
        let client = Client::new(&connection.url, &SecretString::from(connection.api_key))?;
        import_csv(&client, &channel, rows, read_errors, batch).await
    }
    .await;
    match outcome {
        Err(err) => report(&err),
        Ok(report) => {
            for error in &report.errors {
                eprintln!("line {}: {:?}: {}", error.line, error.address, error.reason);
            }
            println!(
                "{} added, {} already subscribed, {} refused",
                report.added,
                report.already,
                report.errors.len()
            );
            if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_PARTIAL)
            }
        }
    }
}

/// Prints a failed call the way a user can act on it and picks its exit status.
fn report(err: &ClientError) -> ExitCode {
    match err {
        ClientError::Api { code, detail, .. } => {
            eprintln!("error: {code}: {detail}");
        }
        other => {
            let mut line = format!("error: {other}");
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                line.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{line}");
        }
    }
    ExitCode::from(err.exit_code())
}

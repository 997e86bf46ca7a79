//! Why a Postgres server could not be reached at startup, in words an operator can act on:
//! where (host, port, database; never the password) and the cause (connection refused, DNS,
//! authentication, missing database, timeout). A pool only says "timed out", so on that answer
//! one direct connection is tried to learn the real cause.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;

use super::StoreError;

/// How long the diagnosing connection may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns a failed connect into [`StoreError::Unreachable`] when the failure is about reaching
/// the server; other failures (migrations) pass through.
pub(super) async fn explain(url: &str, err: StoreError) -> StoreError {
    let Ok(options) = PgConnectOptions::from_str(url) else {
        return err;
    };
    let target = format!(
        "{}:{} (database {})",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default)")
    );
    let sqlx_error = match err {
        StoreError::Unavailable(e) | StoreError::Database(e) | StoreError::Conflict(e) => e,
        other => return other,
    };
    let cause = match &sqlx_error {
        sqlx::Error::PoolTimedOut => {
            match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(&options)).await {
                Err(_) => "timed out (no answer: a firewall, or the wrong host?)".to_owned(),
                Ok(Ok(connection)) => {
                    let _ = connection.close().await;
                    "timed out waiting for a connection (the server answers now: it may be \
                     overloaded or at max_connections)"
                        .to_owned()
                }
                Ok(Err(e)) => cause_of(&e),
            }
        }
        e => cause_of(e),
    };
    StoreError::Unreachable { target, cause }
}

fn cause_of(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (is Postgres running there, listening on that port?)".into()
            }
            std::io::ErrorKind::TimedOut => "timed out".into(),
            _ if is_dns(&io.to_string()) => {
                format!("DNS: the host name does not resolve ({io})")
            }
            _ => io.to_string(),
        },
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => {
                "authentication failed (check the user and password in the URL)".into()
            }
            Some("3D000") => "the database does not exist (create it first, e.g. createdb)".into(),
            _ => db.message().to_owned(),
        },
        sqlx::Error::Tls(e) => format!("TLS: {e}"),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        other if is_dns(&other.to_string()) => {
            format!("DNS: the host name does not resolve ({other})")
        }
        other => other.to_string(),
    }
}

fn is_dns(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("lookup address")
        || text.contains("name or service not known")
        || text.contains("nodename nor servname")
        || text.contains("no such host")
        || text.contains("temporary failure in name resolution")
}

//! Configuration mistakes a newcomer makes (issue 19): each gives exactly one clear message
//! naming the key and the fix, and a non-zero exit; the CLI's own `HERALD_*` variables do not
//! trip the configuration loader.

use std::process::Command;

/// Runs `herald ARGS` with only `env` (plus a private data folder) and returns (success,
/// stderr).
fn herald(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env_clear()
        .current_dir(dir.path())
        .env("HERALD_DATA_DIR", dir.path())
        .env("HERALD_LISTEN", "127.0.0.1:0")
        .env("HERALD_XMTP_EMBEDDED_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts a failed run printed one error, containing every `needle`.
fn one_error(run: (bool, String), needles: &[&str]) -> String {
    let (ok, stderr) = run;
    assert!(!ok, "must fail: {stderr}");
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "exactly one message: {stderr}"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
    stderr
}

#[test]
fn cli_environment_variables_are_not_configuration_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(&file, "db_max_connections = 3\n").unwrap();
    let file = file.display().to_string();
    // HERALD_CONFIG (advertised by --help) selects the file instead of being refused.
    let (ok, stderr) = herald(&["migrate"], &[("HERALD_CONFIG", &file)]);
    assert!(ok, "{stderr}");
    // HERALD_INBOX_KEY (advertised by `inbox --help`) does not break other commands.
    let key = "11".repeat(32);
    let (ok, stderr) = herald(&["migrate"], &[("HERALD_INBOX_KEY", &key)]);
    assert!(ok, "{stderr}");
    // A missing file is named with where it came from.
    one_error(
        herald(&["migrate"], &[("HERALD_CONFIG", "/nonexistent/h.toml")]),
        &["/nonexistent/h.toml", "HERALD_CONFIG"],
    );
}

#[test]
fn a_bad_value_is_reported_once_with_its_key_variable_and_reference() {
    one_error(
        herald(&["serve"], &[("HERALD_HTTP_BODY_LIMIT_BYTES", "lots")]),
        &[
            "`http.body_limit_bytes`",
            "HERALD_HTTP_BODY_LIMIT_BYTES",
            "config.default.toml",
        ],
    );
    one_error(
        herald(&["serve"], &[("HERALD_LISTN", "127.0.0.1:1")]),
        &["`listn`", "HERALD_LISTN", "not a setting"],
    );
    one_error(
        herald(&["serve"], &[("HERALD_LOG_FORMAT", "yaml")]),
        &["`log.format`", "HERALD_LOG_FORMAT", "text, json"],
    );
}

#[test]
fn the_database_url_scheme_is_checked_first() {
    let stderr = one_error(
        herald(&["serve"], &[("HERALD_DATABASE_URL", "mysql://x")]),
        &["HERALD_DATABASE_URL", "mysql://", "postgres://"],
    );
    assert!(!stderr.contains("MASTER_KEY"), "{stderr}");
}

#[test]
fn an_unknown_xmtp_network_stops_startup() {
    one_error(
        herald(&["serve"], &[("HERALD_XMTP_NETWORK", "bogus")]),
        &["xmtp.network", "bogus"],
    );
}

#[test]
fn an_unreachable_database_names_host_port_and_cause() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let stderr = one_error(
        herald(
            &["migrate"],
            &[(
                "HERALD_DATABASE_URL",
                "postgres://u:secretpw@127.0.0.1:1/herald",
            )],
        ),
        &["127.0.0.1:1", "connection refused"],
    );
    assert!(!stderr.contains("secretpw"), "no password: {stderr}");
}

#[tokio::test]
async fn a_missing_postgres_database_is_named() {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        return; // Postgres only.
    };
    if server.is_empty() {
        return;
    }
    let mut url = url_without_database(&server);
    url.push_str("/herald_no_such_database");
    one_error(
        herald(&["migrate"], &[("HERALD_DATABASE_URL", &url)]),
        &["herald_no_such_database", "does not exist"],
    );
}

/// `postgres://user@host:port/db?opts` → `postgres://user@host:port` (options dropped).
fn url_without_database(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.split(['?']).next().unwrap();
    let authority = rest.split('/').next().unwrap();
    format!("{scheme}://{authority}")
}

#[test]
fn the_embedded_node_on_postgres_is_refused_without_the_override() {
    let key = "ab".repeat(32);
    let postgres = [
        ("HERALD_DATABASE_URL", "postgres://u@127.0.0.1:1/herald"),
        ("HERALD_MASTER_KEY", key.as_str()),
    ];
    let stderr = one_error(
        herald(&["serve"], &postgres),
        &[
            "xmtp.embedded_with_postgres",
            "HERALD_XMTP_EMBEDDED_WITH_POSTGRES",
            "HERALD_XMTP_NETWORK",
            "no wallet",
        ],
    );
    assert!(
        !stderr.contains("connection refused"),
        "refused before connecting: {stderr}"
    );
    // With the override (a single-node dev setup) startup goes on, here to the database.
    let mut overridden = postgres.to_vec();
    overridden.push(("HERALD_XMTP_EMBEDDED_WITH_POSTGRES", "true"));
    one_error(
        herald(&["serve"], &overridden),
        &["127.0.0.1:1", "connection refused"],
    );
}

//! `herald doctor`: checks, one by one, that herald can use its XMTP network — the name
//! resolves, the connection opens (TLS certificate and ALPN h2 for `https://`), each API herald
//! calls answers a cheap read, a known address resolves — and prints one line per check with
//! the fix when one fails. The same report backs the XMTP part of `/readyz` (cached).

use std::time::Duration;

use serde::Serialize;
use xmtp_client::transport::connect;
use xmtp_client::{Transport, TransportError};
use xmtp_proto::identity_api::{get_inbox_ids_request, GetInboxIdsRequest};
use xmtp_proto::mls_api::{PagingInfo, QueryWelcomeMessagesRequest};
use xmtp_proto::xmtp::identity::associations::IdentifierKind;

use super::{GovernorMode, Network, XmtpConfig};

/// The address looked up by the inbox check (vitalik.eth: on XMTP's public networks it has an
/// inbox; on a private node "no inbox" is a valid answer too — the check is that the lookup
/// works).
pub const KNOWN_ADDRESS: &str = "0xd8da6bf26964af9d7eed9e03e53415d37aa96045";

/// How long one API call of a check may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// What to change, when the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check of one run, in order; a failed step skips those that depend on it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub network: String,
    /// Whether every check passed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The first failed check, if any.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.ok)
    }

    /// One line per check, as `herald doctor` prints them.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("network   {}", self.network)];
        for c in &self.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            let mut line = format!("{mark}  {:<10} {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                line.push_str(&format!("\n      fix: {fix}"));
            }
            lines.push(line);
        }
        lines
    }

    /// An empty report for `network`.
    pub fn new(network: &str) -> Report {
        Report {
            network: network.to_owned(),
            ok: true,
            checks: Vec::new(),
        }
    }

    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.ok = false;
        self.checks.push(Check {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }
}

/// Runs the checks for `network` (a name or URL; `embedded` means the node a local
/// `herald serve` runs on `embedded_listen`) with the rest of `config`.
pub async fn diagnose(network: &str, config: &XmtpConfig) -> Report {
    let mut report = Report::new(network);
    let resolved = match Network::parse(network, config.gateway_url.as_deref()) {
        Ok(n) => n,
        Err(e) => {
            report.fail(
                "network",
                e.to_string(),
                "set xmtp.network (HERALD_XMTP_NETWORK) to a known name or an http(s):// URL",
            );
            return report;
        }
    };
    let url = config.dial_url(&resolved);
    if resolved.to_string().contains(&url) {
        report.pass("network", resolved.to_string());
    } else {
        report.pass("network", format!("{resolved} at {url}"));
    }
    check_node(report, &resolved, &url, config).await
}

/// The checks of a resolved v3 network's node at `url` (what `/readyz` runs for the network
/// this process sends on).
pub async fn check_node(
    mut report: Report,
    resolved: &Network,
    url: &str,
    config: &XmtpConfig,
) -> Report {
    let url = url.to_owned();
    let tls = match config.tls_options() {
        Ok(tls) => tls,
        Err(e) => {
            report.fail(
                "tls",
                format!("{e:#}"),
                "point xmtp.tls_ca_file at a readable PEM file, or unset it",
            );
            return report;
        }
    };
    if !check_connection(&mut report, &url, &tls).await {
        return report;
    }
    let transport = match config.transport(resolved, &url) {
        Ok(t) => t,
        Err(e) => {
            report.fail("connect", format!("{e:#}"), "check xmtp.network");
            return report;
        }
    };
    let api = if resolved.is_d14n() {
        Api::D14n
    } else {
        Api::V3
    };
    check_identity_api(&mut report, transport.as_ref(), &url, api).await;
    check_mls_api(&mut report, transport.as_ref(), api).await;
    if !resolved.is_d14n() && report.ok {
        check_cutover(&mut report, &url, &tls).await;
    }
    report_budget(&mut report, config, resolved);
    report
}

/// TCP (and TLS) to the node. Returns whether the API checks can follow.
async fn check_connection(report: &mut Report, url: &str, tls: &xmtp_client::TlsOptions) -> bool {
    match connect::probe(url, tls).await {
        Ok(true) => {
            report.pass(
                "tls",
                format!("{}: certificate accepted, ALPN h2", connect::authority(url)),
            );
            true
        }
        Ok(false) => {
            report.pass(
                "connect",
                format!("{}: cleartext HTTP/2 (no TLS)", connect::authority(url)),
            );
            true
        }
        Err(problem) => {
            let name = match problem {
                connect::ConnectProblem::Certificate { .. }
                | connect::ConnectProblem::NotTls { .. }
                | connect::ConnectProblem::NoHttp2 { .. }
                | connect::ConnectProblem::Tls { .. } => "tls",
                _ => "connect",
            };
            report.fail(name, problem.to_string(), problem.fix());
            false
        }
    }
}

async fn timed<T>(
    call: impl std::future::Future<Output = Result<T, TransportError>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CALL_TIMEOUT.as_secs())),
    }
}

/// Which API the checks call, for their names in the report.
#[derive(Clone, Copy)]
enum Api {
    V3,
    D14n,
}

impl Api {
    fn inbox_call(self) -> &'static str {
        match self {
            Api::V3 => "IdentityApi/GetInboxIds",
            Api::D14n => "d14n gateway GetNodes + node GetInboxIds",
        }
    }

    fn welcome_call(self) -> &'static str {
        match self {
            Api::V3 => "MlsApi/QueryWelcomeMessages",
            Api::D14n => "d14n node QueryEnvelopes (welcomes)",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Api::V3 => "check that xmtp.network points at an XMTP v3 gRPC endpoint",
            Api::D14n => {
                "check xmtp.gateway_url (and gateway_auth_token), and that the nodes GetNodes \
                 lists are reachable from here"
            }
        }
    }
}

async fn check_identity_api(report: &mut Report, transport: &dyn Transport, url: &str, api: Api) {
    let req = GetInboxIdsRequest {
        requests: vec![get_inbox_ids_request::Request {
            identifier: KNOWN_ADDRESS.to_owned(),
            identifier_kind: IdentifierKind::Ethereum as i32,
        }],
    };
    match timed(transport.get_inbox_ids(req)).await {
        Ok(resp) => {
            let inbox = resp
                .responses
                .first()
                .and_then(|r| r.inbox_id.clone())
                .map_or("no inbox".to_owned(), |i| format!("inbox {i}"));
            report.pass(
                "identity",
                format!("{} answered ({KNOWN_ADDRESS}: {inbox})", api.inbox_call()),
            );
        }
        Err(e) => {
            let fix = if url.starts_with("http://") && connect::speaks_tls(url).await {
                "this port speaks TLS: use an https:// URL".to_owned()
            } else {
                api.fix().to_owned()
            };
            report.fail("identity", format!("{}: {e}", api.inbox_call()), fix);
        }
    }
}

async fn check_mls_api(report: &mut Report, transport: &dyn Transport, api: Api) {
    if report.checks.iter().any(|c| !c.ok) {
        return;
    }
    let req = QueryWelcomeMessagesRequest {
        installation_key: vec![0u8; 32],
        paging_info: Some(PagingInfo {
            direction: 1, // ascending (d14n reads only ascend)
            limit: 1,
            id_cursor: 0,
        }),
    };
    match timed(transport.query_welcome_messages(req)).await {
        Ok(_) => report.pass("mls", format!("{} answered", api.welcome_call())),
        Err(e) => report.fail("mls", format!("{}: {e}", api.welcome_call()), api.fix()),
    }
}

/// Asks a v3 node whether it announces its switch to d14n (`FetchD14nCutover`).
async fn check_cutover(report: &mut Report, url: &str, tls: &xmtp_client::TlsOptions) {
    use xmtp_proto::xmtp::migration::api::v1::d14n_migration_api_client::D14nMigrationApiClient;
    let Ok((channel, _)) = xmtp_client::transport::channel(url, tls) else {
        return;
    };
    let mut client = D14nMigrationApiClient::new(channel);
    let call = client.fetch_d14n_cutover(());
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(r)) if r.get_ref().timestamp_ns > 0 => {
            let at = chrono::DateTime::from_timestamp_nanos(r.get_ref().timestamp_ns as i64);
            if at <= chrono::Utc::now() {
                report.fail(
                    "cutover",
                    format!("this v3 network moved to d14n at {at}: it no longer takes writes"),
                    "set xmtp.network to a d14n network (testnet, mainnet with xmtp.gateway_url)",
                );
            } else {
                report.pass(
                    "cutover",
                    format!(
                        "v3 stops taking writes at {at}: plan the switch to d14n (xmtp.network)"
                    ),
                );
            }
        }
        Ok(Ok(_)) => report.pass("cutover", "no d14n cutover scheduled"),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => report.pass(
            "cutover",
            "no d14n cutover announced (node does not serve D14nMigrationApi)",
        ),
        Ok(Err(s)) => report.pass(
            "cutover",
            format!("could not ask about a d14n cutover: {}", s.message()),
        ),
        Err(_) => report.pass("cutover", "could not ask about a d14n cutover: no answer"),
    }
}

fn report_budget(report: &mut Report, config: &XmtpConfig, network: &Network) {
    let on = match config.governor {
        GovernorMode::On => true,
        GovernorMode::Off => false,
        GovernorMode::Auto => !matches!(network, Network::Embedded { .. }),
    };
    if on {
        report.pass(
            "budget",
            format!(
                "rate governor on: {} writes in a burst, then {} per minute per channel",
                config.rate_burst, config.rate_per_minute
            ),
        );
    } else {
        report.pass("budget", "rate governor off (no write limit applied)");
    }
}

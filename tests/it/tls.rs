//! TLS to the XMTP node. The embedded node serves TLS with a certificate from a test CA made
//! here; herald trusts it through `xmtp.tls_ca_file`, and the official SDK through
//! `SSL_CERT_FILE` (libxmtp's TLS client loads the platform roots, which that variable
//! replaces). Without the CA, registration fails with a certificate error that the channel's
//! API answer names.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::pipeline::wait_completed;
use crate::sdk::Sdk;

/// A CA and a node certificate for `localhost` / `127.0.0.1`, as PEM files in a temp dir.
pub struct TestPki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "herald test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let node_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "herald test node");
        let node_cert = params.signed_by(&node_key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let ca = write("ca.pem", ca_cert.pem());
        let cert = write("node.pem", node_cert.pem());
        let key = write("node.key", node_key.serialize_pem());
        TestPki {
            _dir: dir,
            ca,
            cert,
            key,
        }
    }
}

#[tokio::test]
async fn an_announcement_travels_over_tls_to_the_official_sdk() {
    let pki = TestPki::new();
    let app = TestApp::spawn_with(|c| {
        c.xmtp.workers = 1;
        c.xmtp.embedded_tls_cert = Some(pki.cert.clone());
        c.xmtp.embedded_tls_key = Some(pki.key.clone());
        c.xmtp.tls_ca_file = Some(pki.ca.clone());
    })
    .await;
    assert!(app.xmtp_url.starts_with("https://"), "{}", app.xmtp_url);
    let key = app.tenant("acme").await;
    let channel = app.channel(&key, "alerts").await;
    let sender = app.inbox_of(&key, &channel).await;

    let ca = pki.ca.to_str().unwrap();
    let mut sdk = Sdk::start_with_env(&[("SSL_CERT_FILE", ca)]).await;
    let user = sdk.user("tls-reader", &app.xmtp_url).await;
    app.subscribe(&key, &channel, &[user.address.to_lowercase()])
        .await;
    let text = format!("Over TLS ({})", ulid::Ulid::new());
    let r = app
        .post_announcement(&key, &channel, json!({ "text": text }))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let done = wait_completed(&app, &key, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["counts"]["delivered"], 1, "{done}");
    let texts = sdk
        .dm_texts(&user.name, &sender)
        .await
        .expect("the SDK has a DM from the channel");
    assert_eq!(texts, vec![text], "read exactly once over TLS");
    sdk.shutdown().await;
}

#[tokio::test]
async fn without_the_ca_registration_fails_naming_the_certificate() {
    let pki = TestPki::new();
    let app = TestApp::spawn_with(|c| {
        c.xmtp.embedded_tls_cert = Some(pki.cert.clone());
        c.xmtp.embedded_tls_key = Some(pki.key.clone());
    })
    .await;
    let key = app.tenant("acme").await;
    let created = app
        .post("/v1/channels", &key, json!({ "name": "alerts" }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let xmtp = &created.body["xmtp"];
    assert_eq!(xmtp["status"], "pending", "{xmtp}");
    assert!(xmtp["inbox_id"].is_null(), "{xmtp}");
    let error = xmtp["registration_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("certificate") && error.contains("unknown certificate authority"),
        "{error}"
    );
    assert!(error.contains("tls_ca_file"), "names the fix: {error}");
    // The same answer later, from the database (what another replica would show).
    let id = created.body["id"].as_str().unwrap();
    let again = app.get(&format!("/v1/channels/{id}"), &key).await.body;
    assert_eq!(again["xmtp"]["registration_error"], error, "{again}");
}

#[tokio::test]
async fn a_cleartext_url_to_a_tls_port_and_back_are_named() {
    let pki = TestPki::new();
    let tls_app = TestApp::spawn_with(|c| {
        c.xmtp.embedded_tls_cert = Some(pki.cert.clone());
        c.xmtp.embedded_tls_key = Some(pki.key.clone());
        c.xmtp.tls_ca_file = Some(pki.ca.clone());
    })
    .await;
    let plain_app = TestApp::spawn().await;
    // Clients of each node's address with the other scheme.
    let tls_port_as_http = tls_app.xmtp_url.replace("https://", "http://");
    let plain_port_as_https = plain_app.xmtp_url.replace("http://", "https://");
    let tls = xmtp_client::TlsOptions {
        extra_ca_pem: Some(std::fs::read(&pki.ca).unwrap()),
    };
    for (url, expected) in [
        (plain_port_as_https.as_str(), "not_tls"),
        (tls_app.xmtp_url.as_str(), "ok"),
    ] {
        let transport = xmtp_client::GrpcTransport::connect_lazy_with(url, &tls).unwrap();
        let result = xmtp_client::Transport::get_inbox_ids(
            &transport,
            xmtp_proto::identity_api::GetInboxIdsRequest::default(),
        )
        .await;
        match (result, expected) {
            (Ok(_), "ok") => {}
            (Err(xmtp_client::TransportError::Connect(p)), code) if p.code() == code => {
                assert!(!p.is_retryable(), "{p}");
                assert!(p.fix().contains("http://"), "{}", p.fix());
            }
            (other, _) => panic!("{url}: expected {expected}, got {other:?}"),
        }
    }
    // Cleartext HTTP/2 to a TLS port: the node hangs up on the preface; the error says so.
    let transport = xmtp_client::GrpcTransport::connect_lazy_with(&tls_port_as_http, &tls).unwrap();
    let err = xmtp_client::Transport::get_inbox_ids(
        &transport,
        xmtp_proto::identity_api::GetInboxIdsRequest::default(),
    )
    .await
    .expect_err("a TLS port does not answer cleartext");
    assert!(err.to_string().contains("https://"), "{err}");
}

/// Runs `herald doctor --network URL` with `env`; returns (success, stdout + stderr).
async fn doctor(url: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .env_clear()
        .env("HERALD_LOG_FILTER", "warn")
        .envs(env.iter().copied())
        .args(["doctor", "--network", url]);
    let output = command.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn doctor_passes_healthy_nodes_and_names_each_mistake() {
    use xmtp_devnode::{DevNode, DevNodeConfig, TlsIdentity};
    let pki = TestPki::new();
    let plain = DevNode::start(DevNodeConfig::default()).await.unwrap();
    let tls = DevNode::start(DevNodeConfig {
        tls: Some(TlsIdentity::read(&pki.cert, &pki.key).unwrap()),
        ..DevNodeConfig::default()
    })
    .await
    .unwrap();
    let ca = pki.ca.to_str().unwrap();
    let with_ca = [("HERALD_XMTP_TLS_CA_FILE", ca)];

    let (ok, out) = doctor(&plain.url(), &[]).await;
    assert!(ok, "{out}");
    for check in ["connect", "identity", "mls", "cutover", "budget"] {
        assert!(out.contains(&format!("ok    {check}")), "{check}: {out}");
    }
    let (ok, out) = doctor(&tls.url(), &with_ca).await;
    assert!(ok, "{out}");
    assert!(out.contains("certificate accepted, ALPN h2"), "{out}");
    // The same nodes as d14n gateways (cleartext and TLS: GetNodes lists the https:// node).
    let (ok, out) = doctor(&plain.url(), &[("HERALD_XMTP_GATEWAY_URL", &plain.url())]).await;
    assert!(ok && out.contains("d14n gateway"), "{out}");
    let tls_gateway = [
        ("HERALD_XMTP_TLS_CA_FILE", ca),
        ("HERALD_XMTP_GATEWAY_URL", &tls.url()),
    ];
    let (ok, out) = doctor(&tls.url(), &tls_gateway).await;
    assert!(ok && out.contains("d14n gateway"), "{out}");
    assert!(out.contains("certificate accepted"), "{out}");

    // The TLS node without its CA.
    let (ok, out) = doctor(&tls.url(), &[]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  tls") && out.contains("unknown certificate authority"),
        "{out}"
    );
    assert!(out.contains("tls_ca_file"), "{out}");
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (ok, out) = doctor(&format!("http://127.0.0.1:{closed}"), &[]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  connect") && out.contains("connection refused"),
        "{out}"
    );
    // Cleartext to the TLS port, and TLS to the cleartext port.
    let (ok, out) = doctor(&tls.url().replace("https://", "http://"), &with_ca).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("this port speaks TLS: use an https:// URL"),
        "{out}"
    );
    let (ok, out) = doctor(&plain.url().replace("http://", "https://"), &[]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("does not speak TLS") && out.contains("http:// URL"),
        "{out}"
    );
    // An unknown network name.
    let (ok, out) = doctor("bogus", &[]).await;
    assert!(!ok && out.contains("FAIL  network"), "{out}");
    plain.shutdown().await;
    tls.shutdown().await;
}

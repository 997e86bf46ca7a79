use std::collections::HashMap;

use super::envelopes::{fresh, Opened};
use super::*;

fn transport() -> D14nTransport {
    D14nTransport::connect_lazy("http://127.0.0.1:1", GatewayAuth::default()).unwrap()
}

fn opened(originator: u32, sequence_id: u64) -> Opened {
    Opened {
        originator,
        sequence_id,
        ns: 0,
        topic: vec![0, 1],
        payload: None,
    }
}

#[test]
fn networks_follow_libxmtps_names() {
    assert_eq!(
        gateway_for("testnet"),
        Some("https://payer.testnet.xmtp.network:443")
    );
    assert!(gateway_for("testnet-dev").unwrap().contains("testnet-dev"));
    assert_eq!(gateway_for("mainnet"), None, "no URL in libxmtp 1.10");
    assert_eq!(gateway_for("production"), None, "production is v3");
}

#[tokio::test]
async fn a_read_continues_from_the_remembered_cursor_of_the_id_it_handed_out() {
    let t = transport();
    let topic = vec![0, 1];
    assert!(
        t.start(&topic, 0, &[0, 10]).is_empty(),
        "from the beginning"
    );
    t.advance(
        &topic,
        HashMap::new(),
        &[opened(0, 3), opened(100, 7), opened(10, 5)],
    );
    let exact = t.start(&topic, 7, &[0, 10]);
    assert_eq!(exact, [(0, 3), (100, 7), (10, 5)].into());
    // Any other id: the v3-compatibility originators from that id, others from the start.
    assert_eq!(t.start(&topic, 4, &[0, 10]), [(0, 4), (10, 4)].into());
}

#[tokio::test]
async fn streams_skip_what_their_own_topic_already_had() {
    let t = transport();
    let (common, own) = t.starts(GROUP, &[(vec![1], 5), (vec![2], 2)], &[0, 10]);
    assert_eq!(common, [(0, 2), (10, 2)].into());
    let mut o = opened(10, 4);
    assert!(!fresh(&own, &o), "topic 1 is past 4");
    o.topic = vec![0, 2];
    assert!(fresh(&own, &o));
}

#[test]
fn the_gateway_credential_is_never_printed() {
    let auth = GatewayAuth::header("Authorization", "Bearer s3cret").unwrap();
    let shown = format!("{auth:?}");
    assert!(
        !shown.contains("s3cret") && shown.contains("authorization"),
        "{shown}"
    );
    assert!(GatewayAuth::header("bad name", "x").is_err());
}

#[test]
fn the_gateway_credential_rides_on_every_gateway_call() {
    use tonic::service::Interceptor as _;
    let mut auth = GatewayAuth::header("Authorization", "Bearer s3cret").unwrap();
    let req = auth.call(tonic::Request::new(())).unwrap();
    assert_eq!(
        req.metadata().get("authorization").unwrap(),
        "Bearer s3cret"
    );
    let req = GatewayAuth::default()
        .call(tonic::Request::new(()))
        .unwrap();
    assert!(req.metadata().is_empty());
}

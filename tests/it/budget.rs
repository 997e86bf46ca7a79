//! The deployment-wide XMTP write budget (`xmtp_budgets`): every worker of every replica takes
//! from one bucket, a critical lane keeps a reserve, and a rate-limit answer pauses everybody.

use std::time::{Duration, Instant};

use herald::workers::delivery::governor::{Governor, Shape};

use crate::helpers::TestApp;

/// Takes batches of 7 until the budget says wait; returns the tokens granted.
async fn drain(g: &Governor, critical: bool) -> usize {
    let mut total = 0;
    loop {
        match g.take(7, critical).await.unwrap() {
            Ok(n) => total += n,
            Err(_) => return total,
        }
    }
}

#[tokio::test]
async fn replicas_share_one_write_budget_with_a_critical_reserve() {
    let app = TestApp::spawn().await;
    // 100 tokens, 1 per minute (so a slow machine refills nearly nothing meanwhile), 10 kept
    // for critical work.
    let shape = Shape::new(100, 1, 1, 10);
    let replica_a = Governor::new(app.store.clone(), "writes test".into(), shape);
    let replica_b = Governor::new(app.store.clone(), "writes test".into(), shape);
    let start = Instant::now();
    let (a, b) = tokio::join!(drain(&replica_a, false), drain(&replica_b, false));
    let refilled = (start.elapsed().as_secs_f64() / 60.0).ceil() as usize + 1;
    assert!(
        a + b >= 90 && a + b <= 90 + refilled,
        "normal takers share 90 tokens (+{refilled} refilled): {a} + {b}"
    );
    // Whoever drained it, the other replica sees the same empty (normal-lane) budget.
    assert!(replica_a.take(1, false).await.unwrap().is_err());
    assert!(replica_b.take(1, false).await.unwrap().is_err());
    // The reserve is there for critical work only.
    let critical = drain(&replica_b, true).await;
    assert!((10..=10 + refilled).contains(&critical), "{critical}");
    // Another key is another network's budget.
    let other = Governor::new(app.store.clone(), "writes elsewhere".into(), shape);
    assert_eq!(other.take(5, false).await.unwrap(), Ok(5));
    // Unused tokens come back.
    replica_a.adjust(30).await.unwrap();
    assert!(replica_b.take(50, false).await.unwrap().unwrap() >= 20);
}

#[tokio::test]
async fn a_rate_limit_seen_by_one_replica_pauses_all() {
    let app = TestApp::spawn().await;
    let shape = Shape::new(3_000, 600, 1, 10);
    let a = Governor::new(app.store.clone(), "writes test".into(), shape);
    let b = Governor::new(app.store.clone(), "writes test".into(), shape);
    assert_eq!(b.take(10, false).await.unwrap(), Ok(10));
    a.penalize(Duration::from_secs(30)).await.unwrap();
    let wait = b.take(1, true).await.unwrap().unwrap_err();
    assert!(wait > Duration::from_secs(20), "{wait:?}");
}

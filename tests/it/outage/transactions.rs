//! No pooled Postgres connection is left inside a transaction (session timeout, cancelled writes).

use super::*;

/// In the Postgres pass: a store on a new database with `connections` pooled connections,
/// and the database's URL.
async fn postgres_store(connections: u32) -> Option<(herald::store::PgStore, String)> {
    let server = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let Some(server) = server else {
        eprintln!("outage: Postgres-only; runs in the Postgres pass (make test-pg)");
        return None;
    };
    let url = fresh_postgres_database(&server).await;
    let store = herald::store::PgStore::connect(&url, connections)
        .await
        .unwrap();
    Some((store, url))
}

/// A transaction left open on a pooled connection cannot hold its locks for good: every
/// session herald opens carries `idle_in_transaction_session_timeout`.
#[tokio::test]
async fn postgres_sessions_end_an_abandoned_transaction() {
    let Some((store, _)) = postgres_store(2).await else {
        return;
    };
    let timeout: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(timeout, "1min");
}

/// A write cancelled at any point (a client hanging up, a worker giving a round up) leaves no
/// transaction open on its pooled connection: with one connection, whatever runs next would
/// run inside it and hold its locks.
#[tokio::test]
async fn a_write_cancelled_at_any_point_leaves_no_transaction_open() {
    use herald::store::Store as _;
    let Some((store, url)) = postgres_store(1).await else {
        return;
    };
    let mut observer = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    for attempt in 0..400u64 {
        let tenant = herald::store::NewTenant {
            id: herald::domain::TenantId::generate(),
            name: format!("t{attempt}"),
            key_hash: format!("h{attempt}"),
        };
        let cut = std::time::Duration::from_micros(attempt % 100 * 10);
        let _ = tokio::time::timeout(cut, store.create_tenant(&tenant)).await;
        // The next statement on the pool's one connection, then a look from outside: it must
        // not be left `idle in transaction`.
        sqlx::query("SELECT 1").execute(store.pool()).await.unwrap();
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state = 'idle in transaction'",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        assert_eq!(
            open, 0,
            "attempt {attempt} (cancelled after {cut:?}): the connection came back inside a transaction"
        );
    }
}

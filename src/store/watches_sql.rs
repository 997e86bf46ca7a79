//! The SQL behind [`WatchStore`](super::WatchStore), written once for both backends: one impl
//! for every store over a [`SqlPool`] whose database is a [`FanOutDialect`] (alerts become
//! announcements through `announcements_sql::insert_in_tx`, the statement REST announcements
//! with an address list use).
//!
//! Portable SQL as in `chain_sql.rs`: `CAST($n AS TEXT) IS NULL` for optional text, booleans
//! tested bare (`NOT paused`, which SQLite reads on its 0/1 integers).

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Transaction, Type};

use super::announcements_sql::{self, FanOutDialect};
use super::dialect::{Dialect, SqlPool};
use super::selfservice::topic_filter;
use super::watches::*;
use super::*;
use crate::chain::watch::{rule::SubscriberState, WatchSpec};
use crate::domain::{Priority, WatchId};

/// id, channel, spec, revision, paused, evaluated block, alerted, created, updated.
type WatchRow = (
    String,
    String,
    String,
    i64,
    bool,
    Option<i64>,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

const WATCH_COLUMNS: &str = "w.id, w.channel_id, w.spec, w.revision, w.paused, w.evaluated_block, \
     (SELECT COUNT(*) FROM watch_states ws WHERE ws.watch_id = w.id AND NOT ws.armed), \
     w.created_at, w.updated_at";

fn spec_of(id: &str, text: &str) -> StoreResult<WatchSpec> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Database(sqlx::Error::Decode(
            format!("watch {id}: stored spec: {e}").into(),
        ))
    })
}

fn watch_from(row: WatchRow) -> StoreResult<Watch> {
    let (id, channel, spec, revision, paused, evaluated, alerted, created_at, updated_at) = row;
    Ok(Watch {
        spec: spec_of(&id, &spec)?,
        id: WatchId::from_trusted(id),
        channel_id: ChannelId::from_trusted(channel),
        revision: revision as u64,
        paused,
        evaluated_block: evaluated.map(|b| b as u64),
        alerted: alerted as u64,
        created_at,
        updated_at,
    })
}

fn spec_json(spec: &WatchSpec) -> String {
    serde_json::to_string(spec).expect("a WatchSpec serializes")
}

#[async_trait]
impl<S> WatchStore for S
where
    S: SqlPool,
    S::Db: FanOutDialect,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<&'q str>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<i64>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> bool: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<bool>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, S::Db>,
    for<'r> (i32,): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, i64): FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> WatchRow: FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, String, String, String, i64, Option<i64>):
        FromRow<'r, <S::Db as sqlx::Database>::Row>,
    for<'r> (String, Option<bool>, Option<i64>): FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn create_watch(&self, new: &NewWatch) -> StoreResult<Option<Watch>> {
        let now = Utc::now();
        let created = sqlx::query(
            "INSERT INTO watches (id, tenant_id, channel_id, chain_id, spec, revision, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, 1, $6, $6 \
             FROM channels WHERE id = $3 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(new.id.as_str())
        .bind(new.tenant.as_str())
        .bind(new.channel.as_str())
        .bind(new.spec.chain_id as i64)
        .bind(spec_json(&new.spec).as_str())
        .bind(now)
        .execute(self.sql_pool())
        .await?;
        if S::Db::rows_affected(&created) == 0 {
            return Ok(None);
        }
        self.get_watch(&new.tenant, &new.channel, &new.id).await
    }

    async fn list_watches(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Option<Vec<Watch>>> {
        let live: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM channels WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(channel.as_str())
        .bind(tenant.as_str())
        .fetch_optional(self.sql_pool())
        .await?;
        if live.is_none() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {WATCH_COLUMNS} FROM watches w WHERE w.channel_id = $1 AND w.tenant_id = $2 \
             AND w.deleted_at IS NULL AND (CAST($3 AS TEXT) IS NULL OR w.id > $3) ORDER BY w.id LIMIT $4"
        );
        let rows: Vec<WatchRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(tenant.as_str())
            .bind(page.cursor.as_deref())
            .bind(i64::from(page.limit))
            .fetch_all(self.sql_pool())
            .await?;
        rows.into_iter()
            .map(watch_from)
            .collect::<StoreResult<Vec<_>>>()
            .map(Some)
    }

    async fn get_watch(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &WatchId,
    ) -> StoreResult<Option<Watch>> {
        let sql = format!(
            "SELECT {WATCH_COLUMNS} FROM watches w WHERE w.id = $1 AND w.channel_id = $2 AND w.tenant_id = $3 \
             AND w.deleted_at IS NULL AND EXISTS (SELECT 1 FROM channels c WHERE c.id = w.channel_id AND c.deleted_at IS NULL)"
        );
        let row: Option<WatchRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(channel.as_str())
            .bind(tenant.as_str())
            .fetch_optional(self.sql_pool())
            .await?;
        row.map(watch_from).transpose()
    }

    async fn update_watch(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &WatchId,
        patch: &WatchPatch,
    ) -> StoreResult<Option<Watch>> {
        let spec = patch.spec.as_ref().map(spec_json);
        let updated = sqlx::query(
            "UPDATE watches AS w SET \
                 spec = COALESCE($4, spec), \
                 revision = revision + CASE WHEN CAST($4 AS TEXT) IS NULL THEN 0 ELSE 1 END, \
                 paused = COALESCE($5, paused), updated_at = $6 \
             WHERE id = $1 AND channel_id = $2 AND tenant_id = $3 AND deleted_at IS NULL \
             AND EXISTS (SELECT 1 FROM channels c WHERE c.id = w.channel_id AND c.deleted_at IS NULL)",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(tenant.as_str())
        .bind(spec.as_deref())
        .bind(patch.paused)
        .bind(Utc::now())
        .execute(self.sql_pool())
        .await?;
        if S::Db::rows_affected(&updated) == 0 {
            return Ok(None);
        }
        self.get_watch(tenant, channel, id).await
    }

    async fn delete_watch(
        &self,
        tenant: &TenantId,
        channel: &ChannelId,
        id: &WatchId,
    ) -> StoreResult<bool> {
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        let deleted = sqlx::query(
            "UPDATE watches AS w SET deleted_at = $4, updated_at = $4 \
             WHERE id = $1 AND channel_id = $2 AND tenant_id = $3 AND deleted_at IS NULL \
             AND EXISTS (SELECT 1 FROM channels c WHERE c.id = w.channel_id AND c.deleted_at IS NULL)",
        )
        .bind(id.as_str())
        .bind(channel.as_str())
        .bind(tenant.as_str())
        .bind(Utc::now())
        .execute(&mut *tx)
        .await?;
        if S::Db::rows_affected(&deleted) == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM watch_states WHERE watch_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn active_watches(&self, chain_id: u64) -> StoreResult<Vec<WatchRecord>> {
        let rows: Vec<(String, String, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT w.id, w.tenant_id, w.channel_id, w.spec, w.revision, w.evaluated_block FROM watches w \
             JOIN channels c ON c.id = w.channel_id \
             WHERE w.chain_id = $1 AND NOT w.paused AND w.deleted_at IS NULL AND c.deleted_at IS NULL \
             ORDER BY w.id",
        )
        .bind(chain_id as i64)
        .fetch_all(self.sql_pool())
        .await?;
        rows.into_iter()
            .map(|(id, tenant, channel, spec, revision, evaluated)| {
                Ok(WatchRecord {
                    spec: spec_of(&id, &spec)?,
                    id: WatchId::from_trusted(id),
                    tenant: TenantId::from_trusted(tenant),
                    channel: ChannelId::from_trusted(channel),
                    revision: revision as u64,
                    evaluated_block: evaluated.map(|b| b as u64),
                })
            })
            .collect()
    }

    async fn watch_targets(
        &self,
        watch: &WatchRecord,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<WatchTarget>> {
        let sql = format!(
            "SELECT s.address, ws.armed, ws.fired_block FROM subscribers s \
             LEFT JOIN watch_states ws ON ws.watch_id = $2 AND ws.address = s.address \
             WHERE s.channel_id = $1 AND s.status = 'active' AND s.address > $3 \
             AND (CAST($4 AS TEXT) IS NULL OR {topic}) \
             ORDER BY s.address LIMIT $5",
            topic = topic_filter("$4"),
        );
        let rows: Vec<(String, Option<bool>, Option<i64>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(watch.channel.as_str())
                .bind(watch.id.as_str())
                .bind(after)
                .bind(watch.spec.topic.as_deref())
                .bind(i64::from(limit))
                .fetch_all(self.sql_pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(address, armed, fired)| WatchTarget {
                address,
                state: armed.map(|armed| SubscriberState {
                    armed,
                    fired_block: fired.map(|b| b as u64),
                }),
            })
            .collect())
    }

    async fn commit_watch_page(
        &self,
        lease: &ChainLease,
        watch: &WatchRecord,
        block: u64,
        changes: &[WatchChange],
        round_done: bool,
    ) -> StoreResult<PageCommit> {
        let mut tx = S::Db::begin_write(self.sql_pool()).await?;
        // Row-locks the lease: a takeover waits for this transaction, a stale epoch stops it.
        let held = sqlx::query(
            "UPDATE chain_leases SET epoch = epoch WHERE chain_id = $1 AND holder = $2 AND epoch = $3",
        )
        .bind(lease.chain_id as i64)
        .bind(lease.holder.as_str())
        .bind(lease.epoch)
        .execute(&mut *tx)
        .await?;
        if S::Db::rows_affected(&held) != 1 {
            return Ok(PageCommit::LeaseLost);
        }
        let current: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM watches WHERE id = $1 AND revision = $2 AND NOT paused AND deleted_at IS NULL",
        )
        .bind(watch.id.as_str())
        .bind(watch.revision as i64)
        .fetch_optional(&mut *tx)
        .await?;
        if current.is_none() {
            return Ok(PageCommit::Stale);
        }
        let now = Utc::now();
        let mut alerts = 0;
        for change in changes {
            write_state::<S::Db>(&mut tx, watch, block, change, now).await?;
            if let Some(text) = &change.alert {
                if alert::<S::Db>(&mut tx, watch, &change.address, text, now).await? {
                    alerts += 1;
                }
            }
        }
        if round_done {
            sqlx::query("UPDATE watches SET evaluated_block = $2 WHERE id = $1")
                .bind(watch.id.as_str())
                .bind(block as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(PageCommit::Done { alerts })
    }
}

async fn write_state<DB>(
    tx: &mut Transaction<'_, DB>,
    watch: &WatchRecord,
    block: u64,
    change: &WatchChange,
    now: DateTime<Utc>,
) -> StoreResult<()>
where
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(
        "INSERT INTO watch_states (watch_id, address, armed, fired_block, last_value, last_block, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (watch_id, address) DO UPDATE SET armed = EXCLUDED.armed, \
             fired_block = EXCLUDED.fired_block, last_value = EXCLUDED.last_value, \
             last_block = EXCLUDED.last_block, updated_at = EXCLUDED.updated_at",
    )
    .bind(watch.id.as_str())
    .bind(change.address.as_str())
    .bind(change.state.armed)
    .bind(change.state.fired_block.map(|b| b as i64))
    .bind(change.value.as_deref())
    .bind(block as i64)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One announcement with one delivery, to `address` only; false if the channel is gone.
async fn alert<DB>(
    tx: &mut Transaction<'_, DB>,
    watch: &WatchRecord,
    address: &str,
    text: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool>
where
    DB: FanOutDialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
{
    let new = NewAnnouncement {
        id: AnnouncementId::generate(),
        tenant: watch.tenant.clone(),
        channel: watch.channel.clone(),
        text: text.to_owned(),
        priority: Priority::Normal,
        audience: Audience::Addresses(vec![Address::from_trusted(address.to_owned())]),
        send_at: None,
        content: None,
    };
    Ok(announcements_sql::insert_in_tx::<DB>(tx, &new, now)
        .await?
        .is_some())
}

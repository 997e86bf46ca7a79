//! Postgres backend: the production store.
//!
//! Fan-out uses `INSERT … SELECT` (from `subscribers`, or from `unnest($n::text[])` for a
//! targeted audience) so 10,000 delivery rows cost one statement and no client memory.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const CHANNEL_COLUMNS: &str =
    "id, name, description, address, xmtp_inbox_id, xmtp_installation_id, created_at, updated_at";

/// Postgres-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn counts(&self, id: &str) -> StoreResult<Counts> {
        let groups: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM deliveries WHERE announcement_id = $1 GROUP BY status",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Counts::from_groups(groups))
    }
}

async fn insert_deliveries(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewAnnouncement,
    now: chrono::DateTime<Utc>,
) -> StoreResult<Counts> {
    match &new.audience {
        Audience::All => {
            let inserted = sqlx::query(
                "INSERT INTO deliveries (announcement_id, channel_id, address, priority, status, next_attempt_at, created_at, updated_at) \
                 SELECT $1, $2, s.address, $3, 'pending', $4, $4, $4 FROM subscribers s \
                 WHERE s.channel_id = $2 AND s.status = 'active'",
            )
            .bind(new.id.as_str())
            .bind(new.channel.as_str())
            .bind(new.priority.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected() as i64;
            Ok(Counts {
                total: inserted,
                pending: inserted,
                ..Counts::default()
            })
        }
        Audience::Addresses(addresses) => {
            let list: Vec<&str> = addresses.iter().map(Address::as_str).collect();
            sqlx::query(
                "INSERT INTO deliveries (announcement_id, channel_id, address, priority, status, reason, next_attempt_at, created_at, updated_at) \
                 SELECT $1, $2, a.address, $3, \
                        CASE WHEN s.address IS NULL THEN 'skipped' ELSE 'pending' END, \
                        CASE WHEN s.address IS NULL THEN 'not_subscribed' END, $4, $4, $4 \
                 FROM unnest($5::text[]) AS a(address) \
                 LEFT JOIN subscribers s ON s.channel_id = $2 AND s.address = a.address AND s.status = 'active' \
                 ON CONFLICT (announcement_id, address) DO NOTHING",
            )
            .bind(new.id.as_str())
            .bind(new.channel.as_str())
            .bind(new.priority.as_str())
            .bind(now)
            .bind(&list)
            .execute(&mut **tx)
            .await?;
            let groups: Vec<(String, i64)> = sqlx::query_as(
                "SELECT status, COUNT(*) FROM deliveries WHERE announcement_id = $1 GROUP BY status",
            )
            .bind(new.id.as_str())
            .fetch_all(&mut **tx)
            .await?;
            Ok(Counts::from_groups(groups))
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let value = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(value)
    }

    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_tenant(&self, tenant: &NewTenant) -> StoreResult<Tenant> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(tenant.id.as_str())
            .bind(&tenant.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO api_keys (key_hash, tenant_id, created_at) VALUES ($1, $2, $3)")
            .bind(&tenant.key_hash)
            .bind(tenant.id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Tenant {
            id: tenant.id.clone(),
            name: tenant.name.clone(),
            created_at: now,
        })
    }

    async fn tenant_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<TenantId>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(TenantId::from_trusted))
    }

    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO channels (id, tenant_id, name, description, address, wallet_key_sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {CHANNEL_COLUMNS}"
        );
        let row: ChannelRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(channel.id.as_str())
            .bind(channel.tenant.as_str())
            .bind(&channel.name)
            .bind(&channel.description)
            .bind(channel.address.as_str())
            .bind(&channel.wallet_key_sealed)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.into())
    }

    async fn list_channels(&self, tenant: &TenantId, page: &Page) -> StoreResult<Vec<Channel>> {
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE tenant_id = $1 AND deleted_at IS NULL \
             AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(&page.cursor)
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn get_channel(&self, tenant: &TenantId, id: &ChannelId) -> StoreResult<Option<Channel>> {
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        );
        let row: Option<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    async fn update_channel(
        &self,
        tenant: &TenantId,
        id: &ChannelId,
        patch: &ChannelPatch,
    ) -> StoreResult<Option<Channel>> {
        let sql = format!(
            "UPDATE channels SET name = COALESCE($3, name), \
             description = CASE WHEN $4 THEN $5 ELSE description END, updated_at = $6 \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL RETURNING {CHANNEL_COLUMNS}"
        );
        let row: Option<ChannelRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(tenant.as_str())
            .bind(&patch.name)
            .bind(patch.description.is_some())
            .bind(patch.description.clone().flatten())
            .bind(Utc::now())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    async fn delete_channel(&self, tenant: &TenantId, id: &ChannelId) -> StoreResult<bool> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "UPDATE channels SET deleted_at = $3, updated_at = $3 WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', reason = 'channel_deleted', updated_at = $2 \
             WHERE channel_id = $1 AND status = 'pending'",
        )
        .bind(id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn subscribe(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<SubscribeOutcome> {
        // `xmax = 0` distinguishes a fresh insert from an update in Postgres's upsert.
        let row: Option<(bool,)> = sqlx::query_as(
            "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
             VALUES ($1, $2, 'active', $3, $3) \
             ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', updated_at = $3 \
             WHERE subscribers.status <> 'active' RETURNING (xmax = 0)",
        )
        .bind(channel.as_str())
        .bind(address.as_str())
        .bind(Utc::now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((true,)) => SubscribeOutcome::Added,
            Some((false,)) => SubscribeOutcome::Reactivated,
            None => SubscribeOutcome::AlreadyActive,
        })
    }

    async fn subscribe_many(
        &self,
        channel: &ChannelId,
        addresses: &[Address],
    ) -> StoreResult<BatchOutcome> {
        let list: Vec<&str> = addresses.iter().map(Address::as_str).collect();
        let added = sqlx::query(
            "INSERT INTO subscribers (channel_id, address, status, created_at, updated_at) \
             SELECT $1, a, 'active', $3, $3 FROM unnest($2::text[]) AS a \
             ON CONFLICT (channel_id, address) DO UPDATE SET status = 'active', updated_at = $3 \
             WHERE subscribers.status <> 'active'",
        )
        .bind(channel.as_str())
        .bind(&list)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(BatchOutcome {
            added,
            already: addresses.len() as u64 - added,
        })
    }

    async fn unsubscribe(&self, channel: &ChannelId, address: &Address) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', updated_at = $3 \
             WHERE channel_id = $1 AND address = $2 AND status = 'active'",
        )
        .bind(channel.as_str())
        .bind(address.as_str())
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_subscribers(
        &self,
        channel: &ChannelId,
        page: &Page,
    ) -> StoreResult<Vec<Subscriber>> {
        let rows: Vec<(String, chrono::DateTime<Utc>)> = sqlx::query_as(
            "SELECT address, updated_at FROM subscribers WHERE channel_id = $1 AND status = 'active' \
             AND ($2::text IS NULL OR address > $2) ORDER BY address LIMIT $3",
        )
        .bind(channel.as_str())
        .bind(&page.cursor)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(address, at)| Subscriber {
                address: Address::from_trusted(address),
                subscribed_at: at,
            })
            .collect())
    }

    async fn create_announcement(
        &self,
        new: &NewAnnouncement,
        idempotency: Option<IdempotencyCompletion>,
    ) -> StoreResult<Announcement> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO announcements (id, tenant_id, channel_id, text, priority, status, total, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6)",
        )
        .bind(new.id.as_str())
        .bind(new.tenant.as_str())
        .bind(new.channel.as_str())
        .bind(&new.text)
        .bind(new.priority.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let counts = insert_deliveries(&mut tx, new, now).await?;
        let status = if counts.pending == 0 {
            AnnouncementStatus::Completed
        } else {
            AnnouncementStatus::Queued
        };
        sqlx::query("UPDATE announcements SET total = $2, status = $3 WHERE id = $1")
            .bind(new.id.as_str())
            .bind(counts.total)
            .bind(status.as_str())
            .execute(&mut *tx)
            .await?;
        let announcement = Announcement {
            id: new.id.clone(),
            channel_id: new.channel.clone(),
            text: new.text.clone(),
            priority: new.priority,
            status,
            counts,
            created_at: now,
        };
        if let Some(completion) = idempotency {
            let response = (completion.render)(&announcement);
            sqlx::query(
                "UPDATE idempotency_keys SET state = 'done', status_code = $3, response_body = $4 \
                 WHERE tenant_id = $1 AND key = $2",
            )
            .bind(completion.key.tenant.as_str())
            .bind(&completion.key.key)
            .bind(i32::from(response.status_code))
            .bind(&response.body)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(announcement)
    }

    async fn get_announcement(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
    ) -> StoreResult<Option<Announcement>> {
        let row: Option<AnnouncementRow> = sqlx::query_as(
            "SELECT id, channel_id, text, priority, status, created_at FROM announcements WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.as_str())
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(row.into_announcement(self.counts(id.as_str()).await?))),
            None => Ok(None),
        }
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        id: &AnnouncementId,
        status: Option<DeliveryStatus>,
        page: &Page,
    ) -> StoreResult<Option<Vec<Delivery>>> {
        let owned: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM announcements WHERE id = $1 AND tenant_id = $2")
                .bind(id.as_str())
                .bind(tenant.as_str())
                .fetch_optional(&self.pool)
                .await?;
        if owned.is_none() {
            return Ok(None);
        }
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT address, status, attempts, reason, updated_at FROM deliveries \
             WHERE announcement_id = $1 AND ($2::text IS NULL OR status = $2) \
             AND ($3::text IS NULL OR address > $3) ORDER BY address LIMIT $4",
        )
        .bind(id.as_str())
        .bind(status.map(DeliveryStatus::as_str))
        .bind(&page.cursor)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(rows.into_iter().map(Into::into).collect()))
    }

    async fn begin_idempotent(
        &self,
        key: &IdempotencyKey,
        request_hash: &str,
    ) -> StoreResult<IdempotencyBegin> {
        let now = Utc::now();
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, state, created_at) \
             VALUES ($1, $2, $3, 'in_flight', $4) ON CONFLICT (tenant_id, key) DO NOTHING",
        )
        .bind(key.tenant.as_str())
        .bind(&key.key)
        .bind(request_hash)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(IdempotencyBegin::Started);
        }
        let row: Option<IdempotencyRow> = sqlx::query_as(
            "SELECT request_hash, state, status_code, response_body, created_at FROM idempotency_keys \
             WHERE tenant_id = $1 AND key = $2",
        )
        .bind(key.tenant.as_str())
        .bind(&key.key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            // Abandoned between our insert and read: the caller may simply retry.
            return Ok(IdempotencyBegin::InProgress);
        };
        if let Some(verdict) = row.judge(request_hash, now) {
            return Ok(verdict);
        }
        // Expired or stale: take it over, guarded by the old timestamp so that of two
        // concurrent takeovers exactly one wins.
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET request_hash = $3, state = 'in_flight', status_code = NULL, \
             response_body = NULL, created_at = $4 WHERE tenant_id = $1 AND key = $2 AND created_at = $5",
        )
        .bind(key.tenant.as_str())
        .bind(&key.key)
        .bind(request_hash)
        .bind(now)
        .bind(row.created_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(if taken == 1 {
            IdempotencyBegin::Started
        } else {
            IdempotencyBegin::InProgress
        })
    }

    async fn abandon_idempotent(&self, key: &IdempotencyKey) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND state = 'in_flight'")
            .bind(key.tenant.as_str())
            .bind(&key.key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_idempotency_keys(
        &self,
        before: chrono::DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        // Batched so a large backlog never holds locks for long.
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE (tenant_id, key) IN \
             (SELECT tenant_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

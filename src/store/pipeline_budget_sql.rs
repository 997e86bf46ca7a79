//! The deployment-wide XMTP write budget (`xmtp_budgets`, see [`BudgetRow`]) written once for
//! both backends: reading a token bucket and writing it back only over the version read (the
//! bodies of [`PipelineStore::budget_get`](crate::store::PipelineStore::budget_get) and
//! [`PipelineStore::budget_put`](crate::store::PipelineStore::budget_put), which
//! `pipeline_sql.rs` delegates here).

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Type};

use crate::store::dialect::{Dialect, SqlPool};
use crate::store::pipeline::BudgetRow;
use crate::store::StoreResult;

type Row<DB> = <DB as sqlx::Database>::Row;

/// A budget as read: `(tokens, refilled at, paused until, version)`.
type BudgetColumns = (f64, DateTime<Utc>, Option<DateTime<Utc>>, i64);

/// See [`PipelineStore::budget_get`](crate::store::PipelineStore::budget_get).
pub(super) async fn budget_get<S>(store: &S, key: &str) -> StoreResult<Option<BudgetRow>>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'r> BudgetColumns: FromRow<'r, Row<S::Db>>,
{
    let row: Option<BudgetColumns> = sqlx::query_as(
        "SELECT tokens, refilled_at, paused_until, version FROM xmtp_budgets WHERE budget_key = $1",
    )
    .bind(key)
    .fetch_optional(store.sql_pool())
    .await?;
    Ok(
        row.map(|(tokens, refilled_at, paused_until, version)| BudgetRow {
            tokens,
            refilled_at,
            paused_until,
            version,
        }),
    )
}

/// See [`PipelineStore::budget_put`](crate::store::PipelineStore::budget_put): the first
/// version inserts the row, a later one updates it only over the version before.
pub(super) async fn budget_put<S>(store: &S, key: &str, row: &BudgetRow) -> StoreResult<bool>
where
    S: SqlPool,
    <S::Db as sqlx::Database>::Arguments: IntoArguments<S::Db>,
    for<'c> &'c mut <S::Db as sqlx::Database>::Connection: Executor<'c, Database = S::Db>,
    for<'q> &'q str: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> f64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> i64: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> DateTime<Utc>: Encode<'q, S::Db> + Type<S::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, S::Db>,
{
    let _turn = store.write_turn().await;
    let done = if row.version == 1 {
        sqlx::query(
            "INSERT INTO xmtp_budgets (budget_key, tokens, refilled_at, paused_until, version) \
             VALUES ($1, $2, $3, $4, 1) ON CONFLICT (budget_key) DO NOTHING",
        )
        .bind(key)
        .bind(row.tokens)
        .bind(row.refilled_at)
        .bind(row.paused_until)
        .execute(store.sql_pool())
        .await?
    } else {
        sqlx::query(
            "UPDATE xmtp_budgets SET tokens = $2, refilled_at = $3, paused_until = $4, version = $5 \
             WHERE budget_key = $1 AND version = $6",
        )
        .bind(key)
        .bind(row.tokens)
        .bind(row.refilled_at)
        .bind(row.paused_until)
        .bind(row.version)
        .bind(row.version - 1)
        .execute(store.sql_pool())
        .await?
    };
    Ok(S::Db::rows_affected(&done) == 1)
}

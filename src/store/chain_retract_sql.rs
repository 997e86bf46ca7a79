//! Reorg retractions, inside a chain batch's transaction: when a batch rolls back above a fork,
//! every event above it that was already announced (a trigger with `confirmations` below the
//! reorg depth) gets a retraction announcement, and the event row goes, so the log is
//! announced again if the new chain includes it.
//!
//! A retraction goes to the original's recipients that were sent it or may be being sent it
//! right now (its `delivered` deliveries and the `pending` ones a sender holds; someone who
//! unsubscribed meanwhile is `skipped: not_subscribed`), as an XMTP reply to each one's copy of
//! the original (see `domain::RichContent::Retraction`), and the original shows it as
//! `retracted_by`. Its other pending deliveries are not sent at all (`skipped: retracted`).

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Transaction, Type};

use super::announcements_sql::{self, FanOutDialect};
use super::chain::chain_err;
use super::rows::parse_content;
use super::settle_sql;
use super::*;
use crate::chain::store::ChainStoreError;
use crate::domain::{Priority, RichContent};

/// Characters of the original text quoted in a retraction (clients without the reply codec
/// see only the retraction, so it says which message it retracts).
const QUOTED_CHARS: usize = 280;

/// The retraction's text: what happened and which message it is about.
pub(crate) fn retraction_text(original: &str, block: u64) -> String {
    let mut quoted: String = original.chars().take(QUOTED_CHARS).collect();
    if quoted.len() < original.len() {
        quoted.push('…');
    }
    format!(
        "Retracted: the on-chain event in this earlier message (block {block}) was removed by a \
         chain reorganization. Please disregard it.\n\n> {quoted}"
    )
}

/// Retracts the announced events of `chain` above `fork` and deletes every event row above
/// it (pending ones too). Returns how many announced events were retracted (a retraction
/// message is made for those that reached someone).
pub(super) async fn retract_above<DB>(
    tx: &mut Transaction<'_, DB>,
    chain: i64,
    fork: i64,
    now: DateTime<Utc>,
) -> Result<usize, ChainStoreError>
where
    DB: FanOutDialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> (String, String, String, Option<String>): FromRow<'r, DB::Row>,
{
    let announced: Vec<(String, i64)> = sqlx::query_as(
        "SELECT announcement_id, block_number FROM chain_events WHERE chain_id = $1 \
         AND block_number > $2 AND ready_at IS NULL AND announcement_id IS NOT NULL \
         ORDER BY block_number, announcement_id",
    )
    .bind(chain)
    .bind(fork)
    .fetch_all(&mut **tx)
    .await
    .map_err(chain_err)?;
    let retracted = announced.len();
    for (original, block) in announced {
        retract(tx, &original, block as u64, now).await?;
    }
    sqlx::query("DELETE FROM chain_events WHERE chain_id = $1 AND block_number > $2")
        .bind(chain)
        .bind(fork)
        .execute(&mut **tx)
        .await
        .map_err(chain_err)?;
    Ok(retracted)
}

/// Creates the retraction of announcement `original` (nothing when nobody was sent it or it
/// already has one).
async fn retract<DB>(
    tx: &mut Transaction<'_, DB>,
    original: &str,
    block: u64,
    now: DateTime<Utc>,
) -> Result<bool, ChainStoreError>
where
    DB: FanOutDialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> (String, String, String, Option<String>): FromRow<'r, DB::Row>,
{
    let row: Option<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT tenant_id, channel_id, text, content FROM announcements a WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM announcements r WHERE r.retracts = a.id)",
    )
    .bind(original)
    .fetch_optional(&mut **tx)
    .await
    .map_err(chain_err)?;
    let Some((tenant, channel, text, content)) = row else {
        return Ok(false);
    };
    cancel_unsent(tx, original, now).await?;
    let recipients: Vec<(String,)> = sqlx::query_as(
        "SELECT address FROM deliveries WHERE announcement_id = $1 \
         AND status IN ('delivered', 'pending') ORDER BY address",
    )
    .bind(original)
    .fetch_all(&mut **tx)
    .await
    .map_err(chain_err)?;
    if recipients.is_empty() {
        return Ok(false);
    }
    let new = NewAnnouncement {
        id: AnnouncementId::generate(),
        tenant: TenantId::from_trusted(tenant),
        channel: ChannelId::from_trusted(channel),
        text: retraction_text(&text, block),
        priority: Priority::Critical,
        audience: Audience::Addresses(
            recipients
                .into_iter()
                .map(|(a,)| Address::from_trusted(a))
                .collect(),
        ),
        send_at: None,
        content: Some(RichContent::Retraction {
            retracts: original.to_owned(),
            original_text: text,
            original: parse_content(content.as_deref()).map(Box::new),
        }),
    };
    let inserted = announcements_sql::insert_in_tx::<DB>(tx, &new, now)
        .await
        .map_err(|e| match e.into_sqlx() {
            Ok(e) => chain_err(e),
            Err(other) => ChainStoreError::Corrupt(other.to_string()),
        })?;
    if inserted.is_none() {
        // The channel is gone: nobody to tell.
        return Ok(false);
    }
    sqlx::query("UPDATE announcements SET retracts = $1 WHERE id = $2")
        .bind(original)
        .bind(new.id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(chain_err)?;
    tracing::info!(announcement.id = %new.id, retracts = original, chain.block = block, "reorg removed an announced log: retraction queued");
    Ok(true)
}

/// The original's deliveries no sender has started on end `skipped: retracted`: the event is
/// gone, so those recipients get neither the stale message nor a retraction. Rows a sender
/// holds right now (an unexpired lease) may be being published: they stay pending, and get the
/// retraction with the recipients who already have the original. The original completes once
/// nothing of it is pending.
async fn cancel_unsent<DB>(
    tx: &mut Transaction<'_, DB>,
    original: &str,
    now: DateTime<Utc>,
) -> Result<(), ChainStoreError>
where
    DB: FanOutDialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let cancelled = sqlx::query(
        "UPDATE deliveries SET status = 'skipped', reason = 'retracted', updated_at = $2 \
         WHERE announcement_id = $1 AND status = 'pending' \
           AND (lease_until IS NULL OR lease_until < $2)",
    )
    .bind(original)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(chain_err)?;
    let skipped = DB::rows_affected(&cancelled);
    if skipped == 0 {
        return Ok(());
    }
    settle_sql::add_skipped::<DB>(tx, original, skipped, now)
        .await
        .map_err(|e| match e.into_sqlx() {
            Ok(e) => chain_err(e),
            Err(other) => ChainStoreError::Corrupt(other.to_string()),
        })?;
    sqlx::query(
        "UPDATE announcements SET updated_at = $2, status = CASE \
           WHEN total <= delivered_count + failed_count + skipped_count \
           THEN 'completed' ELSE status END \
         WHERE id = $1",
    )
    .bind(original)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(chain_err)?;
    tracing::info!(
        announcement.id = original,
        cancelled = DB::rows_affected(&cancelled),
        "reorg removed a log before its announcement reached everyone: unsent deliveries skipped"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_quotes_the_retracted_message_and_names_the_block() {
        let text = retraction_text("Swap 5 ETH", 42);
        assert!(text.starts_with("Retracted:"), "{text}");
        assert!(
            text.contains("(block 42)") && text.ends_with("> Swap 5 ETH"),
            "{text}"
        );
        let long = "x".repeat(1000);
        assert!(retraction_text(&long, 1).ends_with("…"));
    }
}

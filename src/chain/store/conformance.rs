//! A behavioural check every [`ChainStore`] implementation must pass: the SQL stores call
//! [`check`] from their tests, this crate runs it against [`super::MemoryChainStore`].
//!
//! It exercises the contract the watcher relies on: at-most-once keys, pending events and
//! promotion, rollback that spares announced events, window pruning, the cursor, and per-trigger
//! `scanned_to`. Panics (with a message naming the broken rule) on the first violation.

use alloy::primitives::{Address, B256};

use super::{BlockRef, ChainBatch, ChainStore, CommitSummary, EventKey, EventStatus, MatchedEvent};

fn block(number: u64) -> BlockRef {
    BlockRef {
        number,
        hash: B256::with_last_byte(number as u8),
        parent_hash: B256::with_last_byte(number.wrapping_sub(1) as u8),
    }
}

fn event(
    trigger_id: &str,
    chain_id: u64,
    tx: u8,
    position: u32,
    number: u64,
    status: EventStatus,
) -> MatchedEvent {
    MatchedEvent {
        key: EventKey {
            trigger_id: trigger_id.to_owned(),
            chain_id,
            tx_hash: B256::repeat_byte(tx),
            log_position: position,
        },
        block_number: number,
        block_hash: block(number).hash,
        log_index: u64::from(position) + 3,
        address: Address::repeat_byte(0xaa),
        text: format!("event {tx}/{position} at {number}"),
        status,
    }
}

fn batch(chain_id: u64, cursor: u64) -> ChainBatch {
    ChainBatch {
        chain_id,
        rollback_above: None,
        events: Vec::new(),
        promote: Vec::new(),
        window_add: Vec::new(),
        window_prune_below: 0,
        cursor: block(cursor),
        scanned_to: Vec::new(),
    }
}

/// Runs the contract check on `store` for `chain_id`, which must have no state yet and one
/// active trigger with id `trigger_id`.
pub async fn check(store: &dyn ChainStore, chain_id: u64, trigger_id: &str) {
    let state = store.load_state(chain_id).await.expect("load empty state");
    assert!(
        state.cursor.is_none() && state.window.is_empty() && state.pending.is_empty(),
        "fresh chain must have no state"
    );

    // Blocks 10..=12: one event ready now, one pending until block 20.
    let ready = event(trigger_id, chain_id, 1, 0, 11, EventStatus::Ready);
    let pending = event(
        trigger_id,
        chain_id,
        2,
        1,
        12,
        EventStatus::Pending { ready_at: 20 },
    );
    let mut b = batch(chain_id, 12);
    b.events = vec![ready.clone(), pending.clone()];
    b.window_add = vec![block(10), block(11), block(12)];
    b.scanned_to = vec![(trigger_id.to_owned(), 12)];
    let summary = store.commit_batch(b).await.expect("commit first batch");
    assert_eq!(
        summary,
        CommitSummary {
            announced: 1,
            pending: 1,
            duplicates: 0,
            deferred: 0,
            retracted: 0,
        },
        "ready events are announced, pending ones stored"
    );

    let state = store.load_state(chain_id).await.unwrap();
    assert_eq!(state.cursor, Some(block(12)), "cursor is stored");
    assert_eq!(
        state.window,
        vec![block(10), block(11), block(12)],
        "window ascending by number"
    );
    assert_eq!(
        state.pending,
        vec![pending.clone()],
        "only pending events are loaded"
    );
    let triggers = store.active_triggers(chain_id).await.unwrap();
    let t = triggers
        .iter()
        .find(|t| t.id == trigger_id)
        .expect("trigger is active");
    assert_eq!(t.scanned_to, Some(12), "scanned_to is stored");

    // Replaying the same events (a restart redoing a range) changes nothing.
    let mut b = batch(chain_id, 12);
    b.events = vec![ready.clone(), pending.clone()];
    let summary = store.commit_batch(b).await.unwrap();
    assert_eq!(
        summary,
        CommitSummary {
            announced: 0,
            pending: 0,
            duplicates: 2,
            deferred: 0,
            retracted: 0,
        },
        "existing keys are skipped"
    );

    // A reorg above block 10 drops the pending event (block 12) and retracts the announced
    // one (block 11); the same tx re-included at block 11 is then announced again.
    let mut b = batch(chain_id, 10);
    b.rollback_above = Some(10);
    assert_eq!(
        store.commit_batch(b).await.unwrap().retracted,
        1,
        "the announced event above the fork is retracted"
    );
    let state = store.load_state(chain_id).await.unwrap();
    assert!(
        state.pending.is_empty(),
        "rollback drops pending events above the fork"
    );
    assert_eq!(
        state.window,
        vec![block(10)],
        "rollback drops window blocks above the fork"
    );
    assert_eq!(state.cursor, Some(block(10)));
    let mut moved = ready.clone();
    moved.block_number = 11;
    moved.text = "moved".into();
    let mut b = batch(chain_id, 11);
    b.events = vec![moved];
    let summary = store.commit_batch(b).await.unwrap();
    assert_eq!(
        (summary.announced, summary.duplicates),
        (1, 0),
        "a retracted log included again is announced again"
    );

    // Pending again, then promoted once its depth is reached; promoting twice is a no-op.
    let mut b = batch(chain_id, 12);
    b.events = vec![pending.clone()];
    assert_eq!(store.commit_batch(b).await.unwrap().pending, 1);
    for expected in [1, 0] {
        let mut b = batch(chain_id, 20);
        b.promote = vec![pending.key.clone()];
        b.window_add = vec![block(20)];
        b.window_prune_below = 12;
        let summary = store.commit_batch(b).await.unwrap();
        assert_eq!(
            summary.announced, expected,
            "promotion announces a pending event exactly once"
        );
    }
    let state = store.load_state(chain_id).await.unwrap();
    assert!(
        state.pending.is_empty(),
        "promoted events are no longer pending"
    );
    assert_eq!(
        state.window.first().map(|b| b.number),
        Some(20),
        "window_prune_below forgets old blocks"
    );
}

#[cfg(test)]
mod tests {
    use super::super::{MemoryChainStore, TriggerRecord};
    use crate::chain::TriggerSpec;

    #[tokio::test]
    async fn memory_store_meets_the_contract() {
        let store = MemoryChainStore::new();
        let spec: TriggerSpec = serde_json::from_value(serde_json::json!({
            "chain_id": 7, "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "event": "Transfer(address indexed from, address indexed to, uint256 value)",
            "template": "{{ args.value }}"
        }))
        .unwrap();
        store.put_trigger(7, TriggerRecord::new("t1", spec, None));
        super::check(&store, 7, "t1").await;
    }
}

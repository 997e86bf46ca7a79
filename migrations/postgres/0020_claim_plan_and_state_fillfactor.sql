-- The claim reads the claim-order index whatever the statistics say (issue 15).
--
-- `deliveries_due` (pending rows by due time; it serves the delivery-lag gauge) also matched
-- the claim's `status = 'pending'`, and when the statistics were last gathered in a quiet
-- moment (no pending rows: the usual case before a large announcement) Postgres costed a full
-- scan of it as free and took it for every claim: each 500-row claim read every pending row of
-- every channel and sorted them (8-13 ms per claim at 10,000 pending, growing with the
-- backlog) instead of reading 500 entries off `deliveries_claim_order`. The index now carries a
-- second condition that the claim never states (the claim spells its due test so that no index
-- serves it) and the lag query does, so only the lag query can use it. No row is ever due at
-- 'infinity', so the index holds the same rows. Rebuilding it reads the table once.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at < 'infinity';

-- Room on each channel_state page for the next version of its rows. Every message rewrites its
-- DM's small message-secrets delta row; with full pages each rewrite was a new row version on
-- another page and a new entry in the (channel, key) primary key. With 30% kept free it is a
-- heap-only update: 10,000 delta rewrites wrote 1.4 MB of WAL instead of 4.1 MB. Pages written
-- from now on use the setting.
ALTER TABLE channel_state SET (fillfactor = 70);

-- Half of each deliveries page kept free instead of 40% (migration 0018; issue 15). A claim
-- writes only the unindexed lease columns, so it is a heap-only update when the row's page has
-- room for the new version — and a claim leases every row of a page together. At 60% full a
-- page holds ~24 delivery rows (about 200 bytes each) and room for ~16 new versions, so about
-- a third of each claim still wrote a new entry in all five indexes; at 50% every row of the
-- page fits. Measured standalone (10,000 rows claimed and settled in batches of 500): 263-319 →
-- 229 ms, 15 → 13 MB of WAL, heap-only updates 13,240 → 19,000 of 30,000; the REST bench's
-- inserts were unchanged. Pages written from now on use the setting.
ALTER TABLE deliveries SET (fillfactor = 50);

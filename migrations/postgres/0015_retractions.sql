-- Reorg retractions: an announcement herald sends when the chain log another announcement was
-- about is removed by a reorg. `retracts` names the retracted announcement (its content is the
-- XMTP reply to that announcement's message); the index serves the `retracted_by` lookup shown
-- on the original.
ALTER TABLE announcements ADD COLUMN retracts TEXT;
CREATE INDEX announcements_retracts ON announcements (retracts) WHERE retracts IS NOT NULL;

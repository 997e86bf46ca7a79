-- Abuse limits and key management (issue 20).

-- The exact challenge text issued with each SIWE nonce: a subscribe must present it byte for
-- byte. Rows issued before this migration have none; their text is rebuilt from the row.
ALTER TABLE siwe_nonces ADD COLUMN message TEXT;
-- Outstanding (unused) challenges per channel and address, for the caps on issuing them.
CREATE INDEX siwe_nonces_outstanding ON siwe_nonces (channel_id, address, expires_at)
    WHERE used_at IS NULL;

-- API keys get a public id (to list and revoke them), an optional name, and the time they were
-- last used (written at most once a minute per key). Existing keys get an id derived from their
-- hash: 'key_0' and 25 hex digits is a valid ULID body, so it parses like a generated id.
ALTER TABLE api_keys ADD COLUMN id TEXT;
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
UPDATE api_keys SET id = 'key_0' || upper(substr(key_hash, 1, 25)) WHERE id IS NULL;
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);

-- Per-tenant quotas count active subscribers per channel and the recipients of unfinished
-- announcements; these partial indexes keep both counts off the full tables.
CREATE INDEX subscribers_active ON subscribers (channel_id) WHERE status = 'active';
CREATE INDEX announcements_unfinished ON announcements (tenant_id) WHERE status <> 'completed';

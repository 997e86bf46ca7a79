-- herald foundation schema (SQLite). Timestamps are RFC 3339 text (sqlx chrono encoding); ids are prefixed ULID text.
-- sqlx writes chrono DateTime<Utc> as RFC 3339 with 0/3/6/9 fraction digits and "+00:00"; in that
-- form text order equals time order, so compare timestamp columns only with bound DateTime<Utc>
-- parameters (never with SQLite's datetime() strings, which use a different format).

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- API keys live apart from tenants so a tenant can hold several (rotation). Only the SHA-256 of
-- a key is stored; lookups go by that hash.
CREATE TABLE api_keys (
    key_hash   TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE channels (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    name                 TEXT NOT NULL,
    description          TEXT,
    address              TEXT NOT NULL UNIQUE,
    wallet_key_sealed    BLOB NOT NULL,
    xmtp_inbox_id        TEXT,
    xmtp_installation_id TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    deleted_at           TEXT
);
CREATE INDEX channels_tenant ON channels (tenant_id, id);

-- Opaque per-channel key/value state for the XMTP client (identity and MLS group state).
CREATE TABLE channel_state (
    channel_id TEXT NOT NULL REFERENCES channels (id),
    key        BLOB NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (channel_id, key)
);

CREATE TABLE subscribers (
    channel_id TEXT NOT NULL REFERENCES channels (id),
    address    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'unsubscribed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, address)
);

CREATE TABLE announcements (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    channel_id TEXT NOT NULL REFERENCES channels (id),
    text       TEXT NOT NULL,
    priority   TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('critical', 'normal', 'bulk')),
    status     TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'completed')),
    total      INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX announcements_channel ON announcements (channel_id, id);

-- One row per recipient: the outbox the delivery pipeline drains. Lease columns fence workers:
-- a worker may only settle a row while it holds the current lease_token.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    announcement_id TEXT NOT NULL REFERENCES announcements (id),
    channel_id      TEXT NOT NULL REFERENCES channels (id),
    address         TEXT NOT NULL,
    priority        TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('critical', 'normal', 'bulk')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    lease_token     TEXT,
    reason          TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (announcement_id, address)
);
CREATE INDEX deliveries_status ON deliveries (announcement_id, status, address);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    status_code   INTEGER,
    response_body TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- On-chain event triggers (SQLite; timestamps are RFC 3339 text as in 0001): triggers, the per-chain cursor and block window, matched
-- events (the at-most-once ledger) and the per-chain watcher lease shared by replicas.

CREATE TABLE triggers (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    channel_id  TEXT NOT NULL REFERENCES channels (id),
    chain_id    INTEGER NOT NULL,
    -- The TriggerSpec as submitted (JSON text): the engine recompiles it when `revision` moves.
    spec        TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    start_block INTEGER NOT NULL,
    scanned_to  INTEGER,
    paused      INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);
CREATE INDEX triggers_channel ON triggers (channel_id, id);
CREATE INDEX triggers_chain ON triggers (chain_id) WHERE deleted_at IS NULL;

CREATE TABLE chain_cursors (
    chain_id     INTEGER PRIMARY KEY,
    block_number INTEGER NOT NULL,
    block_hash   BLOB NOT NULL,
    parent_hash  BLOB NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Recent processed headers: reorg detection compares parent hashes against these.
CREATE TABLE chain_blocks (
    chain_id     INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash   BLOB NOT NULL,
    parent_hash  BLOB NOT NULL,
    PRIMARY KEY (chain_id, block_number)
);

-- One row per (trigger, log). The key uses the log's position inside its transaction, not the
-- block-wide index, so a transaction re-included at another height keeps its key and is never
-- announced twice. `ready_at` NULL means announced; otherwise the head that makes it ready.
CREATE TABLE chain_events (
    trigger_id      TEXT NOT NULL REFERENCES triggers (id),
    chain_id        INTEGER NOT NULL,
    tx_hash         BLOB NOT NULL,
    log_position    INTEGER NOT NULL,
    block_number    INTEGER NOT NULL,
    block_hash      BLOB NOT NULL,
    log_index       INTEGER NOT NULL,
    address         BLOB NOT NULL,
    text            TEXT NOT NULL,
    ready_at        INTEGER,
    announcement_id TEXT REFERENCES announcements (id),
    created_at      TEXT NOT NULL,
    PRIMARY KEY (trigger_id, chain_id, tx_hash, log_position)
);
CREATE INDEX chain_events_pending ON chain_events (chain_id, block_number) WHERE ready_at IS NOT NULL;

-- Only the holder of a chain's lease watches it. `epoch` grows on every takeover and fences
-- commits: a watcher whose epoch is no longer current cannot commit a batch.
CREATE TABLE chain_leases (
    chain_id   INTEGER PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at TEXT NOT NULL
);

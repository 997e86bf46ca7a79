-- Watches: per-subscriber conditions on chain state (SQLite; timestamps are RFC 3339 text as in 0001).
--
-- `watches`: a channel's view-function watch. `spec` is the WatchSpec as submitted (JSON
-- text), recompiled by the evaluator when `revision` moves; `evaluated_block` is the last
-- block every subscriber was evaluated at (the next round is due `every_blocks` later).
CREATE TABLE watches (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    channel_id      TEXT NOT NULL REFERENCES channels (id),
    chain_id        INTEGER NOT NULL,
    spec            TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    paused          INTEGER NOT NULL DEFAULT 0,
    evaluated_block INTEGER,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    deleted_at      TEXT
);
CREATE INDEX watches_channel ON watches (channel_id, id);
CREATE INDEX watches_chain ON watches (chain_id) WHERE deleted_at IS NULL;

-- One row per (watch, subscriber) once the subscriber's state left the initial one (armed,
-- never alerted): `armed` and the block of the last alert drive the re-arm rule; the value
-- and block of the last change are kept for the API and for operators.
CREATE TABLE watch_states (
    watch_id    TEXT NOT NULL REFERENCES watches (id),
    address     TEXT NOT NULL,
    armed       INTEGER NOT NULL,
    fired_block INTEGER,
    last_value  TEXT,
    last_block  INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (watch_id, address)
);

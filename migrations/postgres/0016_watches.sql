-- Watches: per-subscriber conditions on chain state (Postgres).
--
-- `watches`: a channel's view-function watch. `spec` is the WatchSpec as submitted (JSON
-- text), recompiled by the evaluator when `revision` moves; `evaluated_block` is the last
-- block every subscriber was evaluated at (the next round is due `every_blocks` later).
CREATE TABLE watches (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    channel_id      TEXT NOT NULL REFERENCES channels (id),
    chain_id        BIGINT NOT NULL,
    spec            TEXT NOT NULL,
    revision        BIGINT NOT NULL,
    paused          BOOLEAN NOT NULL DEFAULT FALSE,
    evaluated_block BIGINT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    deleted_at      TIMESTAMPTZ
);
CREATE INDEX watches_channel ON watches (channel_id, id);
CREATE INDEX watches_chain ON watches (chain_id) WHERE deleted_at IS NULL;

-- One row per (watch, subscriber) once the subscriber's state left the initial one (armed,
-- never alerted): `armed` and the block of the last alert drive the re-arm rule; the value
-- and block of the last change are kept for the API and for operators.
CREATE TABLE watch_states (
    watch_id    TEXT NOT NULL REFERENCES watches (id),
    address     TEXT NOT NULL,
    armed       BOOLEAN NOT NULL,
    fired_block BIGINT,
    last_value  TEXT,
    last_block  BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (watch_id, address)
);

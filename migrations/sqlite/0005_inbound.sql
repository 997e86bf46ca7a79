-- Inbound chat run by `herald serve` (SQLite): when each channel's inbox is next read, and which
-- DM group each known peer talks on (the topics the inbound watcher streams).

-- One row per channel whose inbox was read at least once. A channel without a row is due.
-- `checked_at`: when the last pass started; `due_at`: the periodic fallback's next pass;
-- `marked_at`: when a stream last saw something arrive (due while after `checked_at`).
CREATE TABLE inbound_checks (
    channel_id TEXT PRIMARY KEY REFERENCES channels (id),
    checked_at TEXT NOT NULL,
    due_at     TEXT NOT NULL,
    marked_at  TEXT
);

-- The DM group (hex id) our client uses with the peer, once it exists.
ALTER TABLE inbound_peers ADD COLUMN group_id TEXT;

-- When a stream last saw an arrival in the peer's DM: a stream-triggered pass reads only
-- those DMs (and peers not followed yet); the periodic fallback reads them all.
ALTER TABLE inbound_peers ADD COLUMN marked_at TEXT;

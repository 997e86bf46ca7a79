-- Subscriber self-service (Postgres): wallet-signature nonces, the consent log, topics and
-- per-subscriber topic preferences, and the inbound chat bookkeeping.

-- The topic an announcement targets (NULL: every active subscriber). The sender re-checks the
-- recipient's preference at send time with it.
ALTER TABLE announcements ADD COLUMN topic TEXT;

-- SIWE challenges. A nonce is bound to one channel and one address and can be used once.
CREATE TABLE siwe_nonces (
    nonce      TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels (id),
    address    TEXT NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX siwe_nonces_expiry ON siwe_nonces (expires_at);

-- Append-only record of every subscription change: who, what, when, through which path, and
-- the evidence (a signature, a message id, a request id). Ids are ULIDs, so id order is time order.
CREATE TABLE consent_log (
    id         TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels (id),
    address    TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('subscribe', 'unsubscribe', 'topic_on', 'topic_off')),
    topic      TEXT,
    source     TEXT NOT NULL CHECK (source IN ('api', 'dm', 'signature', 'import')),
    evidence   TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX consent_log_subscriber ON consent_log (channel_id, address, id);
CREATE INDEX consent_log_channel ON consent_log (channel_id, id);

CREATE TABLE topics (
    channel_id   TEXT NOT NULL REFERENCES channels (id),
    name         TEXT NOT NULL,
    description  TEXT,
    default_mode TEXT NOT NULL CHECK (default_mode IN ('on', 'off', 'required')),
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, name)
);

-- Explicit choices only; a subscriber without a row gets the topic's default.
CREATE TABLE topic_preferences (
    channel_id TEXT NOT NULL REFERENCES channels (id),
    address    TEXT NOT NULL,
    topic      TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, address, topic)
);

-- Peers that have written to a channel, with the wallet address verified from their inbox's
-- identity log (never from message text). A first contact gets the welcome text.
CREATE TABLE inbound_peers (
    channel_id    TEXT NOT NULL REFERENCES channels (id),
    inbox_id      TEXT NOT NULL,
    address       TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, inbox_id)
);

-- Inbound messages already handled, so a restart never applies or answers one twice.
CREATE TABLE inbound_messages (
    channel_id   TEXT NOT NULL REFERENCES channels (id),
    message_id   TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);

-- Per-channel text a first-time chat contact receives (NULL: the built-in default).
ALTER TABLE channels ADD COLUMN welcome_text TEXT;

-- Delivery pipeline (Postgres): one sender lease per channel identity, so only one worker at a
-- time advances a channel's MLS state. The lease_token grows on every acquisition and fences
-- every state write and delivery settlement made under the lease.
CREATE TABLE channel_senders (
    channel_id   TEXT PRIMARY KEY REFERENCES channels (id),
    lease_owner  TEXT,
    lease_until  TIMESTAMPTZ,
    lease_token  BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- The claim query walks one channel's due rows in priority order.
CREATE INDEX deliveries_channel_due ON deliveries (channel_id, next_attempt_at) WHERE status = 'pending';

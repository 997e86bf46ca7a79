-- Signed webhooks to tenants (Postgres).
--
-- `webhook_endpoints`: where a tenant wants events. The signing secret is sealed under the
-- master key (bound to the endpoint id); after a rotation the previous secret stays valid until
-- `previous_until` and both signatures are sent. `event_types` is a JSON array of type names
-- (`[]`: every type).
CREATE TABLE webhook_endpoints (
    id                     TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    url                    TEXT NOT NULL,
    description            TEXT,
    event_types            TEXT NOT NULL,
    secret_sealed          BYTEA NOT NULL,
    previous_secret_sealed BYTEA,
    previous_until         TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    deleted_at             TIMESTAMPTZ
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id) WHERE deleted_at IS NULL;

-- The outbox: one row per event, written once (`dedupe_key` names its source row, so an event
-- captured twice is stored once). `payload` is the JSON body sent, byte for byte.
CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    event_type TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    payload    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row per (event, endpoint): the dispatcher's work queue and the delivery log. A replica
-- claims a due row by writing its lease; only the lease holder may settle it.
CREATE TABLE webhook_attempts (
    id               BIGSERIAL PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES webhook_events (id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_attempts_due ON webhook_attempts (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
-- Settled attempts are deleted after `[webhooks] retention_days`, oldest first.
CREATE INDEX webhook_attempts_settled ON webhook_attempts (updated_at) WHERE status <> 'pending';
CREATE INDEX webhook_events_created ON webhook_events (created_at);

-- How far the capture of each event source has read: (timestamp, key) of the last row seen.
CREATE TABLE webhook_cursors (
    source     TEXT PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    key        TEXT NOT NULL
);

-- The capture reads its sources in time order.
CREATE INDEX announcements_completed_at ON announcements (updated_at, id) WHERE status = 'completed';
CREATE INDEX deliveries_failed_at ON deliveries (updated_at, id) WHERE status = 'failed';
CREATE INDEX consent_log_created ON consent_log (created_at, id);
CREATE INDEX chain_events_announcement ON chain_events (announcement_id) WHERE announcement_id IS NOT NULL;
CREATE INDEX announcements_created ON announcements (created_at, id);

-- The XMTP network's write budget, shared by every channel and every replica of this
-- deployment (v3 nodes limit per client IP, not per sender). A token bucket updated by
-- compare-and-set on `version`; `paused_until` is set when the network answers
-- RESOURCE_EXHAUSTED.
CREATE TABLE xmtp_budgets (
    budget_key   TEXT PRIMARY KEY,
    tokens       DOUBLE PRECISION NOT NULL,
    refilled_at  TIMESTAMPTZ NOT NULL,
    paused_until TIMESTAMPTZ,
    version      BIGINT NOT NULL
);

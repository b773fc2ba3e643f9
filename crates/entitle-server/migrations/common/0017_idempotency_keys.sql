-- Idempotency keys of the management API: the first answer to a write sent with an
-- `Idempotency-Key`, replayed for retries of the same request for 24 hours. In the database
-- (not in memory) so a retry that lands on another instance gets the same answer.
-- No foreign keys: this is a short-lived cache of answers, purged by housekeeping.
CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL,
    api_key_id    TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,   -- SHA-256 of method, path and body
    created_at    BIGINT NOT NULL, -- UTC milliseconds; the key is forgotten 24 h after
    claim         TEXT NOT NULL,   -- who runs the request now; completion must match it
    lease_until   BIGINT NOT NULL, -- while in progress: after this a crashed run may be retried
    completed     BIGINT NOT NULL DEFAULT 0,
    status        BIGINT,
    content_type  TEXT,
    location      TEXT,
    body          TEXT,
    PRIMARY KEY (tenant_id, api_key_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Outgoing webhooks: a tenant's endpoints, the outbox of messages (one per endpoint and event,
-- written in the transaction of the change that causes it), and every delivery attempt.

CREATE TABLE webhook_endpoints (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    url                  TEXT NOT NULL,
    description          TEXT,
    events               TEXT NOT NULL,   -- JSON array of event types, or ["*"]
    enabled              BIGINT NOT NULL DEFAULT 1,
    disabled_reason      TEXT,            -- set when the server disabled it (failing for days)
    secret               TEXT NOT NULL,   -- whsec_…; read and written by one store function each
    previous_secret      TEXT,            -- also signs until previous_expires_at (a rotation)
    previous_expires_at  BIGINT,
    failing_since        BIGINT,          -- first failed attempt since the last success
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_messages (
    id                 TEXT PRIMARY KEY,  -- msg_…: the webhook-id receivers deduplicate on
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    endpoint_id        TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id           TEXT NOT NULL,     -- the payload's id, the same for every endpoint
    event_type         TEXT NOT NULL,
    object_id          TEXT NOT NULL,     -- one object's messages go out in seq order
    seq                BIGINT NOT NULL,
    payload            TEXT NOT NULL,
    status             TEXT NOT NULL,     -- pending | sending | delivered | failed
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT NOT NULL,
    claimed_until      BIGINT,            -- a worker's lease; a crashed worker's lapses
    last_status_code   BIGINT,
    last_latency_ms    BIGINT,
    last_response      TEXT,              -- an excerpt of the receiver's answer
    last_error         TEXT,
    queued_at          BIGINT NOT NULL,   -- retries stop about 3 days after this (a replay resets it)
    created_at         BIGINT NOT NULL,
    delivered_at       BIGINT
);
CREATE INDEX webhook_messages_due ON webhook_messages (status, next_attempt_at);
CREATE INDEX webhook_messages_object ON webhook_messages (endpoint_id, object_id, seq);
CREATE INDEX webhook_messages_endpoint ON webhook_messages (tenant_id, endpoint_id, id);

CREATE TABLE webhook_attempts (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    message_id        TEXT NOT NULL REFERENCES webhook_messages (id),
    status_code       BIGINT,             -- null: no answer (refused, timed out, not allowed)
    latency_ms        BIGINT NOT NULL,
    response_excerpt  TEXT,
    error             TEXT,
    created_at        BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_message ON webhook_attempts (message_id, id);

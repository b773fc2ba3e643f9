-- Licensing: signing keys, activations (seats), feature checkouts, usage records, activation log.

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,          -- the JWS key id (kid)
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    seed        TEXT NOT NULL,             -- Ed25519 private key seed, base64
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT                     -- no longer signs; still published for verification
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, created_at);

CREATE TABLE activations (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    entitlement_id       TEXT NOT NULL REFERENCES entitlements (id),
    seat_id              TEXT NOT NULL,
    seat_name            TEXT,
    secret_hash          TEXT NOT NULL UNIQUE,
    mode                 TEXT NOT NULL,    -- online | offline
    overdraft            BIGINT NOT NULL,  -- 1: took a seat beyond the seat count
    activated_at         BIGINT NOT NULL,
    last_lease_at        BIGINT NOT NULL,
    lease_expires_at     BIGINT NOT NULL,
    linger_expires_at    BIGINT NOT NULL,
    deactivated_at       BIGINT,
    deactivation_reason  TEXT,             -- deactivated | lapsed | revoked
    ip                   TEXT
);
-- One live seat per seat id and entitlement: concurrent activations of one device share it.
CREATE UNIQUE INDEX activations_live_seat ON activations (entitlement_id, seat_id) WHERE deactivated_at IS NULL;
CREATE INDEX activations_entitlement ON activations (tenant_id, entitlement_id, id);

CREATE TABLE feature_checkouts (
    activation_id   TEXT NOT NULL REFERENCES activations (id),
    feature_id      TEXT NOT NULL REFERENCES features (id),
    entitlement_id  TEXT NOT NULL REFERENCES entitlements (id),
    units           BIGINT NOT NULL,
    PRIMARY KEY (activation_id, feature_id)
);

CREATE TABLE usage_records (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    entitlement_id  TEXT NOT NULL REFERENCES entitlements (id),
    activation_id   TEXT NOT NULL REFERENCES activations (id),
    feature_id      TEXT NOT NULL REFERENCES features (id),
    amount          BIGINT NOT NULL,
    recorded_at     BIGINT NOT NULL
);
CREATE INDEX usage_records_entitlement ON usage_records (entitlement_id, recorded_at);

CREATE TABLE activation_log (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    entitlement_id  TEXT NOT NULL REFERENCES entitlements (id),
    activation_id   TEXT,
    seat_id         TEXT NOT NULL,
    action          TEXT NOT NULL,  -- activate | refresh | deactivate | denied
    code            TEXT,           -- why, for denials and forced deactivations
    ip              TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX activation_log_entitlement ON activation_log (tenant_id, entitlement_id, id);

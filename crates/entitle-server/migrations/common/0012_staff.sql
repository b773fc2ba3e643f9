-- The vendor's staff, who use the admin console: per tenant, with a role (admin, support,
-- viewer), an argon2 password, and single-use links to choose it.
CREATE TABLE staff (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    email          TEXT NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    disabled_at    BIGINT,
    UNIQUE (tenant_id, email)
);

CREATE TABLE staff_password_links (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    staff_id    TEXT NOT NULL REFERENCES staff (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- The console's dashboard counts, each by index.
CREATE INDEX entitlements_created ON entitlements (tenant_id, created_at);
CREATE INDEX entitlements_expiry ON entitlements (tenant_id, expires_at);
CREATE INDEX commerce_deliveries_outcome ON commerce_deliveries (tenant_id, outcome);
CREATE INDEX mail_outbox_status ON mail_outbox (tenant_id, status);

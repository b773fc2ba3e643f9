-- Entitle schema. Shared by SQLite and PostgreSQL: only TEXT and BIGINT columns, so one set of
-- SQL runs on both. Timestamps are UTC milliseconds since the Unix epoch. Flags are 0/1 BIGINTs.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    display_prefix  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE products (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    name                  TEXT NOT NULL,
    lease_period          TEXT NOT NULL,
    offline_lease_period  TEXT NOT NULL,
    grace_period          TEXT NOT NULL,
    linger_period         TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX products_tenant ON products (tenant_id, id);

CREATE TABLE features (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    product_id  TEXT NOT NULL REFERENCES products (id),
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (product_id, key)
);
CREATE INDEX features_tenant ON features (tenant_id, id);

CREATE TABLE attributes (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    product_id  TEXT NOT NULL REFERENCES products (id),
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (product_id, key)
);
CREATE INDEX attributes_tenant ON attributes (tenant_id, id);

CREATE TABLE editions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    product_id  TEXT NOT NULL REFERENCES products (id),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX editions_tenant ON editions (tenant_id, id);

CREATE TABLE edition_features (
    edition_id   TEXT NOT NULL REFERENCES editions (id),
    feature_id   TEXT NOT NULL REFERENCES features (id),
    limit_value  BIGINT,
    overdraft    BIGINT NOT NULL,
    PRIMARY KEY (edition_id, feature_id)
);

CREATE TABLE edition_attributes (
    edition_id    TEXT NOT NULL REFERENCES editions (id),
    attribute_id  TEXT NOT NULL REFERENCES attributes (id),
    value         TEXT NOT NULL,
    PRIMARY KEY (edition_id, attribute_id)
);

CREATE TABLE plans (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    product_id    TEXT NOT NULL REFERENCES products (id),
    name          TEXT NOT NULL,
    license_type  TEXT NOT NULL,
    duration      TEXT NOT NULL,
    start_mode    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX plans_tenant ON plans (tenant_id, id);

CREATE TABLE offerings (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    product_id        TEXT NOT NULL REFERENCES products (id),
    edition_id        TEXT NOT NULL REFERENCES editions (id),
    plan_id           TEXT NOT NULL REFERENCES plans (id),
    sku               TEXT NOT NULL,
    name              TEXT NOT NULL,
    seat_count        BIGINT NOT NULL,
    overdraft_kind    TEXT NOT NULL,
    overdraft_value   BIGINT NOT NULL,
    concurrency_mode  TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (tenant_id, sku)
);
CREATE INDEX offerings_tenant ON offerings (tenant_id, id);

CREATE TABLE customers (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    email         TEXT,
    external_ref  TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX customers_tenant ON customers (tenant_id, id);
CREATE INDEX customers_email ON customers (tenant_id, email);
CREATE UNIQUE INDEX customers_external_ref ON customers (tenant_id, external_ref);

CREATE TABLE end_users (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    customer_id    TEXT NOT NULL REFERENCES customers (id),
    email          TEXT NOT NULL,
    name           TEXT,
    role           TEXT NOT NULL,
    password_hash  TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (tenant_id, email)
);
CREATE INDEX end_users_tenant ON end_users (tenant_id, id);
CREATE INDEX end_users_customer ON end_users (customer_id);

CREATE TABLE entitlements (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    customer_id           TEXT NOT NULL REFERENCES customers (id),
    product_id            TEXT NOT NULL REFERENCES products (id),
    offering_id           TEXT NOT NULL REFERENCES offerings (id),
    sku                   TEXT NOT NULL,
    order_ref             TEXT,
    quantity              BIGINT NOT NULL,
    extra_seats           BIGINT NOT NULL,
    activation_code       TEXT NOT NULL,
    seat_count            BIGINT NOT NULL,
    overdraft_kind        TEXT NOT NULL,
    overdraft_value       BIGINT NOT NULL,
    concurrency_mode      TEXT NOT NULL,
    lease_period          TEXT NOT NULL,
    offline_lease_period  TEXT NOT NULL,
    grace_period          TEXT NOT NULL,
    linger_period         TEXT NOT NULL,
    license_type          TEXT NOT NULL,
    duration              TEXT NOT NULL,
    start_mode            TEXT NOT NULL,
    plan_kind             TEXT NOT NULL,
    starts_at             BIGINT,
    base_expires_at       BIGINT,
    expires_at            BIGINT,
    disabled_at           BIGINT,
    overrides             TEXT NOT NULL,
    seats_used            BIGINT NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, activation_code)
);
CREATE INDEX entitlements_tenant ON entitlements (tenant_id, id);
CREATE INDEX entitlements_customer ON entitlements (tenant_id, customer_id, id);
CREATE INDEX entitlements_order ON entitlements (tenant_id, order_ref);

CREATE TABLE entitlement_features (
    entitlement_id  TEXT NOT NULL REFERENCES entitlements (id),
    feature_id      TEXT NOT NULL REFERENCES features (id),
    enabled         BIGINT NOT NULL,
    limit_value     BIGINT,
    overdraft       BIGINT NOT NULL,
    used            BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (entitlement_id, feature_id)
);

CREATE TABLE entitlement_attributes (
    entitlement_id  TEXT NOT NULL REFERENCES entitlements (id),
    attribute_id    TEXT NOT NULL REFERENCES attributes (id),
    value           TEXT NOT NULL,
    PRIMARY KEY (entitlement_id, attribute_id)
);

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT,
    action       TEXT NOT NULL,
    object_kind  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    summary      TEXT NOT NULL,
    ip           TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, id);
CREATE INDEX events_object ON events (tenant_id, object_id, id);
CREATE INDEX events_time ON events (tenant_id, created_at);

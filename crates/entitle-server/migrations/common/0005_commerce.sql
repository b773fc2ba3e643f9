-- Storefront connectors: connections, mappings, every delivery, seen events, order states.

CREATE TABLE storefront_connections (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    provider           TEXT NOT NULL,
    name               TEXT NOT NULL,
    secrets            TEXT NOT NULL,   -- JSON array; HMAC verification needs them in clear
    tolerance_seconds  BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX storefront_connections_tenant ON storefront_connections (tenant_id, id);

CREATE TABLE storefront_mappings (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    connection_id  TEXT NOT NULL REFERENCES storefront_connections (id),
    provider_ref   TEXT NOT NULL,
    sku            TEXT NOT NULL,
    trial_sku      TEXT,
    quantity_mode  TEXT NOT NULL,       -- seats (quantity multiplies seats) | single
    created_at     BIGINT NOT NULL,
    UNIQUE (connection_id, provider_ref)
);
CREATE INDEX storefront_mappings_tenant ON storefront_mappings (tenant_id, id);

CREATE TABLE commerce_deliveries (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    connection_id  TEXT NOT NULL REFERENCES storefront_connections (id),
    event_id       TEXT,
    event_type     TEXT,
    order_ref      TEXT,
    received_at    BIGINT NOT NULL,
    outcome        TEXT NOT NULL,   -- applied | duplicate | ignored | unmapped | incomplete | unmatched | unreadable | rejected
    detail         TEXT,
    headers        TEXT NOT NULL,
    body           TEXT NOT NULL,
    objects        TEXT NOT NULL    -- JSON array of the ids it touched
);
CREATE INDEX commerce_deliveries_connection ON commerce_deliveries (tenant_id, connection_id, id);

CREATE TABLE commerce_events (
    connection_id  TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    PRIMARY KEY (connection_id, event_id)
);

CREATE TABLE commerce_orders (
    connection_id  TEXT NOT NULL,
    order_ref      TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    state          TEXT NOT NULL,   -- JSON of the merged order state
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (connection_id, order_ref)
);

CREATE TABLE commerce_order_aliases (
    connection_id  TEXT NOT NULL,
    alias          TEXT NOT NULL,
    order_ref      TEXT NOT NULL,
    PRIMARY KEY (connection_id, alias)
);

-- Events that name their order only by an id not seen yet (a refund before its purchase); applied
-- as soon as an event registers that id.
CREATE TABLE commerce_pending (
    connection_id  TEXT NOT NULL,
    alias          TEXT NOT NULL,
    delivery_id    TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    PRIMARY KEY (connection_id, alias, delivery_id)
);

-- Provider API access, to complete payloads that lack data (Stripe line items and customer emails,
-- Paddle customer emails). The base URL is configurable so tests use a local fake.
ALTER TABLE storefront_connections ADD COLUMN api_key TEXT;
ALTER TABLE storefront_connections ADD COLUMN api_base_url TEXT;

-- Zuora callouts carry whatever signature header the callout template names.
ALTER TABLE storefront_connections ADD COLUMN signature_header TEXT;

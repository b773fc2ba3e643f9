-- Mail: the outbox (queued in the same transaction as the change that causes a mail), per-tenant
-- templates, password set-up tokens, and account-based products.

CREATE TABLE mail_outbox (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    kind             TEXT NOT NULL,     -- credentials | test
    recipient        TEXT NOT NULL,
    from_name        TEXT NOT NULL,
    from_address     TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT NOT NULL,
    entitlement_id   TEXT,
    customer_id      TEXT,
    status           TEXT NOT NULL,     -- queued | sending | sent | failed
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    claimed_until    BIGINT,            -- a worker's claim; a crashed worker's claim lapses
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_entitlement ON mail_outbox (tenant_id, entitlement_id, id);
CREATE INDEX mail_outbox_customer ON mail_outbox (tenant_id, customer_id, id);

CREATE TABLE mail_templates (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    kind          TEXT NOT NULL,
    from_name     TEXT,
    from_address  TEXT,
    subject       TEXT,
    text_body     TEXT,
    html_body     TEXT,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

CREATE TABLE password_setup_tokens (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    end_user_id  TEXT NOT NULL REFERENCES end_users (id),
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);

ALTER TABLE products ADD COLUMN account_based BIGINT NOT NULL DEFAULT 0;

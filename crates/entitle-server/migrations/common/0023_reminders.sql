-- Expiry reminders and notices: one row per entitlement, kind and due date, inserted by whichever
-- instance handles it first (the primary key makes it exactly once), whether it was sent or
-- skipped (the storefront subscription renews by itself). Per-plan schedules override 30/7/1 days.

CREATE TABLE reminders (
    entitlement_id  TEXT NOT NULL REFERENCES entitlements (id),
    kind            TEXT NOT NULL,     -- expiring | grace_started | expired
    expires_at      BIGINT NOT NULL,   -- the expiry it is about: a renewal moves on to new keys
    days_before     BIGINT NOT NULL,   -- for expiring; 0 otherwise
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    outcome         TEXT NOT NULL,     -- sent | skipped_renews | skipped_no_recipient
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (entitlement_id, kind, expires_at, days_before)
);

CREATE TABLE reminder_schedules (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    plan_id      TEXT NOT NULL REFERENCES plans (id),
    days_before  TEXT NOT NULL,        -- JSON array of whole days, e.g. [30, 7, 1]
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, plan_id)
);

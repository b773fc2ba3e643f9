-- Usage over time, per entitlement and UTC day. Written in the transaction of each change (seat
-- taken or freed, terms changed, usage recorded), so reading a 90-day chart reads at most 90 rows
-- per series however many activations there were. A day without a row had no change: it carries
-- the previous day's end value.
CREATE TABLE seat_usage_days (
    entitlement_id  TEXT NOT NULL REFERENCES entitlements (id),
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    day             BIGINT NOT NULL,   -- UTC milliseconds, the start of the day
    seats_start     BIGINT NOT NULL,   -- seats in use before the day's first change
    seats_min       BIGINT NOT NULL,
    seats_max       BIGINT NOT NULL,
    seats_end       BIGINT NOT NULL,   -- after the day's last change
    licensed        BIGINT NOT NULL,   -- the seat count at the day's last change
    overdraft       BIGINT,            -- seats allowed beyond it; NULL: unlimited
    PRIMARY KEY (entitlement_id, day)
);

CREATE TABLE feature_usage_days (
    entitlement_id  TEXT NOT NULL REFERENCES entitlements (id),
    feature_id      TEXT NOT NULL REFERENCES features (id),
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    day             BIGINT NOT NULL,   -- UTC milliseconds, the start of the day
    used            BIGINT NOT NULL,   -- the sum of the day's usage records
    PRIMARY KEY (entitlement_id, feature_id, day)
);

-- Usage recorded before this migration is summed once; seats have no such history (the counter
-- only knows its present value), so their days start with the first change after the upgrade.
INSERT INTO feature_usage_days (entitlement_id, feature_id, tenant_id, day, used)
SELECT entitlement_id, feature_id, MIN(tenant_id), recorded_at - (recorded_at % 86400000), SUM(amount)
FROM usage_records
GROUP BY entitlement_id, feature_id, recorded_at - (recorded_at % 86400000);

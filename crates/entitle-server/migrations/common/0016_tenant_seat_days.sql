-- Seats in use across a tenant per UTC day, for the console's dashboard: sampled by the
-- housekeeping worker (a sum over the tenant's entitlements every few minutes), never written
-- by licensing requests, so no activation waits on a tenant-wide row.
CREATE TABLE tenant_seat_days (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    day         BIGINT NOT NULL,   -- UTC milliseconds, the start of the day
    seats_min   BIGINT NOT NULL,
    seats_max   BIGINT NOT NULL,
    seats_end   BIGINT NOT NULL,   -- at the day's last sample
    licensed    BIGINT NOT NULL,   -- the seat counts summed, at the last sample
    PRIMARY KEY (tenant_id, day)
);

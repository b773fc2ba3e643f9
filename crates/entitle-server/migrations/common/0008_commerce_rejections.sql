-- Badly signed storefront deliveries: kept as a bounded excerpt with the size and SHA-256 of the
-- whole body, capped per connection, and purged after a retention period.
ALTER TABLE commerce_deliveries ADD COLUMN body_size BIGINT;
ALTER TABLE commerce_deliveries ADD COLUMN body_sha256 TEXT;
ALTER TABLE commerce_deliveries ADD COLUMN body_truncated INTEGER NOT NULL DEFAULT 0;

-- The purge looks for old rejected deliveries.
CREATE INDEX commerce_deliveries_outcome_received ON commerce_deliveries (outcome, received_at);

-- Rejected deliveries per connection and hour: how many were stored (within the caps) and how many
-- were only counted (over them).
CREATE TABLE commerce_rejections (
    connection_id  TEXT NOT NULL,
    window_start   BIGINT NOT NULL,   -- UTC milliseconds, the start of the hour
    stored         BIGINT NOT NULL,
    dropped        BIGINT NOT NULL,
    PRIMARY KEY (connection_id, window_start)
);

-- Per-connection storefront settings: the zone the provider's local dates are in (NULL: the
-- provider's default), and whether a partial refund disables like a full one (0: recorded only).
ALTER TABLE storefront_connections ADD COLUMN time_zone TEXT;
ALTER TABLE storefront_connections ADD COLUMN disable_on_any_refund BIGINT NOT NULL DEFAULT 0;

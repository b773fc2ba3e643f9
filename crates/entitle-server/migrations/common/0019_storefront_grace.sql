-- Grace is for failed payments: whether a connection keeps it after a subscription the customer
-- ended (0: the licence expires at the period end).
ALTER TABLE storefront_connections ADD COLUMN grace_after_cancel BIGINT NOT NULL DEFAULT 0;

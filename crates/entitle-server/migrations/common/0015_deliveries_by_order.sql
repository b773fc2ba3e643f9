-- The console's entitlement page lists the deliveries of the entitlement's order.
CREATE INDEX commerce_deliveries_order ON commerce_deliveries (tenant_id, order_ref, id);

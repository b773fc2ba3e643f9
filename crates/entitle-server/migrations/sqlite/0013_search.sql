-- Search (the admin console's one box) and the management API's list filters: every lookup an
-- index, no table scans at a million entitlements.

-- Name prefixes, case-insensitive: `lower(name) >= lower($q) AND lower(name) < lower($q) || U+10FFFF`
-- range-scans these expression indexes (id last, so results come out in order without a sort).
CREATE INDEX customers_name_lower ON customers (tenant_id, lower(name), id);
CREATE INDEX activations_seat_name_lower ON activations (tenant_id, lower(seat_name), id);

-- Customers by email, paged by id: with the id in the index the planner no longer prefers walking
-- the tenant's customers in id order to avoid a sort.
CREATE INDEX customers_email_id ON customers (tenant_id, email, id);
DROP INDEX customers_email;

-- Exact seat ids across the tenant (the existing index starts with the entitlement).
CREATE INDEX activations_seat ON activations (tenant_id, seat_id, id);

-- `?order_ref=` and `?sku=` on entitlements, paged by id: the id completes each index so a page
-- is read in order. The new order index covers everything the old one did.
CREATE INDEX entitlements_order_id ON entitlements (tenant_id, order_ref, id);
DROP INDEX entitlements_order;
CREATE INDEX entitlements_sku ON entitlements (tenant_id, sku, id);

-- The provider's customer id of each storefront order, so support can search by it. Until now it
-- lived only inside the merged state JSON.
ALTER TABLE commerce_orders ADD COLUMN customer_ref TEXT;
UPDATE commerce_orders SET customer_ref = json_extract(state, '$.customer.reference') WHERE json_valid(state);
CREATE INDEX commerce_orders_customer ON commerce_orders (tenant_id, customer_ref);

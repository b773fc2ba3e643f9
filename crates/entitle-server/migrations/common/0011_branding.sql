-- Per-tenant branding for the portal. All optional: NULL means "use the default" (the tenant's
-- name, no logo, the default accent). Values are checked by the domain before they are stored.
ALTER TABLE tenants ADD COLUMN brand_display_name TEXT;
ALTER TABLE tenants ADD COLUMN brand_logo_url TEXT;
ALTER TABLE tenants ADD COLUMN brand_accent_colour TEXT;

-- Mail is claimed one at a time, just before it is sent. A claim names the instance holding it, so
-- a restarted instance takes back its dead predecessor's claims at once instead of waiting for
-- their leases to lapse; other instances take them when the lease lapses.
ALTER TABLE mail_outbox ADD COLUMN claimed_by TEXT;
CREATE INDEX mail_outbox_claims ON mail_outbox (status, claimed_until);

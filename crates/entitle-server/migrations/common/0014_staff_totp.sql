-- The staff's optional second factor: a TOTP secret, and the last time step used (a code is
-- accepted once).
ALTER TABLE staff ADD COLUMN totp_secret TEXT;
ALTER TABLE staff ADD COLUMN totp_last_step BIGINT;

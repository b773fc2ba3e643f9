-- Sent and failed mails keep their bodies (secrets already redacted) until `bodies_until`, then the
-- bodies are emptied. Mails that ended before this migration keep theirs 30 days after they ended.
ALTER TABLE mail_outbox ADD COLUMN bodies_until BIGINT;
UPDATE mail_outbox SET bodies_until = COALESCE(sent_at, created_at) + 2592000000
    WHERE status IN ('sent', 'failed');
CREATE INDEX mail_outbox_bodies_until ON mail_outbox (bodies_until);

-- Mails are queued with their template inputs and rendered by the mail worker just before sending
-- (under a budget, outside any transaction). `render_context` holds the JSON the template sees;
-- it is cleared once the rendered subject and bodies are stored. Mails queued by older versions
-- have it NULL: they were rendered when queued and are sent as they are.
ALTER TABLE mail_outbox ADD COLUMN render_context TEXT;

-- The web applications: sessions (any instance serves any request), single-use sign-in links,
-- and which end user holds a seat taken with an account (so a `user` sees their own seats).
CREATE TABLE web_sessions (
    token_hash     TEXT PRIMARY KEY,   -- SHA-256 of the cookie's secret
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    realm          TEXT NOT NULL,      -- portal (later: admin)
    subject_kind   TEXT NOT NULL,      -- end_user | entitlement (signed in with an activation code)
    subject_id     TEXT NOT NULL,
    csrf_token     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,    -- absolute end, whatever the activity
    ended_at       BIGINT
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

CREATE TABLE sign_in_links (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    end_user_id  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX sign_in_links_expiry ON sign_in_links (expires_at);

ALTER TABLE activations ADD COLUMN end_user_id TEXT;
CREATE INDEX activations_end_user ON activations (tenant_id, end_user_id) WHERE end_user_id IS NOT NULL;

-- Budgets of failed credential attempts (activation codes, passwords, sign-in), shared by every
-- instance: one row per scope (tenant + address, tenant + account, tenant + code prefix), a
-- fixed window, the failures in it, and the attempts being evaluated right now. An attempt is
-- admitted only while failures plus attempts in flight stay under the limit.
CREATE TABLE credential_budgets (
    scope         TEXT PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    used          BIGINT NOT NULL,
    in_flight     BIGINT NOT NULL
);
CREATE INDEX credential_budgets_window ON credential_budgets (window_start);

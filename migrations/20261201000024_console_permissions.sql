-- A console session holds the permissions of the link that opened it (never wider
-- than its issuer's), and remembers which operator issued that link, so disabling
-- the operator ends it as revoking a key ends the sessions of that key's links.
-- Sessions opened before this carry no permissions: they may only read.
ALTER TABLE console_sessions ADD COLUMN permissions text[];
ALTER TABLE console_sessions ADD COLUMN issued_by_operator uuid;
ALTER TABLE console_sessions ADD COLUMN issued_by_admin boolean NOT NULL DEFAULT false;

-- Ending every session of a tenant (its deletion) and listing open sessions.
CREATE INDEX console_sessions_open ON console_sessions (tenant_id) WHERE ended_at IS NULL;

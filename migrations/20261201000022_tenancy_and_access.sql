-- Tenancy and access: scoped API keys with permissions and expiry, an append-only
-- audit log, per-tenant quotas, named operators and server-side console sessions.

-- Keys made before this migration keep their power: every tenant, every permission.
ALTER TABLE api_keys
    ADD COLUMN tenant_ids  uuid[],
    ADD COLUMN permissions text[] NOT NULL
        DEFAULT '{events:write,read,endpoints:write,secrets:read,console-links,replay,tenants:write}',
    ADD COLUMN expires_at  timestamptz;

COMMENT ON COLUMN api_keys.tenant_ids IS 'NULL: every tenant; else the only tenants the key reaches';

-- Quotas: NULL takes the gateway's configured default.
ALTER TABLE tenants
    ADD COLUMN ingest_rate   integer CHECK (ingest_rate > 0),
    ADD COLUMN max_endpoints integer CHECK (max_endpoints >= 0);

-- Who did what, when, from where. Rows are only ever added.
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_kind  text NOT NULL CHECK (actor_kind IN ('api_key', 'admin', 'operator', 'console')),
    actor_id    uuid,
    actor_name  text NOT NULL DEFAULT '',
    action      text NOT NULL,
    tenant_id   uuid,
    target_id   uuid,
    details     jsonb NOT NULL DEFAULT '{}',
    address     inet,
    request_id  text
);

CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

CREATE FUNCTION hookrelay_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION hookrelay_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION hookrelay_audit_append_only();

-- Named operators, each with its own token (stored as a hash), so the audit log
-- says which one acted. The single admin token keeps working beside them.
CREATE TABLE operators (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CONSTRAINT operators_name_key UNIQUE,
    token_hash  bytea NOT NULL CONSTRAINT operators_token_hash_key UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- Console sessions, kept server-side so that signing out, revoking the key that
-- issued a tenant's link, disabling an operator or changing the admin token end
-- them at once. The cookie only carries the session's id, signed.
CREATE TABLE console_sessions (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('tenant', 'admin')),
    tenant_id    uuid,
    api_key_id   uuid,
    operator_id  uuid,
    -- A digest of the admin token that opened the session (admin token sessions).
    admin_digest bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz
);

CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

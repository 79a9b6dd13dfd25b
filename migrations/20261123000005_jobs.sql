-- Durable bulk jobs (e.g. re-sending an endpoint's failed deliveries in a window):
-- worked in chunks by any dispatcher, resumable from `cursor` after a crash.
CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('recover')),
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    endpoint_id  uuid NOT NULL REFERENCES endpoints (id),
    since        timestamptz NOT NULL,
    until        timestamptz,
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done')),
    cursor       uuid,
    done_count   integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX jobs_open_idx ON jobs (created_at) WHERE status <> 'done';

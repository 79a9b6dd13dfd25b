-- Deleting a tenant: marked at once (the API forgets it, its endpoints stop
-- receiving, its undelivered deliveries are dead-lettered with a reason), then its
-- rows are removed in chunks by any dispatcher, as a durable job with progress.
ALTER TABLE tenants ADD COLUMN deleted_at timestamptz;

CREATE TABLE tenant_deletions (
    id          uuid PRIMARY KEY,
    -- No foreign key: the tenant's row is the last thing the job removes.
    tenant_id   uuid NOT NULL,
    tenant_name text NOT NULL,
    status      text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done')),
    removed     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE INDEX tenant_deletions_open ON tenant_deletions (created_at) WHERE status <> 'done';

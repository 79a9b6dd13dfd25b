-- Dead-letter replays by filter run as durable jobs too: a `dead_replay` job holds
-- its filter (every part optional) and moves through matching dead deliveries in
-- chunks, like `recover`.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('recover', 'dead_replay'));
ALTER TABLE jobs
    ALTER COLUMN tenant_id DROP NOT NULL,
    ALTER COLUMN endpoint_id DROP NOT NULL,
    ALTER COLUMN since DROP NOT NULL,
    ADD COLUMN event_type text,
    ADD COLUMN reason text;
ALTER TABLE jobs ADD CONSTRAINT jobs_recover_scope CHECK (
    kind <> 'recover' OR (tenant_id IS NOT NULL AND endpoint_id IS NOT NULL AND since IS NOT NULL)
);

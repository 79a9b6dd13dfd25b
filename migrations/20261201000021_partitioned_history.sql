-- History partitioned by day, so retention drops whole partitions instead of
-- deleting rows: events by acceptance time, deliveries and attempts by their
-- UUIDv7 ids (whose first 48 bits are the creation time in milliseconds), which
-- keeps `id` their primary key and lets a lookup by id touch one partition.
-- Each table has a DEFAULT partition too, so a row outside every daily range
-- (clock skew, housekeeping not yet run) is stored rather than refused.
--
-- The existing rows are copied into the new tables; for a large installation
-- this migration takes a while (measured in BENCHMARKS.md).

-- The smallest UUIDv7 of a moment: its millisecond timestamp, then zeros.
CREATE FUNCTION hookrelay_v7_floor(ts timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0')
            || '00000000000000000000')::uuid
$$;

-- Creates the partitions of one UTC day (`events_p20261201`, …) unless they exist.
CREATE FUNCTION hookrelay_ensure_day(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    suffix text := to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass('events_p' || suffix) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                   'events_p' || suffix, lo, hi);
    EXECUTE format('CREATE TABLE %I PARTITION OF deliveries FOR VALUES FROM (%L) TO (%L) WITH (fillfactor = 50)',
                   'deliveries_p' || suffix, hookrelay_v7_floor(lo), hookrelay_v7_floor(hi));
    EXECUTE format('CREATE TABLE %I PARTITION OF attempts FOR VALUES FROM (%L) TO (%L)',
                   'attempts_p' || suffix, hookrelay_v7_floor(lo), hookrelay_v7_floor(hi));
    RETURN true;
END
$$;

-- Drops every day's partitions that ended before `cutoff`, and the rows before it
-- in the default partitions; returns how many days were dropped.
CREATE FUNCTION hookrelay_drop_days_before(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname, substr(c.relname, 9) AS suffix
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{8}$'
           AND (to_date(substr(c.relname, 9), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I',
                       'attempts_p' || part.suffix, 'deliveries_p' || part.suffix, 'events_p' || part.suffix);
        dropped := dropped + 1;
    END LOOP;
    -- Rows that found no day of their own (normally none) go by row.
    DELETE FROM attempts_default WHERE id < hookrelay_v7_floor(cutoff);
    DELETE FROM deliveries_default WHERE id < hookrelay_v7_floor(cutoff);
    DELETE FROM events_default WHERE created_at < cutoff;
    RETURN dropped;
END
$$;

ALTER TABLE attempts RENAME TO attempts_unpartitioned;
ALTER TABLE deliveries RENAME TO deliveries_unpartitioned;
ALTER TABLE events RENAME TO events_unpartitioned;

CREATE TABLE events (
    LIKE events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (id, created_at),
    FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) PARTITION BY RANGE (created_at);
CREATE TABLE deliveries (
    LIKE deliveries_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (id),
    FOREIGN KEY (endpoint_id) REFERENCES endpoints (id),
    FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) PARTITION BY RANGE (id);
CREATE TABLE attempts (
    LIKE attempts_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE deliveries_default PARTITION OF deliveries DEFAULT WITH (fillfactor = 50);
CREATE TABLE attempts_default PARTITION OF attempts DEFAULT;

-- A partition for every day that has rows, and for today and the two days ahead.
SELECT hookrelay_ensure_day(day::date)
  FROM generate_series(
         least((SELECT min(created_at) FROM events_unpartitioned),
               (SELECT min(created_at) FROM deliveries_unpartitioned),
               (SELECT min(created_at) FROM attempts_unpartitioned),
               now()) AT TIME ZONE 'UTC',
         (now() + interval '2 days') AT TIME ZONE 'UTC',
         interval '1 day') AS day;

INSERT INTO events SELECT * FROM events_unpartitioned;
INSERT INTO deliveries SELECT * FROM deliveries_unpartitioned;
INSERT INTO attempts SELECT * FROM attempts_unpartitioned;
DROP TABLE attempts_unpartitioned, deliveries_unpartitioned, events_unpartitioned;

CREATE INDEX events_tenant_idx ON events (tenant_id, created_at DESC, id DESC);
CREATE INDEX events_idempotency_idx ON events (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX deliveries_event_idx ON deliveries (event_id, endpoint_id);
CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, created_at DESC, id DESC);
CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, created_at DESC);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_dead_idx ON deliveries (created_at) WHERE status = 'dead';
CREATE INDEX attempts_delivery_idx ON attempts (delivery_id, id);

-- Clears response bodies and headers and request headers from every day of
-- attempts that ended before `cutoff` (once per day: the partition is marked).
CREATE FUNCTION hookrelay_clear_bodies_before(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    cleared integer := 0;
BEGIN
    FOR part IN
        SELECT c.oid, c.relname
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'attempts'::regclass AND c.relname ~ '^attempts_p[0-9]{8}$'
           AND (to_date(substr(c.relname, 11), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff
           AND obj_description(c.oid, 'pg_class') IS DISTINCT FROM 'bodies cleared'
         ORDER BY c.relname
    LOOP
        EXECUTE format('UPDATE %I SET response_body = NULL, response_headers = NULL, request_headers = ''{}''
                         WHERE response_body IS NOT NULL OR response_headers IS NOT NULL
                            OR request_headers <> ''{}''', part.relname);
        EXECUTE format('COMMENT ON TABLE %I IS %L', part.relname, 'bodies cleared');
        cleared := cleared + 1;
    END LOOP;
    RETURN cleared;
END
$$;

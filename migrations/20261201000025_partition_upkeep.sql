-- Partition upkeep that never stalls routing. A day's tables are made on their own
-- and attached (ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent, which
-- inserts, reads and updates pass; CREATE TABLE ... PARTITION OF took ACCESS
-- EXCLUSIVE), and old days are detached with DETACH PARTITION ... CONCURRENTLY
-- before they are dropped (by the dispatcher: that cannot run in a function).
-- DETACH ... CONCURRENTLY is refused beside a DEFAULT partition, so the default
-- partitions go: their rows (normally none) move to days of their own, and an
-- event accepted on a day with no partition (a backlog older than every day, a
-- skewed clock) makes its day when it is routed.

-- The time a version-7 UUID was made (its first 48 bits: unix milliseconds).
CREATE FUNCTION hookrelay_v7_time(id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_timestamp(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0)
$$;

CREATE OR REPLACE FUNCTION hookrelay_ensure_day(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    suffix text := to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    made boolean := false;
BEGIN
    IF to_regclass('events_p' || suffix) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       'events_p' || suffix);
        EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       'events_p' || suffix, lo, hi);
        made := true;
    END IF;
    IF to_regclass('deliveries_p' || suffix) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor = 50)',
                       'deliveries_p' || suffix);
        EXECUTE format('ALTER TABLE deliveries ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       'deliveries_p' || suffix, hookrelay_v7_floor(lo), hookrelay_v7_floor(hi));
        made := true;
    END IF;
    IF to_regclass('attempts_p' || suffix) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE attempts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       'attempts_p' || suffix);
        EXECUTE format('ALTER TABLE attempts ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       'attempts_p' || suffix, hookrelay_v7_floor(lo), hookrelay_v7_floor(hi));
        made := true;
    END IF;
    RETURN made;
END
$$;

-- The blocking way to drop old days, for tools; the dispatchers detach concurrently.
CREATE OR REPLACE FUNCTION hookrelay_drop_days_before(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT substr(c.relname, 9) AS suffix
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{8}$'
           AND (to_date(substr(c.relname, 9), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I',
                       'attempts_p' || part.suffix, 'deliveries_p' || part.suffix, 'events_p' || part.suffix);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

ALTER TABLE events DETACH PARTITION events_default;
ALTER TABLE deliveries DETACH PARTITION deliveries_default;
ALTER TABLE attempts DETACH PARTITION attempts_default;
SELECT hookrelay_ensure_day(day) FROM (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day FROM events_default
    UNION SELECT (hookrelay_v7_time(id) AT TIME ZONE 'UTC')::date FROM deliveries_default
    UNION SELECT (hookrelay_v7_time(id) AT TIME ZONE 'UTC')::date FROM attempts_default
) AS strays;
INSERT INTO events SELECT * FROM events_default;
INSERT INTO deliveries SELECT * FROM deliveries_default;
INSERT INTO attempts SELECT * FROM attempts_default;
DROP TABLE events_default, deliveries_default, attempts_default;

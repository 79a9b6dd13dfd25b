-- A claim that stays a HOT update. Claiming a delivery sets only `claimed_until`,
-- but the ordered index's predicate named that column, so every claim wrote a new
-- version of the row into each of the table's indexes (PostgreSQL keeps an update
-- on the heap page alone only when no indexed column changes). The predicate now
-- names `ordered_claimed_until`, which follows `claimed_until` for deliveries in
-- an ordered line and stays NULL for the others: their claims touch no index.
ALTER TABLE deliveries ADD COLUMN ordered_claimed_until timestamptz
    GENERATED ALWAYS AS (CASE WHEN accepted_at IS NOT NULL THEN claimed_until END) STORED;

DROP INDEX deliveries_ordered_idx;
CREATE INDEX deliveries_ordered_idx ON deliveries (endpoint_id, accepted_at, event_id)
    WHERE accepted_at IS NOT NULL AND (status IN ('pending', 'failed') OR ordered_claimed_until IS NOT NULL);

-- New days' delivery tables carry the generated column too.
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
        EXECUTE format('CREATE TABLE %I (LIKE deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED) WITH (fillfactor = 50)',
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


-- What the console's charts draw. The per-minute rollup also counts attempts that
-- left their delivery dead, and how long attempts took, in buckets (upper bounds in
-- ms: 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, and above), so
-- latency percentiles come from a few hundred rows, not every attempt.
ALTER TABLE endpoint_health_minutes
    ADD COLUMN dead integer NOT NULL DEFAULT 0,
    ADD COLUMN latency integer[] NOT NULL DEFAULT '{0,0,0,0,0,0,0,0,0,0,0,0}';

-- The fleet's backlog and lag once a minute, as the metrics sampler reads them.
CREATE TABLE fleet_minutes (
    minute                      timestamptz PRIMARY KEY,
    due                         bigint NOT NULL,
    oldest_undelivered_seconds  double precision NOT NULL
);

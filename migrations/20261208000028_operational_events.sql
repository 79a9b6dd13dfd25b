-- Operational events: each endpoint's run of failed attempts and the highest
-- failing level (50/70/90/100 % of what opens its breaker or disables it) already
-- announced in it, so each level is announced once per run; and dead deliveries
-- counted per tenant in 15-minute windows, so "dead letters growing" is raised once
-- per window when the count crosses its threshold.
ALTER TABLE endpoints
    ADD COLUMN failure_streak integer NOT NULL DEFAULT 0,
    ADD COLUMN failing_level smallint NOT NULL DEFAULT 0;

CREATE TABLE dead_letter_windows (
    tenant_id    uuid NOT NULL,
    window_start timestamptz NOT NULL,
    dead         integer NOT NULL,
    PRIMARY KEY (tenant_id, window_start)
);

-- The failing level a run has reached: the highest of 50, 70, 90 and 100 that the
-- run's failures (of those that open the breaker) or its time (of the time that
-- disables the endpoint) has reached; 0 below half of both.
CREATE FUNCTION hookrelay_failing_level(streak integer, opens_after integer,
                                        failing_ms double precision, disable_ms double precision)
RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
    SELECT max(level)::smallint FROM (VALUES (50, 0.5), (70, 0.7), (90, 0.9), (100, 1.0), (0, 0.0)) AS l(level, share)
    WHERE streak >= ceil(opens_after * share) OR failing_ms >= disable_ms * share
$$;

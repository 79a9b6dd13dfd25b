-- Per-endpoint, per-minute attempt counts, written in the same statement as the
-- attempts themselves, so the console's health at a glance (2xx share over the last
-- hour and day, last error) reads a few hundred small rows instead of every attempt.
CREATE TABLE endpoint_health_minutes (
    endpoint_id    uuid NOT NULL REFERENCES endpoints (id),
    minute         timestamptz NOT NULL,
    ok             integer NOT NULL,
    total          integer NOT NULL,
    last_error     text,
    last_error_at  timestamptz,
    PRIMARY KEY (endpoint_id, minute)
);
CREATE INDEX endpoint_health_minutes_minute_idx ON endpoint_health_minutes (minute);

-- What the attempts already on record say.
INSERT INTO endpoint_health_minutes (endpoint_id, minute, ok, total, last_error, last_error_at)
SELECT d.endpoint_id, date_trunc('minute', a.created_at),
       count(*) FILTER (WHERE a.response_status BETWEEN 200 AND 299),
       count(*),
       (array_agg(coalesce(a.error, 'HTTP ' || a.response_status) ORDER BY a.created_at DESC)
           FILTER (WHERE a.response_status IS NULL OR a.response_status NOT BETWEEN 200 AND 299))[1],
       max(a.created_at) FILTER (WHERE a.response_status IS NULL OR a.response_status NOT BETWEEN 200 AND 299)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.created_at > now() - interval '1 day'
GROUP BY 1, 2;

-- Where each tenant's deliveries spent their time, from the run's rows, in ms:
-- route = accepted by the gateway -> routed (the delivery id's UUIDv7 time);
-- claim = routed -> the first attempt began; http = the first attempt's duration;
-- path = accepted -> the first attempt began. One row per tenant, oldest first.
WITH x AS (
  SELECT d.tenant_id,
         e.created_at AS accepted,
         to_timestamp(('x' || substr(replace(d.id::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0) AS routed,
         a.created_at - make_interval(secs => a.duration_ms / 1000.0) AS started,
         a.duration_ms
  FROM deliveries d
  JOIN events e ON e.id = d.event_id
  JOIN attempts a ON a.delivery_id = d.id AND a.attempt = 1
), ms AS (
  SELECT tenant_id, accepted,
         extract(epoch FROM routed - accepted) * 1000 AS route,
         extract(epoch FROM started - routed) * 1000 AS claim,
         duration_ms AS http,
         extract(epoch FROM started - accepted) * 1000 AS path
  FROM x
)
SELECT count(*) AS deliveries, to_char(min(accepted), 'HH24:MI:SS') AS first,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY route)::numeric, 1) AS route_p50,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY route)::numeric, 1) AS route_p99,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY claim)::numeric, 1) AS claim_p50,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY claim)::numeric, 1) AS claim_p99,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY http)::numeric, 1) AS http_p99,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY path)::numeric, 1) AS path_p99
FROM ms GROUP BY tenant_id ORDER BY min(accepted);

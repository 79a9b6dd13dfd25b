#!/usr/bin/env bash
# Seeds 1,000,000 events (one delivery and one attempt each, over the last day) for
# one tenant and times the console's list queries (and the endpoint health rollup)
# against them with psql, then retention: everything accepted before today goes.
#
# SEED_END (an SQL timestamp, default now()) and SEED_STEP (default 80 ms) place
# the history; CUTOFF (default the start of today, UTC) is what retention drops
# before; QUERIES=0 skips the console queries (loadtest/scenarios/retention.sh).
source "$(dirname "$0")/../../deploy/local/services.sh"
ensure_services
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DB="hookrelay_console_$$"
(cd "$ROOT" && cargo build --release --locked -p hookrelay 2>&1 | tail -1)
pg_admin "CREATE DATABASE $DB OWNER $HOOKRELAY_DB_USER"
[ "${KEEP_DB:-0}" = 1 ] || trap 'pg_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
export HOOKRELAY_DATABASE_URL="postgres://$HOOKRELAY_DB_USER:$HOOKRELAY_DB_PASSWORD@127.0.0.1:5432/$DB"
# HOOKRELAY_BIN: another build (e.g. the one before a schema change), for comparison.
BIN="${HOOKRELAY_BIN:-$ROOT/target/release/hookrelay}"
HOOKRELAY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" "$BIN" migrate
q() { psql "$HOOKRELAY_DATABASE_URL" -q "$@"; }
T="'00000000-0000-7000-8000-000000000001'"
SEED_END="${SEED_END:-now()}"
SEED_STEP="${SEED_STEP:-80 ms}"
CUTOFF="${CUTOFF:-date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'}"
log "seeding 1,000,000 events, deliveries and attempts"
q <<SQL
-- Time-ordered ids (UUIDv7) of a moment, as hookrelay makes them.
CREATE FUNCTION pg_temp.v7(ts timestamptz) RETURNS uuid LANGUAGE sql AS \$\$
  SELECT (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
          || substr(md5(random()::text), 1, 19))::uuid \$\$;
INSERT INTO tenants (id, name) VALUES ($T, 'bench');
INSERT INTO endpoints (id, tenant_id, url, secret_ciphertext)
  SELECT ('00000000-0000-7000-8000-0000000001' || i)::uuid, $T, 'https://example.com/hook/' || i, '\x00'
  FROM generate_series(10, 19) i;
CREATE TEMP TABLE ev AS SELECT gen_random_uuid() AS id, i, ($SEED_END) - (1000000 - i) * interval '$SEED_STEP' AS at
  FROM generate_series(1, 1000000) i;
-- Each day its partition, as the dispatchers' housekeeping would have made it.
DO \$\$ BEGIN
  IF to_regproc('hookrelay_ensure_day') IS NOT NULL THEN
    PERFORM hookrelay_ensure_day(d::date)
      FROM generate_series((SELECT min(at) FROM ev) AT TIME ZONE 'UTC', (SELECT max(at) FROM ev) AT TIME ZONE 'UTC', interval '1 day') d;
    PERFORM hookrelay_ensure_day(((SELECT max(at) FROM ev) AT TIME ZONE 'UTC')::date);
  END IF;
END \$\$;
INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at, routed_at)
  SELECT id, $T, CASE WHEN i % 3 = 0 THEN 'order.created' ELSE 'invoice.paid' END, '{"n":' || i || '}', 'key-' || i, at, at FROM ev;
INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, status, attempts, last_attempt_at, last_response_status, created_at, updated_at, delivered_at)
  SELECT pg_temp.v7(at), id, ('00000000-0000-7000-8000-0000000001' || (10 + i % 10))::uuid, $T,
         CASE WHEN i % 50 = 0 THEN 'dead' ELSE 'delivered' END, 1, at, CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, at, at, at FROM ev;
INSERT INTO attempts (id, delivery_id, attempt, request_headers, response_status, response_body, duration_ms, created_at)
  SELECT pg_temp.v7(created_at), id, 1, '{"webhook-id":"x"}', last_response_status, 'ok', 12, created_at FROM deliveries;
-- What recording those attempts would have counted in the per-minute health rollup.
INSERT INTO endpoint_health_minutes (endpoint_id, minute, ok, total, last_error, last_error_at)
  SELECT d.endpoint_id, date_trunc('minute', a.created_at),
         count(*) FILTER (WHERE a.response_status BETWEEN 200 AND 299), count(*),
         CASE WHEN bool_or(a.response_status >= 300) THEN 'HTTP 500' END,
         max(a.created_at) FILTER (WHERE a.response_status >= 300)
  FROM attempts a JOIN deliveries d ON d.id = a.delivery_id GROUP BY 1, 2;
ANALYZE events; ANALYZE deliveries; ANALYZE attempts; ANALYZE endpoint_health_minutes;
SQL
time_query() { # label sql: the first run (cold cache) and the second (warm)
  local ms
  ms=$(q -c '\timing on' -c '\o /dev/null' -c "$2" -c "$2" | grep -o 'Time: [0-9.]*' | cut -d' ' -f2 | paste -sd/)
  printf '%-45s %17s ms\n' "$1" "$ms"
}
# With partitioned history, an event's deliveries are looked up from its day on
# (as the store does); an older build has no such bound to give.
if [ -n "$(q -Atc "SELECT 1 FROM pg_proc WHERE proname = 'hookrelay_v7_floor'")" ]; then
  D_SINCE="AND d.id >= hookrelay_v7_floor(e.created_at - interval '1 hour')"
  M_SINCE="AND m.id >= hookrelay_v7_floor(e.created_at - interval '1 hour')"
else
  D_SINCE="" M_SINCE=""
fi
if [ "${QUERIES:-1}" = 1 ]; then
LIST="SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.tenant_id = $T"
ORDER="ORDER BY d.created_at DESC, d.id DESC LIMIT 51"
time_query "deliveries, first page" "$LIST $ORDER"
time_query "deliveries, one endpoint" "$LIST AND d.endpoint_id = '00000000-0000-7000-8000-000000000113' $ORDER"
time_query "deliveries, event type" "$LIST AND e.event_type = 'order.created' $ORDER"
time_query "deliveries, status dead" "$LIST AND d.status = 'dead' $ORDER"
time_query "deliveries, one hour 20 h ago" "$LIST AND d.created_at >= now() - interval '20 hours' AND d.created_at < now() - interval '19 hours' $ORDER"
EVENTS="SELECT e.id, e.event_type, e.idempotency_key, e.created_at, count(d.id), count(d.id) FILTER (WHERE d.status = 'delivered'), count(d.id) FILTER (WHERE d.status IN ('failed', 'dead')) FROM (SELECT e.id, e.event_type, e.idempotency_key, e.created_at FROM events e WHERE e.tenant_id = $T"
EVENTS_END="ORDER BY e.created_at DESC, e.id DESC LIMIT 51) e LEFT JOIN deliveries d ON d.event_id = e.id $D_SINCE GROUP BY 1, 2, 3, 4 ORDER BY e.created_at DESC, e.id DESC"
time_query "events, first page (with delivery counts)" "$EVENTS $EVENTS_END"
time_query "events, event type" "$EVENTS AND e.event_type = 'order.created' $EVENTS_END"
time_query "events with a dead delivery" "$EVENTS AND EXISTS (SELECT 1 FROM deliveries m WHERE m.event_id = e.id $M_SINCE AND m.status = 'dead') $EVENTS_END"
time_query "events with a delivery to one endpoint" "$EVENTS AND EXISTS (SELECT 1 FROM deliveries m WHERE m.event_id = e.id $M_SINCE AND m.endpoint_id = '00000000-0000-7000-8000-000000000113') $EVENTS_END"
time_query "search: idempotency key -> events" "SELECT id FROM events WHERE tenant_id = $T AND idempotency_key = 'key-4242'"
time_query "deliveries of the found events" "$LIST AND d.event_id = ANY(ARRAY(SELECT id FROM events WHERE tenant_id = $T AND idempotency_key = 'key-4242')) $ORDER"
time_query "attempts of one delivery" "SELECT a.id FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = $T AND a.delivery_id = (SELECT d2.id FROM deliveries d2 JOIN events e2 ON e2.id = d2.event_id WHERE e2.tenant_id = $T AND e2.idempotency_key = 'key-777')"
time_query "endpoint health (1 h / 24 h, rollup)" "SELECT m.endpoint_id, sum(m.total) FILTER (WHERE m.minute > now() - interval '1 hour'), sum(m.ok) FILTER (WHERE m.minute > now() - interval '1 hour'), sum(m.total), sum(m.ok), (array_agg(m.last_error ORDER BY m.last_error_at DESC) FILTER (WHERE m.last_error_at IS NOT NULL))[1] FROM endpoints e JOIN endpoint_health_minutes m ON m.endpoint_id = e.id WHERE e.tenant_id = $T AND e.deleted_at IS NULL AND m.minute > now() - interval '1 day' GROUP BY m.endpoint_id"
time_query "attempts of one delivery, a page" "SELECT a.id FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = $T AND a.delivery_id = (SELECT d2.id FROM deliveries d2 JOIN events e2 ON e2.id = d2.event_id WHERE e2.tenant_id = $T AND e2.idempotency_key = 'key-777') ORDER BY a.id LIMIT 51"
time_query "fleet tiles (rollup and partial indexes)" "SELECT (SELECT coalesce(sum(ok), 0) FROM endpoint_health_minutes WHERE minute = date_trunc('minute', now()) - interval '1 minute'), (SELECT count(*) FROM deliveries WHERE status = 'dead'), (SELECT count(*) FROM deliveries WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= now() AND status IN ('pending', 'failed'))"

fi

# Retention: everything accepted before CUTOFF goes. With daily partitions that is
# one DROP per day; without them (an older build), the equivalent DELETEs.
OLD="(SELECT count(*) FROM events WHERE created_at < $CUTOFF)"
log "retention: $(q -Atc "SELECT $OLD") events (and as many deliveries and attempts) accepted before the cutoff"
if [ -n "$(q -Atc "SELECT 1 FROM pg_proc WHERE proname = 'hookrelay_drop_days_before'")" ]; then
  time_query "drop the days before the cutoff (partitions)" "SELECT hookrelay_drop_days_before($CUTOFF)"
else
  time_query "delete the rows before the cutoff (no partitions)" "BEGIN; DELETE FROM attempts WHERE created_at < $CUTOFF; DELETE FROM deliveries WHERE created_at < $CUTOFF; DELETE FROM events WHERE created_at < $CUTOFF; COMMIT"
fi
log "retention: $(q -Atc "SELECT $OLD") events accepted before the cutoff are left"

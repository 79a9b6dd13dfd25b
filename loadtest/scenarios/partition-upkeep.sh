#!/usr/bin/env bash
# Partition upkeep under traffic: 2,000 events/s (RATE) for 40 s while a reader
# holds the history tables for 5 s (a long console query or report), a day's
# partitions are made ten days ahead and a day of 1,000,000 events (ROWS) is
# dropped, the way the dispatcher does it: with this build's migrations, made apart
# and attached (locks awaited 1 s, retried), detached concurrently; with an older build's
# (HOOKRELAY_BIN), created as partitions and dropped from the parent. Reports
# ingest and end-to-end p99 and max, and how long each upkeep step took.
source "$(dirname "$0")/lib.sh"
RATE="${RATE:-2000}"
ROWS="${ROWS:-1000000}"
q() { psql -X -q -v ON_ERROR_STOP=1 "$HOOKRELAY_DATABASE_URL" "$@"; }
start serve
OLD="$(date -u -d '40 days ago' +%F)"
AHEAD="$(date -u -d '10 days' +%F)"
SUFFIX="$(date -u -d "$OLD" +%Y%m%d)"
log "a day of $ROWS events on $OLD"
q -c "INSERT INTO tenants (id, name) VALUES ('00000000-0000-7000-8000-00000000beef', 'old day')" \
  -c "SELECT hookrelay_ensure_day('$OLD')" \
  -c "INSERT INTO events (id, tenant_id, event_type, payload, created_at)
      SELECT gen_random_uuid(), '00000000-0000-7000-8000-00000000beef', 'old.day', '{\"n\": 1}',
             '$OLD'::timestamptz + make_interval(secs => n * 86000.0 / $ROWS)
        FROM generate_series(1, $ROWS) n" \
  -c "VACUUM ANALYZE events"
CONCURRENT="$(q -Atc "SELECT to_regproc('hookrelay_v7_time') IS NOT NULL")"
log "traffic: $RATE events/s for 40 s"
loadtest --rate "$RATE" --events $((RATE * 40)) --batch 1 --endpoints 10 --fanout 2 --quiet >/dev/null &
LOAD=$!
sleep 10
q -c "BEGIN" -c "SELECT count(*) FROM events" -c "SELECT count(*) FROM deliveries" -c "SELECT pg_sleep(5)" -c "COMMIT" >/dev/null &
READER=$!
sleep 0.5
ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
t0=$(ms)
if [ "$CONCURRENT" = t ]; then
  # As the dispatcher does: locks awaited 1 s, five tries.
  for try in 1 2 3 4 5; do
    q -c "BEGIN" -c "SET LOCAL lock_timeout = '1s'" -c "SELECT hookrelay_ensure_day('$AHEAD')" -c "COMMIT" >/dev/null 2>&1 && break
    [ "$try" = 5 ] && { CREATE_FAILED=1; break; }
    sleep 0.$((try * 2))
  done
else
  # The older dispatcher: one try, locks awaited 5 s.
  q -c "BEGIN" -c "SET LOCAL lock_timeout = '5s'" -c "SELECT hookrelay_ensure_day('$AHEAD')" -c "COMMIT" >/dev/null 2>&1 \
    || CREATE_FAILED=1
fi
t1=$(ms)
if [ "$CONCURRENT" = t ]; then
  for t in attempts deliveries events; do
    # A concurrent detach waits (up to 60 s) for transactions that still see the
    # partition; nothing waits behind it.
    q -c "SET lock_timeout = '60s'" -c "ALTER TABLE $t DETACH PARTITION ${t}_p$SUFFIX CONCURRENTLY" >/dev/null 2>&1 \
      || DROP_FAILED=1
    q -c "SET lock_timeout = '1s'" -c "DROP TABLE IF EXISTS ${t}_p$SUFFIX" >/dev/null 2>&1 || DROP_FAILED=1
  done
else
  q -c "BEGIN" -c "SET LOCAL lock_timeout = '5s'" \
    -c "SELECT hookrelay_drop_days_before('$(date -u -d "$OLD + 1 day" +%F)')" -c "COMMIT" >/dev/null 2>&1 \
    || DROP_FAILED=1
fi
t2=$(ms)
wait "$READER"
wait "$LOAD"
python3 - "$WORK/report.json" "$((t1 - t0))" "$((t2 - t1))" "$CONCURRENT" "${CREATE_FAILED:-0}" "${DROP_FAILED:-0}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({
    "upkeep": "attach + detach concurrently" if sys.argv[4] == "t" else "partition of + drop",
    "create_day_ms": int(sys.argv[2]), "create_failed": sys.argv[5] == "1",
    "drop_day_ms": int(sys.argv[3]), "drop_failed": sys.argv[6] == "1",
    "ingest_p99_ms": round(r["ingest_p99_ms"], 1), "ingest_max_ms": round(r["ingest_max_ms"], 1),
    "e2e_p99_ms": round(r["e2e_p99_ms"], 1), "e2e_max_ms": round(r["e2e_max_ms"], 1),
    "missing": r.get("missing"), "duplicates": r.get("duplicates"),
}))
PY

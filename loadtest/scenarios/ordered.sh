#!/usr/bin/env bash
# Strict ordering per endpoint (`"ordering": "strict"`), in two modes (MODE):
# - faults (default): one ordered endpoint whose receiver answers 500 to 30 % of
#   requests at random, EVENTS (1,000) accepted one at a time, a gateway and two
#   dispatchers, the first killed with -9 KILL_AFTER (5) seconds in. Passes when
#   every event arrived and the successful arrivals' sequence numbers only rise
#   (`out_of_order` 0, `missing` 0).
# - throughput: one ordered endpoint answering in SLOW_MS (5) ms, EVENTS (3,000)
#   ingested in batches through one `serve`; prints the ordered deliveries/s.
source "$(dirname "$0")/lib.sh"
ORDERED='{"ordering": "strict"}'

check() {
  python3 - "$WORK/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ok = r["missing"] == 0 and r["out_of_order"] == 0 and r["bad_signatures"] == 0
print(f"ordered: {r['delivered']} of {r['expected']} delivered, out of order {r['out_of_order']}, "
      f"duplicates {r['duplicates']}, {r['deliveries_per_s']:.0f} deliveries/s, "
      f"e2e p50 {r['e2e_p50_ms']:.0f} ms p99 {r['e2e_p99_ms']:.0f} ms", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}

case "${MODE:-faults}" in
  faults)
    # Retries come quickly, and enough of them that no delivery dies of bad luck.
    export HOOKRELAY_RETRY_SCHEDULE="${RETRY_SCHEDULE:-100ms}" HOOKRELAY_MAX_ATTEMPTS=60
    export HOOKRELAY_SHARD_HEARTBEAT=500ms
    start gateway
    start dispatcher dispatcher-1
    victim=$STARTED
    start dispatcher dispatcher-2
    loadtest --concurrency 1 --events "${EVENTS:-1000}" --endpoints 1 --fanout 1 \
      --behave 0:flaky=0.3 --endpoint-json "$ORDERED" --deadline 600 >/dev/null &
    harness=$!
    sleep "${KILL_AFTER:-5}"
    log "kill -9 dispatcher-1 (pid $victim)"
    kill -9 "$victim"
    wait "$harness" || true
    check
    ;;
  throughput)
    start serve
    loadtest --concurrency 4 --batch 100 --events "${EVENTS:-3000}" --endpoints 1 --fanout 1 \
      --behave "0:slow=${SLOW_MS:-5}" --endpoint-json "$ORDERED" --deadline 600 >/dev/null
    # Arrival order across concurrent batches is not acceptance order: only the rate counts.
    python3 - "$WORK/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"ordered throughput: {r['deliveries_per_s']:.0f} deliveries/s to one endpoint "
      f"({r['delivered']} of {r['expected']}, duplicates {r['duplicates']})", file=sys.stderr)
sys.exit(0 if r["missing"] == 0 else 1)
PY
    ;;
  *) log "unknown MODE ${MODE} (faults or throughput)"; exit 2 ;;
esac

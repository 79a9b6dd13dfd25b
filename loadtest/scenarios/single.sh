#!/usr/bin/env bash
# The single-event path: 512-byte events, one per request, fan-out 1, through one
# `hookrelay serve`; first closed loop (IN_FLIGHT requests in flight, default 64, for
# EVENTS, default 20,000), then paced (open loop, RATE events/s, default 600, for
# PACED_EVENTS, default 12,000). For each: deliveries/s, ingest and end-to-end
# p50/p99, and CPU µs per delivery of hookrelay, PostgreSQL, RabbitMQ and the load
# generator (its receivers included), read from /proc. MODES=closed or MODES=paced
# runs one of them.
source "$(dirname "$0")/lib.sh"
start serve
SERVE="$STARTED"

# Cumulative CPU ticks (user + system) of a set of processes, children they reaped
# included (PostgreSQL's ended backends count through the postmaster).
ticks_of() {
  local total=0 pid f
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    # fields after the command: 14 utime, 15 stime, 16 cutime, 17 cstime
    read -r -a f < <(sed 's/^.*) //' "/proc/$pid/stat")
    total=$((total + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$total"
}
# hookrelay, postgres, beam.smp, load generator (this shell's reaped children)
snapshot() {
  echo "$(ticks_of "$SERVE") $(ticks_of $(pgrep -x postgres)) $(ticks_of $(pgrep -x beam.smp)) $(ticks_of $$)"
}

run_mode() {
  local mode="$1"; shift
  local before after
  before="$(snapshot)"
  "$LOADTEST" --api "$API" --json --quiet "$@" --payload-bytes 512 --batch 1 \
    --endpoints 10 --fanout 1 --deadline 120 ${LOADTEST_EXTRA:-} >"$WORK/$mode.json"
  after="$(snapshot)"
  python3 - "$mode" "$WORK/$mode.json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
mode, path, before, after, hz = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), int(sys.argv[5])
r = json.load(open(path))
n = max(r["delivered"], 1)
names = ["hookrelay", "postgres", "rabbitmq", "loadgen"]
us = {k: (int(a) - int(b)) * 1e6 / hz / n for k, a, b in zip(names, after, before)}
served = us["hookrelay"] + us["postgres"] + us["rabbitmq"]
out = {"mode": mode, "deliveries_per_s": r["deliveries_per_s"], "delivered": r["delivered"],
       "missing": r["missing"], "duplicates": r["duplicates"],
       "ingest_p50_ms": r["ingest_p50_ms"], "ingest_p99_ms": r["ingest_p99_ms"],
       "e2e_p50_ms": r["e2e_p50_ms"], "e2e_p99_ms": r["e2e_p99_ms"],
       "cpu_us_per_delivery": round(served, 1),
       **{f"cpu_us_{k}": round(v, 1) for k, v in us.items()}}
print(json.dumps(out))
print(f"{mode:6} {r['deliveries_per_s']:7.0f} deliveries/s  missing {r['missing']}  duplicates {r['duplicates']}  "
      f"ingest p50 {r['ingest_p50_ms']:.2f} p99 {r['ingest_p99_ms']:.2f} ms  e2e p50 {r['e2e_p50_ms']:.2f} p99 {r['e2e_p99_ms']:.2f} ms  "
      f"CPU {served:.0f} µs/delivery (hookrelay {us['hookrelay']:.0f}, postgres {us['postgres']:.0f}, "
      f"rabbitmq {us['rabbitmq']:.0f}; load generator {us['loadgen']:.0f})", file=sys.stderr)
sys.exit(0 if r["missing"] == 0 and r["bad_signatures"] == 0 else 1)
PY
}

status=0
for mode in ${MODES:-closed paced}; do
  case "$mode" in
    closed) run_mode closed --concurrency "${IN_FLIGHT:-64}" --events "${EVENTS:-20000}" || status=1 ;;
    paced) run_mode paced --rate "${RATE:-600}" --events "${PACED_EVENTS:-12000}" || status=1 ;;
    *) log "unknown mode $mode (closed or paced)"; exit 2 ;;
  esac
done
exit "$status"

#!/usr/bin/env bash
# Fairness between tenants: a quiet tenant's end-to-end p99, first alone, then while
# another tenant bursts at 20 times its rate (each tenant has its own loadtest
# process, receivers and endpoints). QUIET is the quiet tenant's events/s (one per
# request); the loud tenant sends in batches of LOUD_BATCH, as a bulk producer does.
# ROUNDS repeats the pair (alone, beside) so that the machine's drift falls on both
# halves alike; the figure is the median of the rounds' ratios. Last, each tenant's
# time per stage, from the run's rows (stages.sql).
source "$(dirname "$0")/lib.sh"
start serve
QUIET="${QUIET:-20}"
SECONDS_RUN="${SECONDS_RUN:-60}"
ROUNDS="${ROUNDS:-5}"
p99() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["e2e_p99_ms"], d["missing"], d["deliveries_per_s"])'; }
quiet=(--rate "$QUIET" --events $((QUIET * SECONDS_RUN)) --fanout 1 --endpoints 10 --deadline 180)
loud=(--rate $((QUIET * 20)) --batch "${LOUD_BATCH:-20}" --events $((QUIET * 20 * SECONDS_RUN)) --fanout 1 --endpoints 10 --deadline 180)
ratios=()
lost_any=0
for round in $(seq 1 "$ROUNDS"); do
  read -r alone lost1 _ < <(loadtest "${quiet[@]}" | p99)
  "$LOADTEST" --api "$API" --json "${loud[@]}" >"$WORK/loud.json" &
  LOUD=$!
  read -r beside lost2 _ < <(loadtest "${quiet[@]}" | p99)
  wait "$LOUD"
  read -r loud_p99 lost3 loud_rate < <(p99 <"$WORK/loud.json")
  python3 -c "print(f'round $round: quiet tenant ($QUIET/s) e2e p99: alone {float($alone):.1f} ms, beside a tenant at {20*$QUIET}/s {float($beside):.1f} ms, ratio {float($beside)/float($alone):.2f}; loud tenant p99 {float($loud_p99):.1f} ms at {float($loud_rate):.0f} deliveries/s; missing {int($lost1)} / {int($lost2)} / {int($lost3)}')"
  ratios+=("$(python3 -c "print(float($beside)/float($alone))")")
  if [ "$lost1" != 0 ] || [ "$lost2" != 0 ] || [ "$lost3" != 0 ]; then lost_any=1; fi
done
python3 -c "import statistics; r=[float(x) for x in '${ratios[*]}'.split()]; print(f'quiet tenant ($QUIET/s) beside a tenant at {20*$QUIET}/s: median ratio {statistics.median(r):.2f} over $ROUNDS round(s) (' + ', '.join(f'{x:.2f}' for x in r) + ')')"
psql "$HOOKRELAY_DATABASE_URL" -P footer=off -f "$(dirname "$0")/stages.sql"
[ "$lost_any" = 0 ]

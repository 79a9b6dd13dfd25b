#!/usr/bin/env bash
# Isolation: the healthy endpoints' end-to-end p99, first alone (50 endpoints), then
# next to a black hole, an endpoint failing 20 % of requests and one throttling to 5/s.
source "$(dirname "$0")/lib.sh"
start serve
p99() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["e2e_p99_ms"], d["missing"])'; }
args=(--rate "${RATE:-1000}" --events "${EVENTS:-20000}" --fanout 1 --deadline 120)
read -r alone lost1 < <(loadtest "${args[@]}" --endpoints 50 | p99)
read -r mixed lost2 < <(loadtest "${args[@]}" --endpoints 53 --behave 50:blackhole --behave 51:fail=0.2 --behave 52:throttle=5 | p99)
python3 -c "print(f'healthy e2e p99: alone {float($alone):.1f} ms, beside bad endpoints {float($mixed):.1f} ms, ratio {float($mixed)/float($alone):.2f}; missing {int($lost1)} / {int($lost2)}')"
[ "$lost1" = 0 ] && [ "$lost2" = 0 ]

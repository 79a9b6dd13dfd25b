#!/usr/bin/env bash
# The same load against one and then two dispatcher processes; prints the ratio.
source "$(dirname "$0")/lib.sh"
start gateway
start dispatcher dispatcher-1
one=$(loadtest --concurrency 16 --batch 100 --events "${EVENTS:-100000}" --endpoints 10 --fanout 2 --deadline 300 | python3 -c 'import json,sys; print(json.load(sys.stdin)["deliveries_per_s"])')
start dispatcher dispatcher-2
two=$(loadtest --concurrency 16 --batch 100 --events "${EVENTS:-100000}" --endpoints 10 --fanout 2 --deadline 300 | python3 -c 'import json,sys; print(json.load(sys.stdin)["deliveries_per_s"])')
python3 -c "print(f'deliveries/s: one dispatcher {float($one):.0f}, two {float($two):.0f}, ratio {float($two)/float($one):.2f}')"

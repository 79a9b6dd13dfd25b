#!/usr/bin/env bash
# The same load against one and then two dispatcher processes, then against one and
# two gateways; prints the ratios.
source "$(dirname "$0")/lib.sh"
rate_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["deliveries_per_s"], end=" "); ' ; }
ingest_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest_per_s"])'; }
args=(--concurrency 16 --batch "${BATCH:-100}" --events "${EVENTS:-100000}" --endpoints 10 --fanout 2 --deadline 300)
start gateway gateway-1
first_api=$API
start dispatcher dispatcher-1
one=$(loadtest "${args[@]}" | rate_of)
start dispatcher dispatcher-2
two=$(loadtest "${args[@]}" | rate_of)
python3 -c "print(f'deliveries/s: one dispatcher {float($one):.0f}, two {float($two):.0f}, ratio {float($two)/float($one):.2f}')"
# Gateways: single-event ingest, where the gateway is the work.
gargs=(--concurrency 64 --batch 1 --events "${GATEWAY_EVENTS:-40000}" --endpoints 10 --fanout 2 --deadline 300)
g1=$("$LOADTEST" --api "$first_api" --json "${gargs[@]}" | ingest_of)
start gateway gateway-2
g2=$("$LOADTEST" --api "$first_api,$API" --json "${gargs[@]}" | ingest_of)
python3 -c "print(f'ingest events/s: one gateway {float($g1):.0f}, two {float($g2):.0f}, ratio {float($g2)/float($g1):.2f}')"

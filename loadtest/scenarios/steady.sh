#!/usr/bin/env bash
# Fixed rate for N events, 10 endpoints, fan-out 2. RATE, EVENTS, BATCH (events per
# request, default 1) and FANOUT override.
source "$(dirname "$0")/lib.sh"
start serve
loadtest --rate "${RATE:-2000}" --events "${EVENTS:-20000}" --batch "${BATCH:-1}" --endpoints 10 --fanout "${FANOUT:-2}" --gateway-pid "$STARTED"

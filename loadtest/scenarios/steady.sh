#!/usr/bin/env bash
# Fixed rate for N events, 10 endpoints, fan-out 2. RATE and EVENTS override.
source "$(dirname "$0")/lib.sh"
start serve
loadtest --rate "${RATE:-2000}" --events "${EVENTS:-20000}" --endpoints 10 --fanout 2 --gateway-pid "$STARTED"

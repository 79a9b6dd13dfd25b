#!/usr/bin/env bash
# Batch ingest as fast as possible, then drain. EVENTS and BATCH override.
source "$(dirname "$0")/lib.sh"
start serve
loadtest --concurrency 16 --batch "${BATCH:-100}" --events "${EVENTS:-100000}" --endpoints 10 --fanout 2 --deadline 300 --gateway-pid "$STARTED"

#!/usr/bin/env bash
# Memory bounded in bytes: 1 MiB events fanned out to 500 endpoints each. One copy of
# a payload is shared by its deliveries and payloads load within the dispatcher's
# byte budget (HOOKRELAY_PAYLOAD_BUDGET_BYTES), so peak RSS stays far below
# events x endpoints x 1 MiB. EVENTS overrides the count.
source "$(dirname "$0")/lib.sh"
start serve
loadtest --concurrency 2 --batch 1 --events "${EVENTS:-20}" --endpoints 500 --fanout 500 \
  --payload-bytes 1000000 --receiver-ports 4 --deadline 300 --gateway-pid "$STARTED"

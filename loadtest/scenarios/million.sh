#!/usr/bin/env bash
# 1,000,000 events end to end (fan-out 1), nothing lost, memory sampled throughout.
source "$(dirname "$0")/lib.sh"
start serve
loadtest --concurrency 16 --batch 100 --events 1000000 --endpoints 10 --fanout 1 --deadline 900 --gateway-pid "$STARTED"

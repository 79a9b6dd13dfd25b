#!/usr/bin/env bash
# A gateway and two dispatchers; kill -9 one mid-run and start it again: nothing lost.
source "$(dirname "$0")/lib.sh"
start gateway
start dispatcher dispatcher-1
victim=$STARTED
start dispatcher dispatcher-2
loadtest --rate "${RATE:-3000}" --events "${EVENTS:-60000}" --endpoints 10 --fanout 2 --deadline 300 &
harness=$!
sleep "${KILL_AFTER:-8}"
log "kill -9 dispatcher-1 (pid $victim)"
kill -9 "$victim"
sleep 2
start dispatcher dispatcher-1b
wait "$harness"

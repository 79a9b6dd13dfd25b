#!/usr/bin/env bash
# Restart RabbitMQ mid-run: the gateway answers 503 while it is down (the harness
# retries), never 202 for an unconfirmed event; nothing lost afterwards.
source "$(dirname "$0")/lib.sh"
start serve
loadtest --rate "${RATE:-2000}" --events "${EVENTS:-40000}" --endpoints 10 --fanout 2 --deadline 300 &
harness=$!
sleep "${FAULT_AFTER:-6}"
log "stopping RabbitMQ"
rabbitmqctl stop_app >/dev/null
sleep "${DOWN_FOR:-5}"
log "starting RabbitMQ"
rabbitmqctl start_app >/dev/null
wait "$harness"

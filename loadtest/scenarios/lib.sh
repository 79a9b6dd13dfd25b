#!/usr/bin/env bash
# Shared by the scenarios: services, release build, a fresh database and queue prefix
# for this run, helpers to start and stop hookrelay processes, cleanup on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../../deploy/local/services.sh
source "$ROOT/deploy/local/services.sh"
ensure_services

log "building release binaries"
(cd "$ROOT" && cargo build --release --locked -p hookrelay -p hookrelay-loadtest 2>&1 | tail -1)
# HOOKRELAY_BIN runs another build of hookrelay (e.g. the one before a change).
BIN="${HOOKRELAY_BIN:-$ROOT/target/release/hookrelay}"
LOADTEST="$ROOT/target/release/hookrelay-loadtest"

RUN_ID="lt$(date +%s)$$"
WORK="$ROOT/target/scenarios/$RUN_ID"
mkdir -p "$WORK"
DB="hookrelay_$RUN_ID"
pg_admin "CREATE DATABASE $DB OWNER $HOOKRELAY_DB_USER"
export HOOKRELAY_DATABASE_URL="postgres://$HOOKRELAY_DB_USER:$HOOKRELAY_DB_PASSWORD@127.0.0.1:5432/$DB"
export HOOKRELAY_QUEUE_PREFIX="$RUN_ID"
export HOOKRELAY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)"
export HOOKRELAY_ADMIN_TOKEN="admin_$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
export HOOKRELAY_ALLOW_PRIVATE_TARGETS=true
export HOOKRELAY_LOG="${HOOKRELAY_LOG:-warn}"
"$BIN" migrate

PIDS=()
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start ROLE [NAME] -> pid in $STARTED; gateways/serve get their own port in $API
start() {
  local role="$1" name="${2:-$1}"
  if [ "$role" != dispatcher ]; then
    API_PORT="$(free_port)"
    API="http://127.0.0.1:$API_PORT"
    HOOKRELAY_LISTEN="127.0.0.1:$API_PORT" "$BIN" "$role" >>"$WORK/$name.log" 2>&1 &
  else
    "$BIN" dispatcher >>"$WORK/$name.log" 2>&1 &
  fi
  STARTED=$!
  PIDS+=("$STARTED")
  if [ "$role" != dispatcher ]; then
    for _ in $(seq 1 200); do curl -fs "$API/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    log "$name did not become ready; see $WORK/$name.log"
    return 1
  fi
}

cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pg_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  for q in $(rabbitmqctl list_queues -q name 2>/dev/null | grep "^$RUN_ID\." || true); do
    rabbitmqctl delete_queue -q "$q" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# loadtest ARGS... : runs the harness against $API, JSON report in $WORK/report.json.
# LOADTEST_EXTRA adds flags, e.g. faulty endpoints: LOADTEST_EXTRA="--behave 0:fail=0.2 --behave 1:blackhole"
loadtest() {
  # shellcheck disable=SC2086
  "$LOADTEST" --api "$API" --json "$@" ${LOADTEST_EXTRA:-} | tee "$WORK/report.json"
}

#!/usr/bin/env bash
# Runs hookrelay locally: services, migrations, build, start, then prints the URLs.
#   deploy/local/up.sh         start (or restart) `hookrelay serve` in the background
#   deploy/local/up.sh stop    stop it
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="$ROOT/deploy/local/.state"
# shellcheck source=services.sh
source "$ROOT/deploy/local/services.sh"
mkdir -p "$STATE"

stop() {
  if [ -f "$STATE/hookrelay.pid" ] && kill -0 "$(cat "$STATE/hookrelay.pid")" 2>/dev/null; then
    log "stopping hookrelay (pid $(cat "$STATE/hookrelay.pid"))"
    kill -TERM "$(cat "$STATE/hookrelay.pid")"
    for _ in $(seq 1 120); do
      kill -0 "$(cat "$STATE/hookrelay.pid")" 2>/dev/null || break
      sleep 0.25
    done
  fi
  rm -f "$STATE/hookrelay.pid"
}

if [ "${1:-}" = "stop" ]; then
  stop
  exit 0
fi

ensure_services

# Generated once, then kept: the encryption key must stay the same for stored secrets.
if [ ! -f "$STATE/env" ]; then
  umask 077
  {
    echo "HOOKRELAY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)"
    echo "HOOKRELAY_ADMIN_TOKEN=admin_$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  } >"$STATE/env"
fi
set -a
# shellcheck disable=SC1091
source "$STATE/env"
set +a
export HOOKRELAY_DATABASE_URL="${HOOKRELAY_DATABASE_URL:-postgres://$HOOKRELAY_DB_USER:$HOOKRELAY_DB_PASSWORD@127.0.0.1:5432/$HOOKRELAY_DB_NAME}"
export HOOKRELAY_LISTEN="${HOOKRELAY_LISTEN:-127.0.0.1:8080}"
# Local demos deliver to receivers on this machine.
export HOOKRELAY_ALLOW_PRIVATE_TARGETS="${HOOKRELAY_ALLOW_PRIVATE_TARGETS:-true}"

log "building hookrelay (release)"
(cd "$ROOT" && cargo build --release --locked --bin hookrelay)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/hookrelay"
# The console's live islands (optional: without them pages reload themselves).
export HOOKRELAY_CONSOLE_PKG="${HOOKRELAY_CONSOLE_PKG:-${CARGO_TARGET_DIR:-$ROOT/target}/site/pkg}"
bash "$ROOT/deploy/local/console-wasm.sh" || log "console islands not built; the console reloads pages instead"
# The API explorer's script for /docs (optional: /openapi.json is there either way).
export HOOKRELAY_DOCS_PKG="${HOOKRELAY_DOCS_PKG:-${CARGO_TARGET_DIR:-$ROOT/target}/site/docs}"
bash "$ROOT/deploy/local/api-docs.sh" || log "API explorer script not installed; /docs says how to get it"

log "applying migrations"
"$BIN" migrate

stop
log "starting hookrelay serve (log: $STATE/hookrelay.log)"
nohup "$BIN" serve >>"$STATE/hookrelay.log" 2>&1 &
echo $! >"$STATE/hookrelay.pid"

URL="http://$HOOKRELAY_LISTEN"
for _ in $(seq 1 120); do
  if curl -fsS "$URL/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$STATE/hookrelay.pid")" 2>/dev/null; then
    log "hookrelay exited; last log lines:"
    tail -20 "$STATE/hookrelay.log" >&2
    exit 1
  fi
  sleep 0.25
done
curl -fsS "$URL/readyz" >/dev/null || { log "hookrelay is not ready; see $STATE/hookrelay.log"; exit 1; }

cat <<INFO

hookrelay is running.
  API:          $URL
  health:       $URL/healthz   readiness: $URL/readyz
  API docs:     $URL/docs   (the contract: $URL/openapi.json)
  metrics:      $URL/metrics
  console:      $URL/console   (operators sign in with the admin token; customers open links from POST /v1/tenants/{tenant}/console-links)
  admin token:  $HOOKRELAY_ADMIN_TOKEN
  log:          $STATE/hookrelay.log
  stop:         deploy/local/up.sh stop

Create a producer key:
  curl -s -X POST $URL/v1/api-keys -H "Authorization: Bearer $HOOKRELAY_ADMIN_TOKEN"
INFO

#!/usr/bin/env bash
# The API contract, tested: openapi.json lints clean (@redocly/cli, npm), then
# schemathesis (PyPI) runs every operation of it against a live `hookrelay serve`
# (its own database and queue prefix) with the admin token, which opens every
# route, and checks server errors, undocumented status codes and content types,
# and response schemas. Called by test.sh; ST_SEED, ST_EXAMPLES and ST_ARGS tune
# schemathesis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=services.sh
source "$ROOT/deploy/local/services.sh"
ensure_services

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/tools/schemathesis-4.32.5"
if [ ! -x "$VENV/bin/st" ]; then
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  log "installing schemathesis (PyPI) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==4.32.5"
fi
REDOCLY="$TARGET/tools/redocly-2.77.0"
if [ ! -x "$REDOCLY/node_modules/.bin/redocly" ]; then
  log "installing @redocly/cli (npm) into $REDOCLY"
  mkdir -p "$REDOCLY"
  npm install --prefix "$REDOCLY" --no-audit --no-fund --silent "@redocly/cli@2.77.0"
fi
log "linting openapi.json"
(cd "$ROOT" && "$REDOCLY/node_modules/.bin/redocly" lint openapi.json --format=summary)

(cd "$ROOT" && cargo build --locked -q -p hookrelay)
BIN="$TARGET/debug/hookrelay"

RUN="contract$(date +%s)$$"
DB="hookrelay_$RUN"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
ADMIN="admin_$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
pg_admin "CREATE DATABASE $DB OWNER $HOOKRELAY_DB_USER" >/dev/null
SERVE=""
cleanup() {
  [ -n "$SERVE" ] && kill -TERM "$SERVE" 2>/dev/null && wait "$SERVE" 2>/dev/null || true
  pg_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  for q in $(rabbitmqctl list_queues -q name 2>/dev/null | grep "^$RUN\." || true); do
    rabbitmqctl delete_queue -q "$q" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# The failed-authentication limit stays at its default: schemathesis's requests
# without valid credentials meet the declared `429`, while the admin token, known
# to be good, is never refused for them.
HOOKRELAY_DATABASE_URL="postgres://$HOOKRELAY_DB_USER:$HOOKRELAY_DB_PASSWORD@127.0.0.1:5432/$DB" \
HOOKRELAY_QUEUE_PREFIX="$RUN" \
HOOKRELAY_LISTEN="127.0.0.1:$PORT" \
HOOKRELAY_ADMIN_TOKEN="$ADMIN" \
HOOKRELAY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" \
HOOKRELAY_SHARDS=2 \
HOOKRELAY_ALLOW_PRIVATE_TARGETS=true \
HOOKRELAY_LOG=warn \
  "$BIN" serve >"$TARGET/contract.log" 2>&1 &
SERVE=$!
for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

log "schemathesis: every operation of openapi.json against http://127.0.0.1:$PORT"
# shellcheck disable=SC2086
cd "$TARGET" # schemathesis keeps its example database in the working directory
"$VENV/bin/st" --config-file "$ROOT/deploy/local/schemathesis.toml" run "$ROOT/openapi.json" --url "http://127.0.0.1:$PORT" \
  --header "Authorization: Bearer $ADMIN" --checks all \
  --max-examples "${ST_EXAMPLES:-25}" --seed "${ST_SEED:-1}" --no-color ${ST_ARGS:-}

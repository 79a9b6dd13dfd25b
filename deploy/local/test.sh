#!/usr/bin/env bash
# Brings up PostgreSQL and RabbitMQ (installing them if needed), then runs the whole
# test suite against them. CI runs exactly this.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=services.sh
source "$ROOT/deploy/local/services.sh"
ensure_services
# A TLS-only PostgreSQL cluster and RabbitMQ node beside them (tests/e2e/tls.rs),
# removed when the suite ends, however it ends.
# shellcheck source=tls-services.sh
source "$ROOT/deploy/local/tls-services.sh"
TLS_DIR="${TMPDIR:-/tmp}/hookrelay-tls"
# A real HTTP CONNECT proxy for the egress tests (tests/e2e/egress.rs).
# shellcheck source=egress-proxy.sh
source "$ROOT/deploy/local/egress-proxy.sh"
PROXY_DIR="${TMPDIR:-/tmp}/hookrelay-proxy"
trap 'tls_services_down "$TLS_DIR"; egress_proxy_down "$PROXY_DIR"' EXIT
tls_services_up "$TLS_DIR"
egress_proxy_up "$PROXY_DIR"

# The console's browser tests: Debian's Chromium and the npm package playwright-core.
command -v chromium >/dev/null 2>&1 || apt_install chromium
command -v node >/dev/null 2>&1 || apt_install nodejs npm
if [ ! -d "$ROOT/console/browser/node_modules/playwright-core" ]; then
  log "installing playwright-core for the console's browser tests"
  (cd "$ROOT/console/browser" && npm install --no-audit --no-fund --no-package-lock --silent)
fi

# The alert rules must load in Prometheus: promtool (Debian package prometheus).
command -v promtool >/dev/null 2>&1 || apt_install --no-install-recommends prometheus
promtool check rules "$ROOT/deploy/prometheus/alerts.yml"

# A dispatcher with a shifted clock (tests/e2e/clock.rs): libfaketime.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || apt_install faketime

# The console islands' wasm build, which the browser test expects to see hydrate.
export HOOKRELAY_CONSOLE_PKG="${HOOKRELAY_CONSOLE_PKG:-${CARGO_TARGET_DIR:-$ROOT/target}/site/pkg}"
bash "$ROOT/deploy/local/console-wasm.sh"
# The API explorer's script, which the docs browser test expects to see render.
export HOOKRELAY_DOCS_PKG="${HOOKRELAY_DOCS_PKG:-${CARGO_TARGET_DIR:-$ROOT/target}/site/docs}"
bash "$ROOT/deploy/local/api-docs.sh"

export HOOKRELAY_TEST_DATABASE_URL="${HOOKRELAY_TEST_DATABASE_URL:-postgres://$HOOKRELAY_DB_USER:$HOOKRELAY_DB_PASSWORD@127.0.0.1:5432/postgres}"
# `#[sqlx::test]` (the in-process API tests) keeps its bookkeeping in a database of
# its own and makes one database per test beside it.
if [ -z "${DATABASE_URL:-}" ]; then
  if [ -z "$(pg_admin "SELECT 1 FROM pg_database WHERE datname = 'hookrelay_sqlx_tests'")" ]; then
    pg_admin "CREATE DATABASE hookrelay_sqlx_tests OWNER $HOOKRELAY_DB_USER"
  fi
  export DATABASE_URL="postgres://$HOOKRELAY_DB_USER:$HOOKRELAY_DB_PASSWORD@127.0.0.1:5432/hookrelay_sqlx_tests"
fi
export HOOKRELAY_TEST_AMQP_URL="${HOOKRELAY_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export HOOKRELAY_LOG="${HOOKRELAY_LOG:-warn}"
cd "$ROOT"

start=$(date +%s)
# The code's own rules first: formatting, and every lint (Cargo.toml's
# [workspace.lints] included) as an error.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Documentation examples (the subscriber's verification example), then the suite.
cargo test --workspace --locked --doc
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --profile ci
else
  log "cargo-nextest not found; using cargo test"
  cargo test --workspace --locked --tests
fi
# The API contract: openapi.json lints clean, and schemathesis finds nothing.
bash "$ROOT/deploy/local/contract.sh"
log "test suite finished in $(( $(date +%s) - start )) s"

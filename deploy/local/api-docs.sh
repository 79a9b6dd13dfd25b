#!/usr/bin/env bash
# Puts the API explorer's script (the npm package redoc's standalone bundle) into
# $HOOKRELAY_DOCS_PKG (default target/site/docs), where gateways read it at start
# and serve it at /docs: no CDN, so /docs works offline. Optional: without it,
# /docs says how to get it, and /openapi.json is there either way.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DOCS="${HOOKRELAY_DOCS_PKG:-$TARGET_DIR/site/docs}"
REDOC="$TARGET_DIR/tools/redoc-2.5.2"
if [ ! -f "$REDOC/node_modules/redoc/bundles/redoc.standalone.js" ]; then
  echo "[hookrelay] installing redoc 2.5.2 (npm) into $REDOC"
  mkdir -p "$REDOC"
  npm install --prefix "$REDOC" --no-audit --no-fund --silent "redoc@2.5.2"
fi
mkdir -p "$DOCS"
cp "$REDOC/node_modules/redoc/bundles/redoc.standalone.js" "$DOCS/redoc.standalone.js"
echo "[hookrelay] API explorer script in $DOCS"

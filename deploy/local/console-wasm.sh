#!/usr/bin/env bash
# Builds the console islands' wasm into $HOOKRELAY_CONSOLE_PKG (default target/site/pkg),
# so progress and new attempts update live in the browser. Optional: the console works
# without it. Installs the wasm target and the wasm-bindgen CLI matching Cargo.lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PKG="${HOOKRELAY_CONSOLE_PKG:-$TARGET_DIR/site/pkg}"
WASM_BINDGEN="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "[hookrelay] adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN\$"; then
  echo "[hookrelay] installing wasm-bindgen-cli $WASM_BINDGEN (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN"
fi
cargo rustc -p hookrelay-console-islands --lib --release --locked --crate-type cdylib \
  --features hydrate --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir "$PKG" --out-name console \
  "$TARGET_DIR/wasm32-unknown-unknown/release/hookrelay_console_islands.wasm"
echo "[hookrelay] console islands built into $PKG"

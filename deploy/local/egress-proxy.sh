#!/usr/bin/env bash
# A real HTTP CONNECT proxy (Debian's tinyproxy) on loopback for the egress tests
# (tests/e2e/egress.rs), logging every request it serves; `egress_proxy_down`
# stops it. Sourced by test.sh, after services.sh.
#
# Exports HOOKRELAY_TEST_PROXY_URL and HOOKRELAY_TEST_PROXY_LOG.

EGRESS_PROXY_PORT="${EGRESS_PROXY_PORT:-58888}"

egress_proxy_up() {
  local d="$1"
  command -v tinyproxy >/dev/null 2>&1 || apt_install tinyproxy
  egress_proxy_down "$d"
  mkdir -p "$d"
  chmod 777 "$d"
  : >"$d/tinyproxy.log"
  chmod 666 "$d/tinyproxy.log"
  # No ConnectPort line: CONNECT to any port (the test receivers' ports are random).
  cat >"$d/tinyproxy.conf" <<CONF
User nobody
Group nogroup
Port $EGRESS_PROXY_PORT
Listen 127.0.0.1
Timeout 60
LogFile "$d/tinyproxy.log"
LogLevel Info
MaxClients 200
Allow 127.0.0.1
CONF
  log "starting tinyproxy $(tinyproxy -v 2>&1 | awk '{print $2}') on 127.0.0.1:$EGRESS_PROXY_PORT"
  tinyproxy -d -c "$d/tinyproxy.conf" >"$d/tinyproxy.out" 2>&1 &
  echo $! >"$d/tinyproxy.pid"
  wait_for_port "$EGRESS_PROXY_PORT" tinyproxy 20
  export HOOKRELAY_TEST_PROXY_URL="http://127.0.0.1:$EGRESS_PROXY_PORT"
  export HOOKRELAY_TEST_PROXY_LOG="$d/tinyproxy.log"
}

egress_proxy_down() {
  local d="$1"
  if [ -f "$d/tinyproxy.pid" ]; then
    kill "$(cat "$d/tinyproxy.pid")" 2>/dev/null || true
    rm -f "$d/tinyproxy.pid"
  fi
}

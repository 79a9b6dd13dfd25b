#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ run on loopback, installing the Debian packages
# when they are missing, and that the `hookrelay` role and database exist.
# Sourced by up.sh and test.sh; safe to run again and again.
set -euo pipefail

HOOKRELAY_DB_USER="${HOOKRELAY_DB_USER:-hookrelay}"
HOOKRELAY_DB_PASSWORD="${HOOKRELAY_DB_PASSWORD:-hookrelay}"
HOOKRELAY_DB_NAME="${HOOKRELAY_DB_NAME:-hookrelay}"

log() { printf '\033[1m[hookrelay]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing $* (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # port name seconds
  local i
  for ((i = 0; i < $3 * 4; i++)); do
    port_open "$1" && return 0
    sleep 0.25
  done
  log "$2 did not come up on 127.0.0.1:$1 within $3 s"
  return 1
}

# Runs SQL as the PostgreSQL superuser: over TCP if trusted, else as the postgres OS user.
pg_admin() {
  if PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -Atqc "$1" 2>/dev/null; then
    return 0
  fi
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- psql -d postgres -v ON_ERROR_STOP=1 -Atqc "$1"
  else
    sudo -u postgres psql -d postgres -v ON_ERROR_STOP=1 -Atqc "$1"
  fi
}

ensure_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql
  fi
  if ! port_open 5432; then
    local version
    version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
      log "creating PostgreSQL $version cluster"
      as_root pg_createcluster "$version" main >/dev/null
    fi
    local cluster
    cluster="$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')"
    log "starting PostgreSQL ($cluster)"
    # shellcheck disable=SC2086
    as_root pg_ctlcluster --skip-systemctl-redirect $cluster start
    wait_for_port 5432 PostgreSQL 60
  fi
  # The role and database hookrelay uses (password auth works on stock Debian).
  pg_admin "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$HOOKRELAY_DB_USER') THEN
        CREATE ROLE $HOOKRELAY_DB_USER LOGIN CREATEDB PASSWORD '$HOOKRELAY_DB_PASSWORD';
      END IF;
    END \$\$;"
  if [ -z "$(pg_admin "SELECT 1 FROM pg_database WHERE datname = '$HOOKRELAY_DB_NAME'")" ]; then
    pg_admin "CREATE DATABASE $HOOKRELAY_DB_NAME OWNER $HOOKRELAY_DB_USER"
  fi
}

ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    apt_install rabbitmq-server
  fi
  if ! port_open 5672; then
    log "starting RabbitMQ on 127.0.0.1"
    # Loopback only, for both AMQP and Erlang distribution.
    as_root env RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 \
      /usr/sbin/rabbitmq-server -detached
    wait_for_port 5672 RabbitMQ 120
  fi
}

ensure_services() {
  ensure_postgres
  ensure_rabbitmq
  log "PostgreSQL and RabbitMQ are up on 127.0.0.1"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_services
fi

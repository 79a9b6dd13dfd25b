#!/usr/bin/env bash
# A PostgreSQL cluster and a RabbitMQ node that speak only TLS, with certificates
# from a throwaway CA, for the TLS tests (tests/e2e/tls.rs). They run beside the
# machine's own services, on their own ports, and `tls_services_down` removes them.
# Sourced by test.sh, after services.sh.
#
# Exports HOOKRELAY_TEST_TLS_DIR (ca.pem, wrong-ca.pem, client.pem, client.key),
# HOOKRELAY_TEST_TLS_DATABASE_URL and HOOKRELAY_TEST_TLS_AMQP_URL.

# shellcheck source=rabbit-nodes.sh
source "$(dirname "${BASH_SOURCE[0]}")/rabbit-nodes.sh"

TLS_PG_PORT="${TLS_PG_PORT:-55433}"
TLS_PG_CLUSTER=hookrelay_tls
TLS_AMQP_PORT="${TLS_AMQP_PORT:-56711}"
TLS_AMQP_DIST="${TLS_AMQP_DIST:-25711}"
TLS_RABBIT=hookrelay-tls

# make_certs DIR: a CA, a server certificate for localhost and 127.0.0.1, a client
# certificate, and a second CA that signed none of them.
make_certs() {
  local d="$1"
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  mkdir -p "$d"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  for ca in ca wrong-ca; do
    openssl req -x509 "${ec[@]}" -days 3 -subj "/CN=hookrelay test $ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$d/$ca.key" -out "$d/$ca.pem" 2>/dev/null
  done
  openssl req "${ec[@]}" -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  openssl req "${ec[@]}" -subj "/CN=hookrelay" -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$d/client.ext"
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3 -extfile "$d/client.ext" -out "$d/client.pem" 2>/dev/null
  chmod 644 "$d"/*.pem "$d"/client.key
}

tls_postgres_up() {
  local d="$1" version
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  as_root pg_dropcluster --stop "$version" "$TLS_PG_CLUSTER" >/dev/null 2>&1 || true
  as_root pg_createcluster "$version" "$TLS_PG_CLUSTER" --port "$TLS_PG_PORT" >/dev/null
  local conf="/etc/postgresql/$version/$TLS_PG_CLUSTER"
  install -o postgres -g postgres -m 600 "$d/server.key" "$conf/server.key"
  install -o postgres -g postgres -m 644 "$d/server.pem" "$conf/server.pem"
  cat >>"$conf/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
ssl = on
ssl_cert_file = '$conf/server.pem'
ssl_key_file = '$conf/server.key'
EOF
  # TLS only over TCP: a plaintext connection is rejected.
  cat >"$conf/pg_hba.conf" <<EOF
local all postgres peer
hostssl all all 127.0.0.1/32 scram-sha-256
hostnossl all all 0.0.0.0/0 reject
EOF
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$TLS_PG_CLUSTER" start
  wait_for_port "$TLS_PG_PORT" "PostgreSQL (TLS)" 60
  local sql="CREATE ROLE $HOOKRELAY_DB_USER LOGIN CREATEDB PASSWORD '$HOOKRELAY_DB_PASSWORD'"
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- psql -p "$TLS_PG_PORT" -d postgres -qc "$sql" >/dev/null
  else
    sudo -u postgres psql -p "$TLS_PG_PORT" -d postgres -qc "$sql" >/dev/null
  fi
}

tls_rabbit_up() {
  local d="$1" node="$1/rabbit"
  rabbit_node_stop "$TLS_RABBIT" "$node"
  rm -rf "$node"
  mkdir -p "$node"
  cp "$d/ca.pem" "$d/server.pem" "$d/server.key" "$node/"
  # TLS only, and a client certificate is required.
  cat >"$node/rabbit.conf" <<EOF
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$TLS_AMQP_PORT
ssl_options.cacertfile = $node/ca.pem
ssl_options.certfile = $node/server.pem
ssl_options.keyfile = $node/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
EOF
  rabbit_node_start "$TLS_RABBIT" "$node" "$TLS_AMQP_DIST"
}

# tls_services_up DIR: certificates in DIR, then both servers.
tls_services_up() {
  local d="$1"
  rm -rf "$d"
  make_certs "$d"
  log "starting PostgreSQL (TLS only) on 127.0.0.1:$TLS_PG_PORT and RabbitMQ (TLS only) on 127.0.0.1:$TLS_AMQP_PORT"
  tls_postgres_up "$d"
  tls_rabbit_up "$d"
  export HOOKRELAY_TEST_TLS_DIR="$d"
  export HOOKRELAY_TEST_TLS_DATABASE_URL="postgres://$HOOKRELAY_DB_USER:$HOOKRELAY_DB_PASSWORD@localhost:$TLS_PG_PORT/postgres"
  export HOOKRELAY_TEST_TLS_AMQP_URL="amqps://guest:guest@localhost:$TLS_AMQP_PORT/%2f"
}

tls_services_down() {
  local d="$1" version
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  as_root pg_dropcluster --stop "$version" "$TLS_PG_CLUSTER" >/dev/null 2>&1 || true
  rabbit_node_stop "$TLS_RABBIT" "$d/rabbit"
}

#!/usr/bin/env bash
# Extra RabbitMQ nodes on this machine, beside (never instead of) its own broker:
# each with its own node name, ports, config and data folder, all sharing the
# rabbitmq user's Erlang cookie so they can form a cluster. Sourced by the TLS test
# services and by loadtest/scenarios/cluster.sh.

# rabbit_as [VAR=value...] COMMAND ARGS...: as the rabbitmq user, with its cookie.
rabbit_as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq "$@"
  else
    sudo -u rabbitmq env HOME=/var/lib/rabbitmq "$@"
  fi
}

rabbit_node_name() { echo "$1@localhost"; }

# rabbit_ctl NAME ARGS...: rabbitmqctl against node NAME.
rabbit_ctl() {
  local name="$1"
  shift
  rabbit_as /usr/lib/rabbitmq/bin/rabbitmqctl -n "$(rabbit_node_name "$name")" "$@"
}

# rabbit_node_start NAME DIR DIST_PORT: starts node NAME with DIR/rabbit.conf
# (written by the caller) and waits until it runs. Data and logs stay in DIR.
rabbit_node_start() {
  local name="$1" dir="$2" dist="$3"
  mkdir -p "$dir/log" "$dir/mnesia"
  [ -e "$dir/enabled_plugins" ] || echo '[].' >"$dir/enabled_plugins"
  chown -R rabbitmq:rabbitmq "$dir"
  (cd /var/lib/rabbitmq && rabbit_as \
    RABBITMQ_NODENAME="$(rabbit_node_name "$name")" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_DIST_PORT="$dist" \
    RABBITMQ_CONFIG_FILE="$dir/rabbit" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_PID_FILE="$dir/pid" \
    /usr/lib/rabbitmq/bin/rabbitmq-server -detached) >/dev/null
  # Until the node has registered with epmd, await_startup fails at once.
  local i
  for ((i = 0; i < 240; i++)); do
    rabbit_ctl "$name" await_startup --timeout 120 >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "RabbitMQ node $name did not start; see $dir/log"
  return 1
}

# The operating-system pid of node NAME started in DIR (for kill -9).
rabbit_node_pid() { cat "$2/pid" 2>/dev/null || true; }

# rabbit_node_stop NAME DIR: stops the node if it runs (kills it if it will not stop).
rabbit_node_stop() {
  local name="$1" dir="$2" pid
  pid="$(rabbit_node_pid "$name" "$dir")"
  timeout 30 bash -c "$(declare -f rabbit_as rabbit_ctl rabbit_node_name); rabbit_ctl $name stop" \
    >/dev/null 2>&1 || true
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
  fi
}

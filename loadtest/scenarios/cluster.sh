#!/usr/bin/env bash
# hookrelay on a three-node RabbitMQ cluster, under load, losing a node: the node
# that leads the ingest queue (KILL=leader, the default) or the node the gateway is
# connected to (KILL=gateway) is killed with kill -9 mid-run and started again
# later. Gateways and dispatchers fail over to the other nodes; quorum queues
# keep every confirmed message on the two survivors. Goal: 0 missing.
#
#   bash loadtest/scenarios/cluster.sh             # kill the ingest queue's leader
#   KILL=gateway bash loadtest/scenarios/cluster.sh
#
# The three nodes (hookrelay-c1..3@localhost, AMQP on 127.0.0.1:56731..56733) run
# beside the machine's own broker and are stopped and removed at the end.
source "$(dirname "$0")/lib.sh"
# shellcheck source=../../deploy/local/rabbit-nodes.sh
source "$ROOT/deploy/local/rabbit-nodes.sh"

CLUSTER="${TMPDIR:-/tmp}/hookrelay-cluster"
NODES=(1 2 3)
amqp_port() { echo $((56730 + $1)); }
node_dir() { echo "$CLUSTER/c$1"; }

cluster_down() {
  for n in "${NODES[@]}"; do rabbit_node_stop "hookrelay-c$n" "$(node_dir "$n")"; done
  rm -rf "$CLUSTER"
}
trap 'cleanup; cluster_down' EXIT

start_node() {
  local n="$1" dir
  dir="$(node_dir "$n")"
  mkdir -p "$dir"
  cat >"$dir/rabbit.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$(amqp_port "$n")
cluster_partition_handling = pause_minority
EOF
  rabbit_node_start "hookrelay-c$n" "$dir" $((25730 + n))
}

cluster_down
log "starting a three-node RabbitMQ cluster"
for n in "${NODES[@]}"; do start_node "$n"; done
for n in 2 3; do
  rabbit_ctl "hookrelay-c$n" stop_app >/dev/null
  rabbit_ctl "hookrelay-c$n" join_cluster "$(rabbit_node_name hookrelay-c1)" >/dev/null
  rabbit_ctl "hookrelay-c$n" start_app >/dev/null
done
rabbit_ctl hookrelay-c1 cluster_status --formatter json |
  python3 -c 'import json,sys; s=json.load(sys.stdin); print("running nodes:", ", ".join(s["running_nodes"]))'

urls=()
for n in "${NODES[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f"); done
HOOKRELAY_AMQP_URL="$(IFS=,; echo "${urls[*]}")"
export HOOKRELAY_AMQP_URL HOOKRELAY_QUORUM_REPLICAS=3

# Separate processes, so the gateway's node and the dispatchers' can differ. The
# dispatchers start first: queue leaders go to the node of whoever declares first.
start dispatcher d1
start dispatcher d2
start gateway
gateway_pid=$STARTED

# rabbitmqctl against whichever node still answers.
ask() {
  local n
  for n in "${NODES[@]}"; do
    rabbit_ctl "hookrelay-c$n" "$@" 2>/dev/null && return 0
  done
  return 1
}
# The node a quorum queue's leader runs on, e.g. hookrelay-c2.
leader_of() {
  ask list_queues name leader --formatter json |
    python3 -c 'import json,sys
for q in json.load(sys.stdin):
    if q["name"] == sys.argv[1]: print(q["leader"].split("@")[0])' "$1"
}
# The node the gateway's connection is on, from the broker port it connected to.
gateway_node() {
  ask list_connections port client_properties --formatter json |
    python3 -c 'import json,sys
for c in json.load(sys.stdin):
    if ["connection_name", "longstr", "hookrelay-gateway"] in c["client_properties"]:
        print("hookrelay-c%d" % (c["port"] - 56730)); break'
}

# KILL=gateway wants the gateway's node to be another than the ingest leader's,
# so the two faults are measured apart: start the gateway again until it is.
if [ "${KILL:-leader}" = gateway ]; then
  for _ in 1 2 3 4 5 6; do
    [ "$(gateway_node)" != "$(leader_of "$RUN_ID.ingest")" ] && break
    kill -TERM "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
    start gateway
    gateway_pid=$STARTED
  done
fi
case "${KILL:-leader}" in
  leader) victim="$(leader_of "$RUN_ID.ingest")" ;;
  gateway) victim="$(gateway_node)" ;;
  *) log "KILL is leader or gateway"; exit 2 ;;
esac
[ -n "$victim" ] || { log "could not tell which node to kill"; exit 1; }
n="${victim#hookrelay-c}"
log "victim: $victim (${KILL:-leader}); ingest leader $(leader_of "$RUN_ID.ingest"), gateway on $(gateway_node)"
ask list_queues name members --formatter json | python3 -c 'import json,sys
q = [q for q in json.load(sys.stdin) if q["name"] == sys.argv[1]][0]
print("ingest queue replicas:", ", ".join(m.split("@")[0] for m in q["members"]))' "$RUN_ID.ingest"

loadtest --rate "${RATE:-2000}" --events "${EVENTS:-60000}" --endpoints 10 --fanout 2 \
  --deadline 300 --gateway-pid "$gateway_pid" &
harness=$!
sleep "${FAULT_AFTER:-8}"
pid="$(rabbit_node_pid "$victim" "$(node_dir "$n")")"
killed_at=$(date +%s.%N)
log "kill -9 $victim (pid $pid)"
kill -9 "$pid"
sleep 3
log "after the kill: ingest leader $(leader_of "$RUN_ID.ingest"), gateway on $(gateway_node)"
sleep "${DOWN_FOR:-12}"
log "starting $victim again"
start_node "$n"
restarted_at=$(date +%s.%N)
wait "$harness"

python3 - "$WORK/report.json" "$killed_at" "$restarted_at" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
killed, restarted = float(sys.argv[2]), float(sys.argv[3])
print(f"cluster: delivered {r['delivered']} of {r['expected']}, missing {r['missing']}, "
      f"duplicates {r['duplicates']}, ingest retries {r['retries']}")
if r["retries_first_at"] is not None:
    print(f"ingest retries from {r['retries_first_at'] - killed:+.2f} s to "
          f"{r['retries_last_at'] - killed:+.2f} s after the kill "
          f"(node back at {restarted - killed:+.2f} s)")
EOF

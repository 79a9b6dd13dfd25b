#!/usr/bin/env bash
# Proves the dashboard and the alert rules against Debian's Prometheus scraping a
# live hookrelay (a gateway and a dispatcher) under load: every panel's query
# returns series and every metric an alert names exists; then, with the
# dispatcher killed mid-run, the lag and no-dispatcher alerts go pending. The
# dispatcher comes back and the harness checks nothing was lost.
source "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null 2>&1 || apt_install prometheus

METRICS_PORT="$(free_port)"
PROM_PORT="$(free_port)"
PROM="http://127.0.0.1:$PROM_PORT"
start gateway
GATEWAY_TARGET="127.0.0.1:$API_PORT"
export HOOKRELAY_METRICS_LISTEN="127.0.0.1:$METRICS_PORT"
start dispatcher
dispatcher=$STARTED
unset HOOKRELAY_METRICS_LISTEN

cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - $ROOT/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: hookrelay
    static_configs:
      - targets: ["$GATEWAY_TARGET", "127.0.0.1:$METRICS_PORT"]
YML
promtool check config "$WORK/prometheus.yml" >/dev/null
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >>"$WORK/prometheus.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do curl -fs "$PROM/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done

log "load, then the dashboard and alert expressions against $PROM"
loadtest --rate 2000 --events "${EVENTS:-20000}" --endpoints 10 --fanout 2 --deadline 300 >/dev/null
sleep 6 # three scrapes after the last delivery
python3 "$ROOT/deploy/prometheus/check.py" "$PROM" "$ROOT/deploy/grafana/hookrelay.json" "$ROOT/deploy/prometheus/alerts.yml"

log "fault run: kill -9 the dispatcher mid-run; waiting for the alerts to go pending"
loadtest --rate 2000 --events 20000 --endpoints 10 --fanout 2 --deadline 600 >"$WORK/fault.json" &
harness=$!
sleep 4
kill -9 "$dispatcher"
pending() {
  curl -fs "$PROM/api/v1/alerts" | python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
print(" ".join(sorted(a["labels"]["alertname"] for a in alerts if a["state"] in ("pending", "firing"))))'
}
for _ in $(seq 1 120); do
  now="$(pending)"
  [[ "$now" == *HookrelayDeliveryLag* && "$now" == *HookrelayNoDispatcherConsuming* ]] && break
  sleep 2
done
log "alerts pending or firing: ${now:-none}"
[[ "$now" == *HookrelayDeliveryLag* && "$now" == *HookrelayNoDispatcherConsuming* ]] || { log "the lag alerts did not go pending"; exit 1; }
start dispatcher dispatcher-2
wait "$harness"
cat "$WORK/fault.json"
python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); sys.exit(0 if r["missing"] == 0 else 1)' "$WORK/fault.json"
log "dashboard, alerts and the fault run: all as expected"

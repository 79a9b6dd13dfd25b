#!/usr/bin/env bash
# Restart PostgreSQL mid-run: ingest keeps answering 202 throughout; nothing lost.
source "$(dirname "$0")/lib.sh"
start serve
loadtest --rate "${RATE:-2000}" --events "${EVENTS:-40000}" --endpoints 10 --fanout 2 --deadline 300 &
harness=$!
sleep "${FAULT_AFTER:-6}"
cluster="$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')"
log "stopping PostgreSQL ($cluster)"
# shellcheck disable=SC2086
as_root pg_ctlcluster --skip-systemctl-redirect $cluster stop -m fast
sleep "${DOWN_FOR:-5}"
log "starting PostgreSQL"
# shellcheck disable=SC2086
as_root pg_ctlcluster --skip-systemctl-redirect $cluster start
wait "$harness"

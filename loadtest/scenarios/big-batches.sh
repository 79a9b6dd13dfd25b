#!/usr/bin/env bash
# Greedy clients: PARALLEL (100) batch posts of 16 MiB each at once against one
# gateway, then the gateway's peak RSS (VmHWM). The batches parse in full but are
# refused (an empty event type: 422), so nothing reaches the broker; what is
# measured is what reading and parsing them costs. BUDGET sets
# HOOKRELAY_HTTP_BODY_BUDGET_BYTES (unset: the default, 256 MiB; 4294966272 is as
# good as no budget).
source "$(dirname "$0")/lib.sh"
PARALLEL="${PARALLEL:-100}"
[ -n "${BUDGET:-}" ] && export HOOKRELAY_HTTP_BODY_BUDGET_BYTES="$BUDGET"
start gateway
AUTH="authorization: Bearer $HOOKRELAY_ADMIN_TOKEN"
TENANT=$(curl -fs -X POST "$API/v1/tenants" -H "$AUTH" -H 'content-type: application/json' \
  -d '{"name":"big"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
BODY="$WORK/batch.json"
python3 - "$BODY" <<'PY'
import json, sys
payload = {"pad": "x" * 16000}
events = [{"event_type": "", "payload": payload} for _ in range(1000)]
with open(sys.argv[1], "w") as f:
    json.dump({"events": events}, f)
PY
log "body: $(stat -c %s "$BODY") bytes; $PARALLEL posts at once"
seq "$PARALLEL" | xargs -P "$PARALLEL" -I{} curl -s -o /dev/null -w '%{http_code}\n' \
  -X POST "$API/v1/tenants/$TENANT/events/batch" -H "$AUTH" -H 'content-type: application/json' \
  --data-binary "@$BODY" > "$WORK/codes.txt"
PEAK_KIB=$(awk '/VmHWM/ {print $2}' "/proc/$STARTED/status")
echo "{\"parallel\": $PARALLEL, \"budget_bytes\": \"${HOOKRELAY_HTTP_BODY_BUDGET_BYTES:-default}\", \"peak_rss_mib\": $((PEAK_KIB / 1024)), \"answers\": {$(sort "$WORK/codes.txt" | uniq -c | awk '{printf "%s\"%s\": %s", (NR>1?", ":""), $2, $1}')}}"

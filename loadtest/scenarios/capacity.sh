#!/usr/bin/env bash
# CPU per delivery in each process, for sizing a fleet: a gateway and a dispatcher
# in their own processes, PostgreSQL and RabbitMQ beside them, one batched burst.
# Reads each process's CPU time (user + system, from /proc) before and after and
# divides by the deliveries made. EVENTS and BATCH override.
source "$(dirname "$0")/lib.sh"

# CPU seconds used so far by these pids and their threads.
cpu_of() {
  python3 - "$@" <<'EOF'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
total = 0
for pid in sys.argv[1:]:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    except (FileNotFoundError, ProcessLookupError):
        pass
print(total / tick)
EOF
}
pids_of() { pgrep -d ' ' -f "$1" || true; }

start gateway
gateway=$STARTED
start dispatcher
dispatcher=$STARTED
postgres="$(pids_of 'postgres')"
rabbit="$(pids_of 'beam.smp')"

before=("$(cpu_of "$gateway")" "$(cpu_of "$dispatcher")" "$(cpu_of $postgres)" "$(cpu_of $rabbit)")
loadtest --concurrency 16 --batch "${BATCH:-100}" --events "${EVENTS:-100000}" --endpoints 10 \
  --fanout 2 --deadline 300 --gateway-pid "$gateway" >/dev/null
postgres="$(pids_of 'postgres')"
after=("$(cpu_of "$gateway")" "$(cpu_of "$dispatcher")" "$(cpu_of $postgres)" "$(cpu_of $rabbit)")

python3 - "$WORK/report.json" "${before[@]}" "${after[@]}" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
b = list(map(float, sys.argv[2:6])); a = list(map(float, sys.argv[6:10]))
n = r["delivered"]
print(f"{n} deliveries at {r['deliveries_per_s']:.0f}/s, missing {r['missing']}")
for name, x, y in zip(["gateway", "dispatcher", "postgresql", "rabbitmq"], b, a):
    print(f"{name:11} {y - x:7.1f} CPU s  {1e6 * (y - x) / n:6.1f} CPU µs per delivery")
EOF

#!/usr/bin/env bash
# Slow clients: CONNECTIONS (1000) connections each send half a request head and
# stall, while a normal client keeps asking; reports how long the stalled ones were
# held (the server closes them at HOOKRELAY_HTTP_HEADER_TIMEOUT, 10 s by default)
# and the normal client's latency meanwhile.
source "$(dirname "$0")/lib.sh"
CONNECTIONS="${CONNECTIONS:-1000}"
start gateway
python3 - "$API" "$CONNECTIONS" "$HOOKRELAY_ADMIN_TOKEN" <<'PY'
import json, select, socket, sys, time, urllib.request
api, n, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, port = api.removeprefix("http://").split(":")
socks = []
for _ in range(n):
    s = socket.create_connection((host, int(port)))
    s.sendall(b"POST /v1/tenants/acme/events HTTP/1.1\r\nHost: x\r\nContent-Ty")
    s.setblocking(False)
    socks.append(s)
opened = time.monotonic()
lat = []
open_socks = {s.fileno(): s for s in socks}
poller = select.poll()
for s in socks:
    poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
closed_at = []
while open_socks and time.monotonic() - opened < 120:
    t = time.monotonic()
    req = urllib.request.Request(api + "/v1/tenants", headers={"authorization": "Bearer " + token})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    lat.append((time.monotonic() - t) * 1000)
    for fd, _ in poller.poll(50):
        s = open_socks.get(fd)
        if s is None:
            continue
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            closed_at.append(time.monotonic() - opened)
            poller.unregister(fd)
            del open_socks[fd]
lat.sort()
print(json.dumps({
    "stalled_connections": n,
    "closed_by_server": len(closed_at),
    "still_open_after_120s": len(open_socks),
    "held_seconds_max": round(max(closed_at), 2) if closed_at else None,
    "normal_requests": len(lat),
    "normal_p50_ms": round(lat[len(lat) // 2], 2),
    "normal_p99_ms": round(lat[int(len(lat) * 0.99)], 2),
}))
PY

#!/usr/bin/env bash
# Measurement: N slow-loris clients (half a request head each, then nothing) against the
# admin API of one trunkline in file mode, with the open-file limit at 1,024 (soft and
# hard), on 127.0.0.1 only. Prints trunkline's descriptors and PSS before, while the
# clients are held, and 11 s later (past the 10 s header-read timeout), and how many of
# 20 GET /healthz probes were answered 200 during the attack.
#
#   bash scripts/bench-admin-slow.sh              # N = 2000
#   N=5000 BIN=target/debug/trunkline bash scripts/bench-admin-slow.sh   # any build
#
# Bounded: N connects (at most 20 that do not complete within 0.2 s), 25 probes of at
# most 2 s each, then everything is closed and trunkline is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin trunkline >/dev/null 2>&1 || cargo build --release --bin trunkline
  BIN="${CARGO_TARGET_DIR:-target}/release/trunkline"
fi
BIN=$(realpath "$BIN")
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sip_port=$(python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(
  ulimit -Sn 1024
  ulimit -Hn 1024
  cd "$work"
  SIP_LISTEN_ADDRESS=127.0.0.1 SIP_PORT=$sip_port ADMIN_LISTEN=127.0.0.1:$admin_port \
    LOG_FORMAT=json exec "$BIN" run
) >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  grep -q '"trunkline started"' "$work/log" 2>/dev/null && break
  sleep 0.1
done
grep '"open-file limit' "$work/log" || echo "(no open-file limit line: a trunkline before the admin cap)"
python3 - "$admin_port" "$N" "$pid" <<'PY'
import os, socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def fds(): return len(os.listdir(f"/proc/{pid}/fd"))
def pss():
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"): return int(line.split()[1])
def probe():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while (b := s.recv(4096)): got += b
        return got.startswith(b"HTTP/1.1 200")
    except OSError:
        return False
print(f"before: {fds()} descriptors, PSS {pss()} kB")
held, failed = [], 0
for _ in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.2)
        s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    except OSError:
        failed += 1
        if failed >= 20: break
ok = sum(probe() for _ in range(20))
print(f"{len(held)} slow clients held ({failed} connects not completed in 0.2 s): "
      f"{fds()} descriptors, PSS {pss()} kB, /healthz answered {ok}/20")
time.sleep(11)  # measuring: past the header-read timeout, not synchronising
ok = sum(probe() for _ in range(5))
print(f"11 s later: {fds()} descriptors, PSS {pss()} kB, /healthz answered {ok}/5")
PY

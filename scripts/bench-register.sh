#!/usr/bin/env bash
# Benchmark: time for trunkline to register N accounts with a real Kamailio registrar
# (MD5 digest, qop=auth) on loopback, and what it costs.
#
#   bash scripts/bench-register.sh            # N = 1000 and 10000
#   N_LIST="10000" RATE=20000 bash scripts/bench-register.sh
#
# Prints, per N: seconds from start to all-registered (read from the status file),
# trunkline's CPU seconds (user+sys, from /proc) and peak RSS (VmHWM) at that moment,
# and bytes of RSS per registration. Kamailio runs with 4 children and big buffers.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
bash scripts/install-peers.sh >/dev/null

N_LIST=${N_LIST:-"1000 10000"}
RATE=${RATE:-20000}
KPORT=${KPORT:-5190}
SPORT=${SPORT:-5170}
cargo build --release --bin trunkline >/dev/null 2>&1 || cargo build --release --bin trunkline
BIN=target/release/trunkline
CLK=$(getconf CLK_TCK)

for N in $N_LIST; do
  work=$(mktemp -d -t trunkline-bench-XXXXXX)
  kamailio -f tests/kamailio/registrar.cfg -DD -E --debug=1 -w "$work" -Y "$work" \
    -P "$work/kamailio.pid" -l "udp:127.0.0.1:$KPORT" \
    -A "CTL_SOCKET=\"unix:$work/ctl.sock\"" -m 256 >"$work/kamailio.log" 2>&1 &
  kpid=$!
  for _ in $(seq 100); do kamcmd -s "unix:$work/ctl.sock" core.uptime >/dev/null 2>&1 && break; sleep 0.1; done
  python3 - "$N" "$KPORT" "$SPORT" "$RATE" "$work" <<'PY'
import hashlib, sys
n, kport, sport, rate, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
out = [f'[sip]\nlisten_address = "127.0.0.1"\nport = {sport}\npublic_address = "127.0.0.1"\n'
       f'register_rate = {rate}\n\n[status]\nfile = "{work}/status.json"\n\n[log]\nlevel = "warn"\n']
for i in range(n):
    u = f"bench{i:06d}"
    pw = hashlib.md5(f"trunkline-test:{u}".encode()).hexdigest()
    out.append(f'[[providers]]\nid = "{u}"\nname = "{u}"\nhost = "127.0.0.1"\nport = {kport}\n'
               f'username = "{u}"\npassword = "{pw}"\nexpires = 3600\n')
open(f"{work}/trunkline.toml", "w").write("\n".join(out))
PY
  start=$(date +%s.%N)
  "$BIN" run --config "$work/trunkline.toml" >"$work/trunkline.log" 2>&1 &
  tpid=$!
  python3 - "$work/status.json" "$N" <<'PY'
import json, sys, time, os
path, n = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 300
while time.time() < deadline:
    try:
        d = json.load(open(path))["providers"]
        if sum(1 for v in d.values() if v["registerStatus"] == "registered") >= n:
            sys.exit(0)
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(0.02)
sys.exit("timed out waiting for all registrations")
PY
  end=$(date +%s.%N)
  read -r utime stime < <(awk '{print $14, $15}' "/proc/$tpid/stat")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$tpid/status")
  bindings=$(kamcmd -s "unix:$work/ctl.sock" stats.get_statistics usrloc:registered_users 2>&1 | grep -o '[0-9]*$' || true)
  kill -TERM "$tpid"; wait "$tpid" || true
  kill "$kpid"; wait "$kpid" 2>/dev/null || true
  python3 - "$N" "$start" "$end" "$utime" "$stime" "$CLK" "$hwm" "$bindings" <<'PY'
import sys
n, start, end, ut, st, clk, hwm, b = sys.argv[1:]
n = int(n); cpu = (int(ut) + int(st)) / int(clk); rss = int(hwm) * 1024
print(f"N={n}: all registered in {float(end)-float(start):.2f} s; trunkline CPU {cpu:.2f} s "
      f"({cpu/n*1e6:.0f} us/registration); peak RSS {rss/1e6:.1f} MB "
      f"({rss/n:.0f} B/registration incl. the process baseline); Kamailio bindings {b}")
PY
  rm -rf "$work"
done

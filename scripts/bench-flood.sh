#!/usr/bin/env bash
# Benchmark: trunkline under a full-rate garbage flood on its SIP port (issue 8, item 9).
#
#   bash scripts/bench-flood.sh                      # 3 runs of a 60 s dense flood
#   KIND=requests REPEAT=5 bash scripts/bench-flood.sh
#   TRUNKLINE_BIN=/other/target/release/trunkline bash scripts/bench-flood.sh   # a baseline
#
# Per run: a Kamailio registrar (tests/kamailio/registrar.cfg) on 127.0.0.1:$KPORT and
# trunkline (file mode, release) on 127.0.0.1:$SPORT with one account, short-flood,
# which the registrar grants 20 s. Once it is registered, the flood tool
# (tests/examples/flood.rs, `KIND` = dense | requests | responses | mixed) sends from
# 127.0.0.2 as fast as one socket goes for FLOOD_SECONDS, while a poller asks the
# registrar every 0.5 s whether the binding is still there (kamcmd ul.lookup).
# Everything stays on loopback; every process is stopped at the end.
#
# One line per run, then the medians: datagrams/s the flood sent, datagrams/s trunkline
# took off its socket and dealt with (the rise of trunkline_sip_messages_total{in}
# over the flood: parsed or dropped by its triage), of which parsed (not counted as
# dropped), its drops by reason, the datagrams the kernel dropped because trunkline's
# receive buffers were full (/proc/net/udp: the main socket and the registrar's own),
# and whether the 20 s registration stayed bound at the registrar at every look (with
# the refreshes it saw and the REGISTERs it answered: a refresh costs 1-2 when no
# answer is lost, each retransmission after a lost answer one more).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
bash scripts/install-peers.sh >/dev/null

KIND=${KIND:-dense}
FLOOD_SECONDS=${FLOOD_SECONDS:-60}
REPEAT=${REPEAT:-3}
KPORT=${KPORT:-5290}   # registrar
SPORT=${SPORT:-5270}   # trunkline SIP
APORT=${APORT:-5271}   # trunkline admin (TCP)

die() { echo "bench-flood: error: $*" >&2; exit 1; }
case $KIND in dense | requests | responses | mixed) ;; *) die "KIND must be dense, requests, responses or mixed" ;; esac
(( FLOOD_SECONDS > 0 && FLOOD_SECONDS <= 600 )) || die "FLOOD_SECONDS must be 1-600"

for port in "$KPORT" "$SPORT"; do
  python3 -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.1", int(sys.argv[1])))' \
    "$port" 2>/dev/null || die "UDP port 127.0.0.1:$port is already in use (choose others with KPORT=, SPORT=)"
done

TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p trunkline-tests --example flood >/dev/null 2>&1 ||
  cargo build --release -p trunkline-tests --example flood
FLOOD=$TARGET/release/examples/flood
if [ -z "${TRUNKLINE_BIN:-}" ]; then
  cargo build --release --bin trunkline >/dev/null 2>&1 || cargo build --release --bin trunkline
  TRUNKLINE_BIN=$TARGET/release/trunkline
fi
[ -x "$TRUNKLINE_BIN" ] || die "no trunkline binary at $TRUNKLINE_BIN"

ROOT=$(mktemp -d -t trunkline-flood-XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [ -n "${KEEP:-}" ] && echo "bench-flood: kept $ROOT" >&2 || rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r load1 _ </proc/loadavg
echo "bench-flood: $(nproc) CPUs, load average $load1 before the run; trunkline $TRUNKLINE_BIN; $KIND flood for $FLOOD_SECONDS s, $REPEAT runs" >&2

cat >"$ROOT/run.py" <<'PY'
import hashlib, json, os, re, subprocess, sys, time, urllib.request

(root, run, trunkline, flood, kind, seconds, kport, sport, aport) = sys.argv[1:]
seconds = float(seconds)
work = os.path.join(root, f"run{run}")
os.makedirs(os.path.join(work, "registrar"))
sock = os.path.join(work, "registrar", "ctl.sock")
user = "short-flood"
pw = hashlib.md5(f"trunkline-test:{user}".encode()).hexdigest()
procs = []

def kam(*args):
    return subprocess.run(["kamcmd", "-s", "unix:" + sock, *args], capture_output=True,
                          text=True, timeout=5).stdout

def metrics():
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{aport}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    out = {}
    for line in page.splitlines():
        m = re.match(r"^(trunkline_sip_\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out

def udp_drops(port, connected=False):  # connected: the registrar sockets only
    rows = [l.split() for l in open("/proc/net/udp").readlines()[1:]]
    return sum(int(r[-1]) for r in rows if int(r[1].split(":")[1], 16) == int(port)
               and (not connected or r[2] != "00000000:0000"))

def binding():  # (present, cseq)
    out = kam("ul.lookup", "location", user)
    m = re.search(r"CSeq:\s*(\d+)", out)
    return (m is not None and "Contact:" in out, int(m.group(1)) if m else None)

def registers():  # REGISTERs the registrar received (each answered: 401 or 200)
    m = re.search(r"core:rcv_requests_register = (\d+)", kam("stats.get_statistics", "all"))
    return int(m.group(1)) if m else 0

def fail(why):
    print(f"run {run}: {why}", flush=True)
    sys.exit(1)

try:
    procs.append(subprocess.Popen(
        ["kamailio", "-f", "tests/kamailio/registrar.cfg", "-DD", "-E", "--debug=1",
         "-w", f"{work}/registrar", "-Y", f"{work}/registrar", "-P", f"{work}/registrar/kamailio.pid",
         "-l", f"udp:127.0.0.1:{kport}", "-A", f'CTL_SOCKET="unix:{sock}"', "-m", "64"],
        stdout=open(f"{work}/registrar/kamailio.log", "w"), stderr=subprocess.STDOUT))
    for _ in range(100):
        if "uptime" in kam("core.uptime") or kam("core.uptime").strip():
            break
        time.sleep(0.1)
    else:
        fail("the registrar did not start")
    open(f"{work}/trunkline.toml", "w").write(
        f'[sip]\nlisten_address = "127.0.0.1"\nport = {sport}\npublic_address = "127.0.0.1"\n\n'
        f'[admin]\nlisten = "127.0.0.1:{aport}"\n\n[status]\nfile = "{work}/status.json"\n\n'
        f'[log]\nlevel = "warn"\n\n[[providers]]\nid = "flood"\nname = "flood"\n'
        f'host = "127.0.0.1"\nport = {kport}\nusername = "{user}"\npassword = "{pw}"\n')
    procs.append(subprocess.Popen([trunkline, "run", "--config", f"{work}/trunkline.toml"],
                                  cwd=work, stdout=open(f"{work}/trunkline.log", "w"),
                                  stderr=subprocess.STDOUT))
    deadline = time.time() + 30
    while not binding()[0]:
        if time.time() > deadline:
            fail("trunkline did not register short-flood within 30 s")
        time.sleep(0.2)
    cseq0 = binding()[1]
    m0, d0, r0, c0 = metrics(), udp_drops(sport), registers(), udp_drops(sport, True)
    start = time.time()
    tool = subprocess.Popen([flood, f"127.0.0.1:{sport}", kind, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    looks = absent = 0
    while tool.poll() is None:
        present, cseq = binding()
        looks += 1
        absent += 0 if present else 1
        time.sleep(0.5)
    elapsed = time.time() - start
    sent_line = tool.stdout.read().strip()
    m1, d1, r1, c1 = metrics(), udp_drops(sport), registers(), udp_drops(sport, True)
    present, cseq1 = binding()
    looks += 1
    absent += 0 if present else 1
    status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{aport}/api/registrations", timeout=5))
    delta = lambda k: m1.get(k, 0) - m0.get(k, 0)
    sip_in = delta('trunkline_sip_messages_total{direction="in"}')
    dropped = {k.split('"')[1]: delta(k) for k in m1 if k.startswith("trunkline_sip_dropped_total")}
    dropped = {k: v for k, v in dropped.items() if v}
    parsed = sip_in - sum(dropped.values()) - delta("trunkline_sip_keepalives_total")
    sent_rate = float(re.search(r"rate (\d+)", sent_line).group(1)) if "rate" in sent_line else 0
    refreshes = (cseq1 or 0) - (cseq0 or 0)
    result = dict(run=run, sent_rate=sent_rate, in_rate=sip_in / elapsed, parsed_rate=parsed / elapsed,
                  parse_errors=delta("trunkline_sip_parse_errors_total"), dropped=dropped,
                  kernel_drops=d1 - d0, registers=r1 - r0, looks=looks, absent=absent, refreshes=refreshes,
                  status=status[0]["status"] if status else None)
    print(f"run {run}: flood {sent_rate:,.0f}/s; trunkline took {sip_in / elapsed:,.0f}/s off its socket "
          f"(parsed {parsed / elapsed:,.0f}/s, parse errors {result['parse_errors']:,.0f}); "
          f"dropped {dropped or 'none counted'}; kernel drops {d1 - d0:,} (registrar socket {c1 - c0:,}); registration "
          f"{'bound at every look' if absent == 0 else f'ABSENT at {absent} of {looks} looks'} "
          f"({looks} looks, {refreshes} refreshes; the registrar answered {r1 - r0} REGISTERs; "
          f"status {result['status']})", flush=True)
    with open(os.path.join(root, "results.jsonl"), "a") as f:
        f.write(json.dumps(result) + "\n")
finally:
    for p in reversed(procs):
        p.terminate()
    for p in reversed(procs):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
PY

for ((run = 1; run <= REPEAT; run++)); do
  python3 "$ROOT/run.py" "$ROOT" "$run" "$TRUNKLINE_BIN" "$FLOOD" "$KIND" "$FLOOD_SECONDS" \
    "$KPORT" "$SPORT" "$APORT" || echo "bench-flood: run $run failed" >&2
done

python3 - "$ROOT/results.jsonl" <<'PY'
import json, statistics, sys
try:
    rows = [json.loads(l) for l in open(sys.argv[1])]
except OSError:
    sys.exit("bench-flood: no run finished")
med = lambda k: statistics.median(r[k] for r in rows)
held = sum(1 for r in rows if r["absent"] == 0)
print(f"median of {len(rows)}: flood {med('sent_rate'):,.0f}/s, trunkline took {med('in_rate'):,.0f}/s "
      f"(parsed {med('parsed_rate'):,.0f}/s), kernel drops {med('kernel_drops'):,.0f}, "
      f"REGISTERs answered per refresh {sum(r['registers'] for r in rows) / max(1, sum(r['refreshes'] for r in rows)):.2f}; "
      f"the 20 s registration stayed bound in {held} of {len(rows)} runs")
PY

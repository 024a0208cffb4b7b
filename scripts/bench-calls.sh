#!/usr/bin/env bash
# Benchmark: calls through trunkline as a B2BUA, side by side with the same SIPp pair
# through Kamailio as a stateful proxy (the anchor, scripts/bench/kamailio-proxy.cfg)
# and SIPp to SIPp direct (the ceiling), all on 127.0.0.1 (issue 9 §4).
#
#   bash scripts/bench-calls.sh                       # everything below, all contenders
#   CONTENDERS="trunkline" bash scripts/bench-calls.sh
#   PARTS="rate" CONTENDERS="direct kamailio" bash scripts/bench-calls.sh
#   DURATION=20 SEARCH_DURATION=5 bash scripts/bench-calls.sh   # a quick look
#   BIN=/tmp/trunkline-old CONTENDERS=trunkline bash scripts/bench-calls.sh
#
# The call: scripts/bench/call-uac.xml (INVITE with SDP, 100/180, 200 with SDP, ACK,
# BYE at once, 200) against scripts/bench/call-uas.xml (180, then 200 with SDP).
# Contenders: direct (caller → callee), kamailio (caller → Kamailio tm + rr, 4
# children → callee), trunkline (caller → trunkline in file mode, the release build,
# SIP_ALLOWED_SOURCES=127.0.0.1/32 and a [routing.dids] route to the callee, INFO logs
# to a file: one line per ended call, as in production).
#
# PARTS (default "rate latency held"):
#   rate     the highest call rate each contender sustains for DURATION s (60) with
#            zero failed calls: a doubling search from START calls/s with trials of
#            SEARCH_DURATION s (10), a bisection to within 10 %, then confirmation runs
#            of DURATION s (10 % lower after a failure, at most 3). A trial passes when
#            the caller's SIPp exits 0 (every call successful), the callee's SIPp saw
#            every call, and the caller placed them in at most DURATION·1.05 + 2 s (a
#            SIPp that cannot keep the rate falls behind rather than failing). Each
#            passing trial also gives the middle box's CPU per call (user+sys of its
#            whole process tree from /proc over the trial, divided by the calls).
#   latency  setup latency (INVITE sent → 200 received, from a tcpdump capture of the
#            caller's port: µs resolution, where SIPp's own is 1 ms) p50/p99 for every contender at the same rate: LAT_RATE, or
#            half of trunkline's maximum from the rate part, for LAT_DURATION s (30);
#            the "added" figures are each contender's minus direct's.
#   held     trunkline's memory with HELD (10000) calls up at once: VmRSS before the
#            first call and once trunkline_active_calls (admin /metrics) reads HELD;
#            the difference per call, at once and HELD_SETTLE (40) s later, when the
#            calls' INVITE transactions are over (Timers L/M). The calls are placed at HELD_RATE (1000) calls/s
#            and stay up (the caller pauses an hour); they are not ended cleanly.
#
# Per contender the middle box gets a fresh process per trial. Ports: caller 5300,
# middle box 5301, callee 5302, trunkline admin 5303 (PORT_BASE=5300 moves them).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
bash scripts/install-peers.sh >/dev/null
command -v tcpdump >/dev/null || { apt-get update >/dev/null && apt-get install -y tcpdump >/dev/null; } ||
  { echo "bench-calls: error: the latency part needs tcpdump (apt-get install tcpdump)" >&2; exit 1; }

CONTENDERS=${CONTENDERS:-"direct kamailio trunkline"}
PARTS=${PARTS:-"rate latency held"}
DURATION=${DURATION:-60}
SEARCH_DURATION=${SEARCH_DURATION:-10}
START=${START:-500}
MAX_RATE=${MAX_RATE:-40000}
LAT_RATE=${LAT_RATE:-}
LAT_DURATION=${LAT_DURATION:-30}
HELD=${HELD:-10000}
HELD_RATE=${HELD_RATE:-1000}
KCHILDREN=${KCHILDREN:-4}
PORT_BASE=${PORT_BASE:-5300}
UAC_PORT=$PORT_BASE
MID_PORT=$((PORT_BASE + 1))
UAS_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))
DID="+15550100"

die() { echo "bench-calls: error: $*" >&2; exit 1; }

source scripts/bench/lib.sh
require_free_udp "PORT_BASE=" "$UAC_PORT" "$MID_PORT" "$UAS_PORT"

if [ -z "${BIN:-}" ]; then
  cargo build --release --bin trunkline >/dev/null 2>&1 || cargo build --release --bin trunkline
  BIN=${CARGO_TARGET_DIR:-target}/release/trunkline
fi
BIN=$(realpath "$BIN")
BENCH=$(realpath scripts/bench)

ROOT=$(mktemp -d -t trunkline-bench-calls-XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP:-}" ]; then echo "bench-calls: kept $ROOT" >&2; else rm -rf "$ROOT"; fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# cpu_ticks PID: user+sys clock ticks of PID and every process below it.
cpu_ticks() {
  local total=0 p f
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
    total=$((total + ${f% *} + ${f#* }))
  done
  echo "$total"
}
CLK=$(getconf CLK_TCK)

# runq_wait PID: "waited_ns slices" summed over every thread of PID and of the processes
# below it (/proc/<pid>/task/<tid>/schedstat: time on CPU, time runnable but waiting
# for a CPU, times run). The wait is what the machine, not the process, adds.
runq_wait() {
  local waited=0 slices=0 p file wait runs
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    for file in /proc/"$p"/task/*/schedstat; do
      read -r _ wait runs <"$file" 2>/dev/null || continue
      waited=$((waited + wait)) slices=$((slices + runs))
    done
  done
  echo "$waited $slices"
}

# SIPp options shared by both ends: a big socket buffer, no watchdog abort when the
# machine is saturated (the trial fails on its own figures instead), no keyboard.
# A message out of order is not fatal (-abortunexp off): Kamailio's workers relay a
# call's messages in parallel, so a 180 can follow the 200 and a BYE overtake its ACK,
# which a real UA shrugs off; a call that really goes wrong still fails on its
# -recv_timeout.
SIPP_COMMON=(-i 127.0.0.1 -nostdin -buff_size 8388608 -watchdog_major_maxtriggers 1000000
  -watchdog_minor_maxtriggers 1000000 -default_behaviors all,-abortunexp)

# start_uas DIR CALLS: the callee, in DIR; its pid in UAS_PID. (Functions that start
# processes set globals rather than print: a $(…) would make the process the child of
# a subshell, and this shell could not wait for it.)
start_uas() {
  (cd "$1" && exec sipp "${SIPP_COMMON[@]}" -sf "$BENCH/call-uas.xml" -p "$UAS_PORT" \
    -m "$2" -trace_stat -stf uas-stat.csv -fd 1 >uas.out 2>&1) &
  UAS_PID=$!
  PIDS+=("$UAS_PID")
}

# start_middle CONTENDER DIR: the box between caller and callee, its pid in MID_PID;
# returns once it answers SIP (an OPTIONS gets any response).
start_middle() {
  local who=$1 dir=$2 pid
  case "$who" in
    kamailio)
      # 1 GiB of shared memory: tm keeps each transaction there until its timers end
      # (32 s after a 2xx is relayed), and the default 64 MiB runs out at 2,000 calls/s.
      kamailio -f "$BENCH/kamailio-proxy.cfg" -DD -E -m 1024 -w "$dir" -Y "$dir" -P "$dir/kamailio.pid" \
        -l "udp:127.0.0.1:$MID_PORT" -A "CALLEE=\"sip:127.0.0.1:$UAS_PORT\"" \
        -A "CHILDREN=$KCHILDREN" >"$dir/middle.log" 2>&1 &
      pid=$!
      ;;
    trunkline)
      printf '[routing.dids]\n"%s" = "sip:%s@127.0.0.1:%s"\n' "$DID" "$DID" "$UAS_PORT" >"$dir/trunkline.toml"
      (cd "$dir" && exec env SIP_LISTEN_ADDRESS=127.0.0.1 SIP_PORT="$MID_PORT" \
        SIP_PUBLIC_ADDRESS=127.0.0.1 ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
        SIP_ALLOWED_SOURCES=127.0.0.1/32 LOG_FORMAT=json LOG_LEVEL=info \
        ${TRUNKLINE_ENV:-} "$BIN" run --config trunkline.toml >middle.log 2>&1) &
      pid=$!
      ;;
    *) die "unknown contender $who" ;;
  esac
  PIDS+=("$pid")
  python3 - "$MID_PORT" "$pid" "$dir/middle.log" <<'PY' || die "$who did not answer SIP within 10 s (log: $dir/middle.log)"
import os, socket, sys, time
port, pid, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.1)
me = s.getsockname()[1]
for i in range(100):
    try:
        os.kill(pid, 0)
    except OSError:
        sys.stderr.write(open(log).read()[-3000:])
        sys.exit(1)
    msg = (f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-bench-{i}\r\n"
           f"From: <sip:bench@127.0.0.1>;tag=b{i}\r\nTo: <sip:ping@127.0.0.1>\r\n"
           f"Call-ID: bench-ping-{i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        s.recv(65536)
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
PY
  MID_PID=$pid
}

stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  pkill -KILL -P "$1" 2>/dev/null || true
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# stat_field FILE COLUMN: the last value of COLUMN in a SIPp -trace_stat CSV.
stat_field() {
  python3 - "$1" "$2" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
head, last = rows[0], rows[-1]
print(last[head.index(sys.argv[2])])
PY
}

# trial CONTENDER RATE SECONDS [rtt]: one run; prints "ok|fail calls cpu_us_per_call
# wall retrans failed reason"; with rtt, the caller writes its setup times.
TRIAL=0
trial() {
  local who=$1 rate=$2 secs=$3 rtt=${4:-} calls dir mid="" target t0 t1 c0=0 c1=0 rc uas
  local w0=0 w1=0 s0=0 s1=0
  calls=$((rate * secs))
  TRIAL=$((TRIAL + 1))
  dir="$ROOT/$TRIAL-$who-$rate"
  mkdir -p "$dir"
  target="127.0.0.1:$UAS_PORT"
  if [ "$who" != direct ]; then
    start_middle "$who" "$dir"
    mid=$MID_PID
    target="127.0.0.1:$MID_PORT"
    c0=$(cpu_ticks "$mid")
    read -r w0 s0 < <(runq_wait "$mid")
  fi
  start_uas "$dir" "$calls"
  uas=$UAS_PID
  local cap=""
  if [ -n "$rtt" ]; then
    tcpdump -i lo -s 0 -U -w "$dir/caller.pcap" "udp port $UAC_PORT" >"$dir/tcpdump.log" 2>&1 &
    cap=$!
    PIDS+=("$cap")
    for ((i = 0; i < 50; i++)); do grep -q "listening on" "$dir/tcpdump.log" && break; sleep 0.1; done
  fi
  t0=$(date +%s.%N)
  rc=0
  (cd "$dir" && exec sipp "${SIPP_COMMON[@]}" -sf "$BENCH/call-uac.xml" "$target" -p "$UAC_PORT" \
    -s "$DID" -r "$rate" -rp 1000 -m "$calls" -l $((rate * 4 + 100)) -d 0 \
    -recv_timeout 10000 -timeout $((secs * 2 + 30)) -timeout_error \
    -trace_stat -stf uac-stat.csv -fd 1 >uac.out 2>&1) || rc=$?
  t1=$(date +%s.%N)
  [ -n "$cap" ] && stop_pid "$cap"
  [ -n "$mid" ] && c1=$(cpu_ticks "$mid") && read -r w1 s1 < <(runq_wait "$mid")
  # The callee has seen every call when the caller has its last 200 to the BYE; give
  # its last messages a moment, then it must have exited 0 by itself.
  local i uas_rc=fail
  for ((i = 0; i < 50; i++)); do kill -0 "$uas" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$uas" 2>/dev/null; then stop_pid "$uas"; else wait "$uas" && uas_rc=0 || true; fi
  # trunkline's counters (drops by reason, calls by outcome) for a failed trial's post-mortem.
  [ "$who" = trunkline ] && { curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" >"$dir/metrics.txt" 2>/dev/null || true; }
  [ -n "$mid" ] && stop_pid "$mid"
  local ok=0 fail=0 retrans=0 wall reason=""
  if [ -s "$dir/uac-stat.csv" ]; then
    ok=$(stat_field "$dir/uac-stat.csv" "SuccessfulCall(C)")
    fail=$(stat_field "$dir/uac-stat.csv" "FailedCall(C)")
    retrans=$(stat_field "$dir/uac-stat.csv" "Retransmissions(C)")
  fi
  wall=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
  local cpu_us
  cpu_us=$(python3 -c "print(f'{($c1 - $c0) * 1e6 / $CLK / max($ok, 1):.1f}')")
  # How long the middle box's threads were runnable but had no CPU, per time they ran:
  # on 2 cores shared with two SIPps, a wake-up can wait for a core.
  local runq
  runq=$(python3 -c "print(f'{($w1 - $w0) / 1e3 / max($s1 - $s0, 1):.1f}')")
  if [ "$rc" != 0 ]; then reason="caller SIPp exit $rc"
  elif [ "$ok" != "$calls" ]; then reason="$ok of $calls calls succeeded"
  elif [ "$uas_rc" != 0 ]; then reason="callee SIPp did not see every call"
  elif python3 -c "import sys; sys.exit(0 if $t1 - $t0 <= $secs * 1.05 + 2 else 1)"; then :
  else reason="fell behind the rate (${wall} s for ${secs} s of calls)"
  fi
  echo "$TRIAL $who rate=$rate secs=$secs ok=$ok failed=$fail retrans=$retrans wall=${wall}s cpu_us_per_call=$cpu_us runq_wait_us_per_run=$runq ${reason:+FAIL: $reason}" >>"$ROOT/trials.log"
  echo "  trial $who $rate/s × ${secs}s: ${reason:-ok} (ok $ok, failed $fail, retransmissions $retrans, ${wall} s, CPU ${cpu_us} µs/call, waited for a CPU ${runq} µs per run)" >&2
  RESULT_CPU=$cpu_us
  RESULT_DIR=$dir
  [ -z "$reason" ]
}

# max_rate CONTENDER: sets MAX and MAX_CPU (0 when even START fails).
max_rate() {
  local who=$1 lo=0 hi=0 r=$START mid tries
  while [ "$r" -le "$MAX_RATE" ]; do
    if trial "$who" "$r" "$SEARCH_DURATION"; then lo=$r; r=$((r * 2)); else hi=$r; break; fi
  done
  [ "$hi" = 0 ] && hi=$((MAX_RATE + 1))
  while [ "$lo" -gt 0 ] && [ $(((hi - lo) * 10)) -gt "$lo" ]; do
    mid=$(((lo + hi) / 2 / 50 * 50))
    [ "$mid" -le "$lo" ] && break
    if trial "$who" "$mid" "$SEARCH_DURATION"; then lo=$mid; else hi=$mid; fi
  done
  for tries in 1 2 3; do
    [ "$lo" -gt 0 ] || break
    if trial "$who" "$lo" "$DURATION"; then MAX=$lo; MAX_CPU=$RESULT_CPU; return 0; fi
    lo=$((lo * 9 / 10 / 50 * 50))
  done
  MAX=0; MAX_CPU=0
}

# percentiles DIR: "p50 p99 N" in µs of the caller's setup times, from the capture of
# its port (SIPp's own response times have 1 ms resolution): per Call-ID, the first
# INVITE the caller sent to the first 200 to an INVITE it received.
percentiles() {
  python3 - "$1" "$UAC_PORT" <<'PY'
import re, struct, sys
data = open(sys.argv[1] + "/caller.pcap", "rb").read()
port = int(sys.argv[2])
magic = struct.unpack("<I", data[:4])[0]
scale = 1e-3 if magic == 0xA1B23C4D else 1.0  # nanosecond pcap: to µs
link = struct.unpack("<I", data[20:24])[0]
off, sent, answered = 24, {}, {}
CALLID = re.compile(rb"\r\nCall-ID:\s*([^\r]+)", re.I)
CSEQ = re.compile(rb"\r\nCSeq:\s*\d+\s+INVITE", re.I)
while off + 16 <= len(data):
    sec, frac, incl, _ = struct.unpack("<IIII", data[off:off + 16])
    pkt = data[off + 16:off + 16 + incl]
    off += 16 + incl
    t = sec * 1e6 + frac * scale
    eth = 14 if link == 1 else 0
    if len(pkt) < eth + 28:
        continue
    ihl = (pkt[eth] & 0x0F) * 4
    sport, dport = struct.unpack(">HH", pkt[eth + ihl:eth + ihl + 4])
    sip = pkt[eth + ihl + 8:]
    m = CALLID.search(sip)
    if not m:
        continue
    cid = m.group(1)
    if sport == port and sip.startswith(b"INVITE "):
        sent.setdefault(cid, t)
    elif dport == port and sip.startswith(b"SIP/2.0 200") and CSEQ.search(sip):
        answered.setdefault(cid, t)
vals = sorted(answered[c] - sent[c] for c in answered if c in sent)
if not vals:
    print("n/a n/a 0")
else:
    q = lambda p: vals[min(len(vals) - 1, int(p * len(vals)))]
    print(f"{q(0.50):.0f} {q(0.99):.0f} {len(vals)}")
PY
}

echo "bench-calls: $(nproc) cores, $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1), $(kamailio -v | head -1), $BIN"
echo "bench-calls: working in $ROOT (KEEP=1 keeps it)"
declare -A RATE CPU
if [[ " $PARTS " == *" rate "* ]]; then
  for who in $CONTENDERS; do
    echo "bench-calls: searching $who's highest rate" >&2
    max_rate "$who"
    RATE[$who]=$MAX
    CPU[$who]=$MAX_CPU
  done
  echo
  echo "Highest call rate for ${DURATION} s with zero failed calls (short calls, UDP, loopback)"
  for who in $CONTENDERS; do
    if [ "$who" = direct ]; then
      printf '  %-10s %6s calls/s\n' "$who" "${RATE[$who]}"
    else
      printf '  %-10s %6s calls/s   CPU %s µs per call (middle box, at that rate)\n' "$who" "${RATE[$who]}" "${CPU[$who]}"
    fi
  done
  if [ -n "${RATE[trunkline]:-}" ] && [ -n "${RATE[kamailio]:-}" ] && [ "${RATE[kamailio]}" != 0 ]; then
    python3 -c "print(f'  trunkline / kamailio rate: {${RATE[trunkline]} / ${RATE[kamailio]}:.2f}')"
  fi
fi

if [[ " $PARTS " == *" latency "* ]]; then
  lat_rate=${LAT_RATE:-}
  if [ -z "$lat_rate" ] && [ -n "${RATE[trunkline]:-}" ] && [ "${RATE[trunkline]}" != 0 ]; then
    lat_rate=$((RATE[trunkline] / 2))
  fi
  lat_rate=${lat_rate:-1000}
  echo
  echo "Setup latency (INVITE → 200 at the caller) at $lat_rate calls/s for ${LAT_DURATION} s"
  declare -A P50 P99
  for who in $CONTENDERS; do
    if trial "$who" "$lat_rate" "$LAT_DURATION" rtt; then status=""; else status="  (the run had failures: see $ROOT/trials.log)"; fi
    read -r P50[$who] P99[$who] n < <(percentiles "$RESULT_DIR")
    added=""
    if [ "$who" != direct ] && [ -n "${P50[direct]:-}" ] && [ "${P50[direct]}" != n/a ] && [ "${P50[$who]}" != n/a ]; then
      added=$(printf '   added: p50 %s µs, p99 %s µs' $((P50[$who] - P50[direct])) $((P99[$who] - P99[direct])))
    fi
    printf '  %-10s p50 %6s µs   p99 %6s µs   (%s calls)%s%s\n' "$who" "${P50[$who]}" "${P99[$who]}" "$n" "$added" "$status"
  done
fi

if [[ " $PARTS " == *" held "* ]] && [[ " $CONTENDERS " == *" trunkline "* ]]; then
  echo
  dir="$ROOT/held"
  mkdir -p "$dir"
  start_middle trunkline "$dir"
  mid=$MID_PID
  start_uas "$dir" "$HELD"
  uas=$UAS_PID
  rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$mid/status")
  # The same caller with a pause of -d ms after the ACK (the marker comment in it).
  sed 's|<!-- bench-calls.sh.s held-calls part puts a pause of -d ms here. -->|<pause />|' \
    "$BENCH/call-uac.xml" >"$dir/call-uac-held.xml"
  grep -q '<pause />' "$dir/call-uac-held.xml" || die "scripts/bench/call-uac.xml lost its pause marker"
  (cd "$dir" && exec sipp "${SIPP_COMMON[@]}" -sf call-uac-held.xml "127.0.0.1:$MID_PORT" -p "$UAC_PORT" \
    -s "$DID" -r "$HELD_RATE" -m "$HELD" -l "$HELD" -d 3600000 >uac.out 2>&1) &
  uac=$!
  PIDS+=("$uac")
  active=0
  for ((i = 0; i < 600; i++)); do
    active=$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null | awk '$1 == "trunkline_active_calls" {print $2}')
    active=${active:-0}
    [ "${active%.*}" -ge "$HELD" ] && break
    kill -0 "$uac" 2>/dev/null || break
    sleep 0.5
  done
  rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$mid/status")
  # The INVITE transactions of both legs live on for 64·T1 = 32 s after the 2xx (RFC
  # 6026 Timers L and M): what a call costs while it lasts is read after they ended.
  sleep "${HELD_SETTLE:-40}"
  rss2=$(awk '/^VmRSS/ {print $2}' "/proc/$mid/status")
  active2=$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null | awk '$1 == "trunkline_active_calls" {print $2}')
  echo "Memory with calls held open (trunkline, $HELD calls placed at $HELD_RATE/s)"
  echo "  VmRSS before the first call: $rss0 KiB"
  python3 -c "a = max(float('$active'), 1); print(f'  {a:.0f} calls up, at once:       $rss1 KiB, {($rss1 - $rss0) * 1024 / a:.0f} bytes per call (their INVITE transactions still held)')"
  python3 -c "a = max(float('${active2:-0}'), 1); print(f'  {a:.0f} calls up, ${HELD_SETTLE:-40} s later:  $rss2 KiB, {($rss2 - $rss0) * 1024 / a:.0f} bytes per call')"
  stop_pid "$uac"; stop_pid "$uas"; stop_pid "$mid"
fi
echo
echo "bench-calls: every trial: $ROOT/trials.log"
cat "$ROOT/trials.log" 2>/dev/null || echo "(no trials ran)"

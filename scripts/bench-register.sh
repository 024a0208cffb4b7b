#!/usr/bin/env bash
# Benchmark: time to register N accounts with a real Kamailio registrar (MD5 digest,
# qop=auth) on loopback, and what it costs: trunkline side by side with the anchor,
# Kamailio's own uac module doing remote registrations (scripts/bench/uac-client.cfg).
#
#   bash scripts/bench-register.sh            # N = 1000 and 10000, both contenders
#   N_LIST="10000" RATE=20000 bash scripts/bench-register.sh
#   CONTENDERS="trunkline" bash scripts/bench-register.sh
#   BIN=/tmp/trunkline-old CONTENDERS=trunkline bash scripts/bench-register.sh   # that binary
#   WRAP="heaptrack -o /tmp/tl" CONTENDERS=trunkline bash scripts/bench-register.sh
#                                    # trunkline under a wrapper (profiler); its figures
#                                    # then include the wrapper's cost
#   N_LIST=100000 CONTENDERS=trunkline bash scripts/bench-register.sh
#                                    # the 100k mode (TIMEOUT grows with N)
#   N_LIST=100000 CONTENDERS=trunkline EXPIRES=300 STEADY=600 bash scripts/bench-register.sh
#                                    # steady state: 300 s grants, then 600 s of refreshes
#   TRANSPORTS="udp tls" N_LIST=10000 CONTENDERS=trunkline bash scripts/bench-register.sh
#                                    # the same over UDP, then over TLS (a CA and the
#                                    # registrar's certificate made with openssl), one
#                                    # registrar per transport; kamailio-uac is UDP only
#
# Per N, one registrar (tests/kamailio/registrar.cfg, 4 children, 4 MiB receive
# buffer) serves both contenders, one after the other, never at the same time:
#   trunkline      users tl000001…, file mode, "all registered" = every provider is
#                  "registered" in its status file;
#   kamailio-uac   users ku000001…, a second Kamailio (4 children, uac reg timer 1 s,
#                  4 MiB receive buffer) reading N uacreg rows from db_text;
#                  "all registered" = the registrar holds N new bindings and the uac
#                  module has no REGISTER transaction left open (see below).
# Each contender's clock starts just before its process is launched, so it includes
# its start-up (config / table load). Everything stays on 127.0.0.1.
#
# One line per (N, contender): seconds to all-registered (and when the registrar held
# all N bindings), CPU seconds (user+sys of every process of the contender, from
# /proc/PID/stat), memory at that moment (sum of PSS from /proc/PID/smaps_rollup, and
# the sum of the processes' peak RSS, VmHWM), PSS bytes per registration, and what the
# registrar saw (REGISTERs received, 2 per account when nothing was retransmitted;
# datagrams the kernel dropped because the registrar's or the contender's UDP receive
# buffer was full, from the drops column of /proc/net/udp).
#
# STEADY=S keeps each contender running S seconds after everyone is registered and adds
# a second line: CPU seconds over those S seconds, refreshes per second as the registrar
# accepted them (sampled every second: the mean and the busiest second, and their
# ratio), REGISTERs per refresh, UDP drops, and PSS at the end. Ask for grants short
# enough to refresh within S (EXPIRES=300: refreshes from about 150 s on).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
bash scripts/install-peers.sh >/dev/null

N_LIST=${N_LIST:-"1000 10000"}
CONTENDERS=${CONTENDERS:-"trunkline kamailio-uac"}
RATE=${RATE:-20000}
KPORT=${KPORT:-5190}     # registrar
SPORT=${SPORT:-5170}     # trunkline
UPORT=${UPORT:-5191}     # Kamailio uac client
RCVBUF=${RCVBUF:-4194304}
TIMEOUT=${TIMEOUT:-}     # seconds a contender may take to register everyone (default
                         # 120, or N/500 when that is more)
EXPIRES=${EXPIRES:-3600} # expiry every account asks for
STEADY=${STEADY:-0}      # seconds of steady state measured after all registered
TRANSPORTS=${TRANSPORTS:-udp} # udp, tcp, tls: each a run of its own, registrar and all

die() { echo "bench-register: error: $*" >&2; exit 1; }

source scripts/bench/lib.sh
require_free_udp "KPORT=, SPORT=, UPORT=" "$KPORT" "$SPORT" "$UPORT"

# BIN=path benchmarks that binary as it is (e.g. one built from another commit).
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin trunkline >/dev/null 2>&1 || cargo build --release --bin trunkline
  BIN=${CARGO_TARGET_DIR:-target}/release/trunkline
fi
UAC_CFG=scripts/bench/uac-client.cfg

# Everything started here, so the trap can stop it by pid; and the temp dirs.
ROOT=""
PIDS=()
DIRS=()
descendants() {  # every live process below $1
  local kid
  for kid in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$kid"
    descendants "$kid"
  done
}
# stop PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL whatever is left of it
# and of the processes it had started.
stop() {
  local pid=$1 limit=$2 tree i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  tree=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench-register: pid $pid did not stop within ${limit} s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  # Kamailio's children normally follow their main process; make sure.
  for i in $tree; do kill -KILL "$i" 2>/dev/null || true; done
}
forget() {  # a stopped pid is no longer the trap's business
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop "$pid" 5; done
  if [ -n "${KEEP:-}" ]; then
    echo "bench-register: kept $ROOT" >&2
  elif ((${#DIRS[@]})); then
    rm -rf "${DIRS[@]}"
  fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# kamcmd against one instance: kam SOCKET command args…
kam() { local s=$1; shift; timeout 5 kamcmd -s "unix:$s" "$@"; }
# A registrar statistic by its bare name (stats.get_statistics does not accept
# "group:name", which is why the old "usrloc:registered_users" column read empty).
kstat() { kam "$1" stats.get_statistics "$2" 2>/dev/null | sed -n 's/^[a-z_]*:[a-z_0-9]* = //p'; }
# wait_ctl SOCKET PID LOG WHAT: the instance answers on its control socket.
wait_ctl() {
  local i
  for ((i = 0; i < 100; i++)); do
    kam "$1" core.uptime >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 30 "$3" >&2; die "$4 exited during start-up (log above)"; }
    sleep 0.1
  done
  tail -n 30 "$3" >&2
  die "$4 did not answer on $1 within 10 s (log above)"
}
# wait_quiet SOCKET: the registrar has received no REGISTER for 300 ms (at most 30 s),
# so the previous contender's un-registrations are over before the next one starts.
wait_quiet() {
  local prev=-1 cur i
  for ((i = 0; i < 100; i++)); do
    cur=$(kstat "$1" rcv_requests_register)
    [ "$cur" = "$prev" ] && return 0
    prev=$cur
    sleep 0.3
  done
  die "the registrar kept receiving REGISTERs for 30 s after a contender stopped"
}

ROOT=$(mktemp -d -t trunkline-bench-XXXXXX)
DIRS+=("$ROOT")

# The poller and meter: waits (every 20 ms, at most TIMEOUT s) until the contender has
# registered everyone, then reads /proc for its whole process tree and prints the line.
cat >"$ROOT/measure.py" <<'PY'
import os, re, subprocess, sys, time

(mode, n, pid, start, reg_sock, target_sock, status_path, timeout, clk,
 base_contacts, base_regs, base_ok, base_drops, label, kport, cport, steady) = sys.argv[1:]
n, pid, start, timeout, clk = int(n), int(pid), float(start), float(timeout), int(clk)
steady = float(steady)
base_contacts, base_regs, base_ok, base_drops = map(int, (base_contacts, base_regs, base_ok, base_drops))

def stats(sock, *names):
    out = subprocess.run(["kamcmd", "-s", "unix:" + sock, "stats.get_statistics", *names],
                         capture_output=True, text=True, timeout=5).stdout
    vals = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\w-]+):([\w-]+) = (\d+)\s*$", line)
        if m:
            v = int(m.group(3))
            vals[m.group(2)] = v - (1 << 64) if v >= 1 << 63 else v  # counters wrap below 0
    return vals

def udp_drops(port):  # receive-buffer drops of the UDP sockets bound to this port
    rows = [l.split() for l in open("/proc/net/udp").readlines()[1:]]
    return sum(int(r[-1]) for r in rows if int(r[1].split(":")[1], 16) == int(port))

REGISTERED = re.compile(rb'"registerStatus"\s*:\s*"registered"')
def trunkline_done(state):
    try:
        st = os.stat(status_path)
    except OSError:
        return False
    if st.st_mtime_ns != state.get("mtime"):
        state["mtime"] = st.st_mtime_ns
        try:
            state["count"] = len(REGISTERED.findall(open(status_path, "rb").read()))
        except OSError:
            return False
    return state["count"] >= n

def uac_done(state):
    # The uac module's regactive counter is decremented when a REGISTER is sent and
    # incremented when its transaction ends (200, or an error), so it is back to 0 only
    # when no registration is in flight; with the registrar already holding N new
    # bindings that means every account is registered (and the 200s were received).
    v = stats(target_sock, "regtotal", "regactive", "regdisabled")
    state["uac"] = v
    if v.get("regdisabled", 0) > 0:
        sys.exit(f"{label}: {v['regdisabled']} uac registrations failed for good")
    return v.get("regtotal") == n and v.get("regactive") == 0

def tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out

def sample(pids):
    cpu = pss = hwm = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            cpu += int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)
            pss += sum(int(l.split()[1]) for l in open(f"/proc/{p}/smaps_rollup")
                       if l.startswith("Pss:")) * 1024
            hwm += sum(int(l.split()[1]) for l in open(f"/proc/{p}/status")
                       if l.startswith("VmHWM:")) * 1024
        except OSError:
            pass
    return cpu / clk, pss, hwm

done = trunkline_done if mode == "trunkline" else uac_done
state, reg_at, deadline = {}, None, start + timeout
while True:
    now = time.time()
    if now > deadline:
        sys.exit(f"{label}: timed out after {timeout:.0f} s: registrar holds "
                 f"{stats(reg_sock, 'location_contacts').get('location_contacts', 0) - base_contacts} "
                 f"of {n} new bindings; contender state {state}")
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"{label}: the contender (pid {pid}) exited before everyone was registered")
    if reg_at is None:
        if stats(reg_sock, "location_contacts").get("location_contacts", 0) - base_contacts >= n:
            reg_at = now
    if reg_at is not None and done(state):
        end = time.time()
        break
    time.sleep(0.02)

pids = tree(pid)
cpu, pss, hwm = sample(pids)
r = stats(reg_sock, "location_contacts", "rcv_requests_register", "accepted_regs")
drops = udp_drops(kport) - base_drops
cdrops = udp_drops(cport)
bindings = r.get("location_contacts", 0) - base_contacts
regs = r.get("rcv_requests_register", 0) - base_regs
accepted = r.get("accepted_regs", 0) - base_ok
procs = f"{len(pids)} processes" if len(pids) > 1 else "1 process"
print(f"N={n:<6} {label:<13} all registered in {end - start:6.2f} s (registrar held all at "
      f"{reg_at - start:.2f} s); CPU {cpu:6.2f} s ({cpu / n * 1e6:.0f} us/registration); "
      f"PSS {pss / 1e6:6.1f} MB ({pss / n:.0f} B/registration), peak RSS {hwm / 1e6:6.1f} MB "
      f"(sum over {procs}); registrar: {bindings} bindings, {regs} REGISTERs "
      f"({regs / n:.2f}/account), {accepted} accepted; UDP drops: registrar {drops}, contender {cdrops}",
      flush=True)

if steady > 0:
    # Steady state: one sample a second of the registrar's accepted REGISTERs (each a
    # refresh now: every account is registered) and of the contender's CPU.
    t0, cpu0, prev = time.time(), cpu, r
    per_second, busiest_at = [], 0.0
    while time.time() < t0 + steady:
        time.sleep(max(0.0, t0 + len(per_second) + 1 - time.time()))
        cur = stats(reg_sock, "accepted_regs", "rcv_requests_register", "location_contacts")
        per_second.append(cur.get("accepted_regs", 0) - prev.get("accepted_regs", 0))
        if per_second[-1] == max(per_second):
            busiest_at = time.time() - t0
        prev = cur
    cpu1, pss1, _ = sample(tree(pid))
    span = time.time() - t0
    refreshes = sum(per_second)
    sent = prev.get("rcv_requests_register", 0) - r.get("rcv_requests_register", 0)
    mean = refreshes / span
    busiest = max(per_second, default=0)
    held = prev.get("location_contacts", 0) - base_contacts
    print(f"N={n:<6} {label:<13} steady {span:.0f} s: CPU {cpu1 - cpu0:6.2f} s "
          f"({(cpu1 - cpu0) / span * 100:.1f}% of a core); refreshes/s mean {mean:.0f}, busiest "
          f"{busiest} at {busiest_at:.0f} s ({busiest / mean if mean else 0:.2f}x mean); "
          f"{refreshes} refreshes, {sent / refreshes if refreshes else 0:.2f} REGISTERs each; "
          f"bindings held {held}; UDP drops since start: registrar {udp_drops(kport) - base_drops}, "
          f"contender {udp_drops(cport)}; PSS {pss1 / 1e6:.1f} MB", flush=True)
PY

run_contender() {  # run_contender NAME N DIR REG_SOCK
  local name=$1 n=$2 dir=$3 rsock=$4 pid start log target_sock="" status="" cport
  wait_quiet "$rsock"
  local c0 r0 a0 d0
  c0=$(kstat "$rsock" location_contacts)
  r0=$(kstat "$rsock" rcv_requests_register)
  a0=$(kstat "$rsock" accepted_regs)
  d0=$(awk -v p="$(printf '%04X' "$KPORT")" 'NR > 1 { split($2, a, ":"); if (a[2] == p) s += $NF } END { print s + 0 }' /proc/net/udp)
  case $name in
    trunkline)
      log=$dir/trunkline.log
      cport=$SPORT
      status=$dir/status.json
      start=$(date +%s.%N)
      # Any free port for the admin API: a process on the default 127.0.0.1:8080 must
      # not make the run fail (ADMIN_LISTEN= overrides).
      ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:0} ${WRAP:-} "$BIN" run --config "$dir/trunkline.toml" >"$log" 2>&1 &
      pid=$!
      ;;
    kamailio-uac)
      log=$dir/uac/kamailio.log
      cport=$UPORT
      target_sock=$dir/uac/ctl.sock
      start=$(date +%s.%N)
      kamailio -f "$UAC_CFG" -DD -E --debug=1 -w "$dir/uac" -Y "$dir/uac" \
        -P "$dir/uac/kamailio.pid" -l "udp:127.0.0.1:$UPORT" -m 256 -M 32 -b "$RCVBUF" \
        -A "CTL_SOCKET=\"unix:$target_sock\"" -A "DB_URL=\"text://$dir/uac/db\"" \
        -A "CONTACT_ADDR=\"127.0.0.1:$UPORT\"" >"$log" 2>&1 &
      pid=$!
      ;;
  esac
  PIDS+=("$pid")
  if ! python3 "$ROOT/measure.py" "$name" "$n" "$pid" "$start" "$rsock" "$target_sock" \
      "$status" "${TIMEOUT:-$(( n / 500 > 120 ? n / 500 : 120 ))}" "$(getconf CLK_TCK)" "$c0" "$r0" "$a0" "$d0" \
      "$name/$T" "$KPORT" "$cport" "$STEADY"; then
    echo "--- last lines of $log:" >&2
    tail -n 20 "$log" >&2
    die "$name did not register $n accounts"
  fi
  if [ "$name" = kamailio-uac ]; then
    # Spot check that the records themselves say registered (flags bit 4 = ONLINE).
    local u flags
    for u in ku000001 "$(printf 'ku%06d' "$n")"; do
      flags=$(kam "$target_sock" uac.reg_info l_uuid "$u" | sed -n 's/^[[:space:]]*flags: //p')
      (( (flags & 4) != 0 )) || die "uac record $u is not registered (flags $flags)"
    done
  fi
  local errors
  errors=$(grep -c -E 'ERROR|WARN' "$log" || true)
  [ "$errors" = 0 ] || echo "    ($name logged $errors error/warning lines; KEEP=1 keeps the logs)" >&2
  stop "$pid" 20
  forget "$pid"
}

# Other work on the host skews every figure (and can make the registrar drop).
read -r load1 _ </proc/loadavg
echo "bench-register: $(nproc) CPUs, load average $load1 before the run; $(kamailio -v | head -n 1 | sed 's/^version: //')" >&2

# The registrar's TLS identity: a CA and a certificate for 127.0.0.1 it signed.
make_tls() {  # make_tls DIR
  local d=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$d/ca-key.pem" -out "$d/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
    -keyout "$d/key.pem" -out "$d/req.pem" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/req.pem" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
    -days 2 -extfile "$d/ext.cnf" -out "$d/cert.pem" >/dev/null 2>&1
  printf '[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = %s\ncertificate = %s\n' \
    "$d/key.pem" "$d/cert.pem" >"$d/tls.cfg"
}

for T in $TRANSPORTS; do
case $T in udp | tcp | tls) ;; *) die "unknown transport $T (udp, tcp, tls)" ;; esac
for N in $N_LIST; do
  work=$(mktemp -d -p "$ROOT" "n$N-XXXX")
  mkdir -p "$work/registrar" "$work/uac/db"
  rsock=$work/registrar/ctl.sock
  listen=(-l "udp:127.0.0.1:$KPORT")
  case $T in
    tcp) listen+=(-A WITH_TCP -l "tcp:127.0.0.1:$KPORT") ;;
    tls) make_tls "$work/registrar"
         listen+=(-A WITH_TLS -A "TLS_CFG=\"$work/registrar/tls.cfg\"" -l "tls:127.0.0.1:$KPORT") ;;
  esac
  kamailio -f tests/kamailio/registrar.cfg -DD -E --debug=1 -w "$work/registrar" -Y "$work/registrar" \
    -P "$work/registrar/kamailio.pid" "${listen[@]}" -b "$RCVBUF" \
    -A "CTL_SOCKET=\"unix:$rsock\"" -m 256 >"$work/registrar/kamailio.log" 2>&1 &
  kpid=$!
  PIDS+=("$kpid")
  wait_ctl "$rsock" "$kpid" "$work/registrar/kamailio.log" "the registrar"

  python3 - "$N" "$KPORT" "$SPORT" "$RATE" "$work" "$EXPIRES" "$T" <<'PY'
import hashlib, sys
n, kport, sport, rate, work, expires, transport = int(sys.argv[1]), *sys.argv[2:]
pw = lambda u: hashlib.md5(f"trunkline-test:{u}".encode()).hexdigest()

# trunkline: file mode, users tl000001…
out = [f'[sip]\nlisten_address = "127.0.0.1"\nport = {sport}\npublic_address = "127.0.0.1"\n'
       f'register_rate = {rate}\n\n[status]\nfile = "{work}/status.json"\n\n[log]\nlevel = "warn"\n']
if transport == "tls":
    out.insert(1, f'[sip.tls]\nca_file = "{work}/registrar/ca.pem"\n')
for i in range(1, n + 1):
    u = f"tl{i:06d}"
    out.append(f'[[providers]]\nid = "{u}"\nname = "{u}"\nhost = "127.0.0.1"\nport = {kport}\n'
               f'username = "{u}"\npassword = "{pw(u)}"\nexpires = {expires}\n'
               f'transport = "{transport}"\n')
open(f"{work}/trunkline.toml", "w").write("\n".join(out))

# Kamailio uac: db_text tables, users ku000001…. Columns as in Kamailio 5.6's
# uacreg (version 5); ':' inside a value is escaped; auth_ha1, contact_addr and socket
# are left NULL (clear-text password, the reg_contact_addr parameter, tm's socket).
db = f"{work}/uac/db"
open(f"{db}/version", "w").write(
    "id(int,auto) table_name(string) table_version(int) \n0:uacreg:5\n")
rows = ["id(int,auto) l_uuid(string) l_username(string) l_domain(string) r_username(string) "
        "r_domain(string) realm(string) auth_username(string) auth_password(string) "
        "auth_ha1(string,null) auth_proxy(string) expires(int) flags(int) reg_delay(int) "
        "contact_addr(string,null) socket(string,null) "]
for i in range(1, n + 1):
    u = f"ku{i:06d}"
    rows.append(f"{i}:{u}:{u}:127.0.0.1:{u}:127.0.0.1:trunkline.test:{u}:{pw(u)}::"
                f"sip\\:127.0.0.1\\:{kport}:{expires}:0:0::")
open(f"{db}/uacreg", "w").write("\n".join(rows) + "\n")
PY

  for c in $CONTENDERS; do
    case $c in trunkline | kamailio-uac) ;; *) die "unknown contender $c (trunkline, kamailio-uac)" ;; esac
    if [ "$c" = kamailio-uac ] && [ "$T" != udp ]; then
      echo "bench-register: kamailio-uac registers over UDP only; skipped for $T" >&2
      continue
    fi
    run_contender "$c" "$N" "$work" "$rsock"
  done

  stop "$kpid" 10
  forget "$kpid"
  [ -n "${KEEP:-}" ] || rm -rf "$work"
done
done

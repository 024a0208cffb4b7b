#!/usr/bin/env bash
# Checks tests/kamailio/registrar.cfg by hand with SIPp: starts Kamailio on a loopback
# port, runs each scenario of this folder against it and prints what the registrar
# stored. Exits non-zero on the first behaviour that differs.
#
#   bash tests/sipp/verify-registrar.sh [PORT]      (default port 5090)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cfg="$here/../kamailio/registrar.cfg"
port=${1:-5090}
key="trunkline-test" # the cfg's default PW_KEY
work=$(mktemp -d)
ctl="$work/ctl.sock"

for bin in kamailio kamcmd sipp; do
  command -v "$bin" >/dev/null || { echo "error: $bin is not installed (apt-get install kamailio kamailio-extra-modules sip-tester)" >&2; exit 1; }
done

kamailio -f "$cfg" -DD -E -w "$work" -Y "$work" -P "$work/kamailio.pid" \
  -l "udp:127.0.0.1:$port" -A "CTL_SOCKET=\"unix:$ctl\"" >"$work/kamailio.log" 2>&1 &
kam=$!
trap 'kill "$kam" 2>/dev/null; wait "$kam" 2>/dev/null; rm -rf "$work"' EXIT

# Kamailio has no readiness signal; its control socket answering is the next best.
for _ in $(seq 100); do
  kamcmd -s "unix:$ctl" core.uptime >/dev/null 2>&1 && break
  sleep 0.1
done
kamcmd -s "unix:$ctl" core.uptime >/dev/null

password() { printf '%s' "$key:$1" | md5sum | cut -c1-32; }

run() {
  local name=$1 scenario=$2 user=$3 pw=$4
  shift 4
  echo "== $name"
  if ! (cd "$work" && sipp "127.0.0.1:$port" -sf "$here/$scenario" -m 1 -nostdin -i 127.0.0.1 \
    -s "$user" -au "$user" -ap "$pw" -timeout 15 -timeout_error -trace_logs -trace_err -default_behaviors none "$@" >"$work/sipp.out" 2>&1); then
    echo "FAILED: $name" >&2
    cat "$work/sipp.out" "$work"/*_errors.log >&2 2>/dev/null || true
    exit 1
  fi
  cat "$work"/*_logs.log 2>/dev/null | grep -v '^$' || true
  rm -f "$work"/*_logs.log "$work"/*_errors.log
}

run "alice asks 300, granted 300" register.xml alice "$(password alice)" -key expires 300 -set granted_expected 300
run "alice-long asks 7200, granted 3600" register.xml alice-long "$(password alice-long)" -key expires 7200 -set granted_expected 3600
run "alice-brief asks 10, granted 60" register.xml alice-brief "$(password alice-brief)" -key expires 10 -set granted_expected 60
run "bob with a wrong password gets 401 again" register-wrong-password.xml bob not-bobs-password -key expires 300
run "minexp-carol asks 300: 423 Min-Expires 600, then 600" register-423.xml minexp-carol "$(password minexp-carol)" -key expires 300
run "minexp-frank asks 900, granted 900" register.xml minexp-frank "$(password minexp-frank)" -key expires 900 -set granted_expected 900
run "short-dave asks 3600, granted 20" register.xml short-dave "$(password short-dave)" -key expires 3600 -set granted_expected 20

echo "== bindings now"
kamcmd -s "unix:$ctl" ul.dump | grep -E 'AoR:|Expires:|Call-ID:'
echo "== REGISTERs seen per user"
kamcmd -s "unix:$ctl" htable.dump regcount | grep -E 'name:|value:'
if kamcmd -s "unix:$ctl" ul.dump | grep -q 'AoR: bob'; then
  echo "FAILED: bob has a binding" >&2
  exit 1
fi

for user in alice alice-long alice-brief minexp-carol minexp-frank short-dave; do
  run "un-register $user" unregister.xml "$user" "$(password "$user")"
done
if kamcmd -s "unix:$ctl" ul.dump | grep -q 'AoR:'; then
  echo "FAILED: bindings left after un-register" >&2
  kamcmd -s "unix:$ctl" ul.dump >&2
  exit 1
fi
echo "all registrar behaviours as expected"

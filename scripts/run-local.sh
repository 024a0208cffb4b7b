#!/usr/bin/env bash
# Runs trunkline on this machine against a real registrar, all on 127.0.0.1:
# starts Kamailio with the test registrar config (tests/kamailio/registrar.cfg) and
# two demo accounts, writes a file-mode config (CONTRACT.md §2) to a temp dir, and
# runs `cargo run --release --bin trunkline -- run --config <file>` in the foreground.
# Ctrl-C stops trunkline (it un-registers), then Kamailio.
#
#   bash scripts/run-local.sh
#   KAMAILIO_PORT=5090 SIP_PORT=5070 bash scripts/run-local.sh
set -euo pipefail
cd "$(dirname "$0")/.."

kamailio_port=${KAMAILIO_PORT:-5090}
sip_port=${SIP_PORT:-5070}
# Passwords are derived from this key (see the cfg); fixed so a rerun is familiar.
pw_key="trunkline-local"

bash scripts/install-peers.sh
export PATH="$PATH:/usr/sbin:/sbin"

work=$(mktemp -d -t trunkline-local-XXXXXX)
ctl="$work/ctl.sock"
kamailio_pid=""

cleanup() {
  if [ -n "$kamailio_pid" ] && kill -0 "$kamailio_pid" 2>/dev/null; then
    echo "Stopping Kamailio"
    kill "$kamailio_pid" 2>/dev/null || true
    wait "$kamailio_pid" 2>/dev/null || true
  fi
  echo "Kept for a look: $work (Kamailio log, config, status file)"
}
trap cleanup EXIT

echo "Starting Kamailio on udp 127.0.0.1:$kamailio_port (log: $work/kamailio.log)"
# In its own session, so the terminal's Ctrl-C reaches only trunkline: Kamailio must
# outlive it to answer the un-REGISTERs. (setsid execs in place: $! is Kamailio.)
setsid kamailio -f tests/kamailio/registrar.cfg -DD -E -w "$work" -Y "$work" -P "$work/kamailio.pid" \
  -l "udp:127.0.0.1:$kamailio_port" -A "CTL_SOCKET=\"unix:$ctl\"" -A "PW_KEY=\"$pw_key\"" \
  </dev/null >"$work/kamailio.log" 2>&1 &
kamailio_pid=$!

# Kamailio has no readiness signal; its control socket answering is the next best.
ready=""
for _ in $(seq 100); do
  if kamcmd -s "unix:$ctl" core.uptime >/dev/null 2>&1; then
    ready=yes
    break
  fi
  if ! kill -0 "$kamailio_pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "error: Kamailio did not start (port $kamailio_port taken? set KAMAILIO_PORT). Its log:" >&2
  cat "$work/kamailio.log" >&2
  exit 1
fi

password() { printf '%s' "$pw_key:$1" | md5sum | cut -c1-32; }

config="$work/trunkline.toml"
cat >"$config" <<TOML
# Written by scripts/run-local.sh: file mode, no backend.
[sip]
listen_address = "127.0.0.1"
port = $sip_port
public_address = "127.0.0.1"

# A normal account: granted what it asks.
[[providers]]
id = "local-alice"
name = "Local Kamailio (alice)"
host = "127.0.0.1"
port = $kamailio_port
transport = "udp"
username = "alice"
password = "$(password alice)"
expires = 300

# A short-* account: Kamailio grants 20 s, so refreshes show up every 10 s.
[[providers]]
id = "local-short-bob"
name = "Local Kamailio (short-bob)"
host = "127.0.0.1"
port = $kamailio_port
transport = "udp"
username = "short-bob"
password = "$(password short-bob)"
expires = 3600

[status]
file = "$work/trunkline-status.json"
TOML

cat <<INFO
Config:       $config
Status file:  $work/trunkline-status.json
Bindings:     kamcmd -s unix:$ctl ul.dump
Starting trunkline (Ctrl-C to stop)…
INFO

status=0
cargo run --release --bin trunkline -- run --config "$config" || status=$?
exit "$status"

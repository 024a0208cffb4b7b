#!/usr/bin/env bash
# Installs the real peers of the end-to-end tests when they are missing, from
# Debian's packages, and checks that Kamailio loads the test registrar config:
#   kamailio, kamcmd            package kamailio (+ kamailio-extra-modules, and
#                               kamailio-tls-modules for tests/transports.rs' TLS)
#   sipp                        package sip-tester
#   ip, nft                     packages iproute2, nftables (tests/nat.rs: network
#                               namespaces and a masquerading NAT between them)
#   dnsmasq                     package dnsmasq-base (the binary alone, no system
#                               service): the DNS server of the RFC 3263 tests
#                               (tests/support/dns.rs)
# Used by scripts/test.sh and scripts/run-local.sh. Needs root or sudo to install.
set -euo pipefail
cd "$(dirname "$0")/.."

# kamailio, kamcmd and dnsmasq live in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

have() { command -v "$1" >/dev/null 2>&1; }

packages=()
if ! have kamailio || ! have kamcmd; then
  packages+=(kamailio kamailio-extra-modules)
fi
# Debian puts Kamailio's tls module in a package of its own.
if ! ls /usr/lib/*/kamailio/modules/tls.so >/dev/null 2>&1; then
  packages+=(kamailio-tls-modules)
fi
if ! have sipp; then
  packages+=(sip-tester)
fi
if ! have ip; then
  packages+=(iproute2)
fi
if ! have nft; then
  packages+=(nftables)
fi
# Not the package `dnsmasq`: that one also installs and starts a system DNS service,
# which would take port 53; the tests run their own instance on a free port.
if ! have dnsmasq; then
  packages+=(dnsmasq-base)
fi

if [ ${#packages[@]} -gt 0 ]; then
  echo "Installing test peers: ${packages[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif have sudo; then
    sudo=(sudo)
  else
    echo "error: ${packages[*]} must be installed, and this user is neither root nor has sudo." >&2
    echo "       As root: apt-get update && apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
fi

for bin in kamailio kamcmd sipp ip nft dnsmasq; do
  if ! have "$bin"; then
    echo "error: $bin is still missing after installing its package." >&2
    exit 1
  fi
done

# Every module the registrar config loads must be present: a syntax and module check.
check_log=$(mktemp)
trap 'rm -f "$check_log"' EXIT
check_cfg() {
  if ! kamailio -c -f tests/kamailio/registrar.cfg -A 'CTL_SOCKET="unix:/nonexistent/ctl.sock"' \
      "$@" >"$check_log" 2>&1; then
    echo "error: Kamailio cannot load tests/kamailio/registrar.cfg $*:" >&2
    cat "$check_log" >&2
    exit 1
  fi
}
# Both ways it runs: the registrar alone, and with the proxy part (tests/nat.rs).
check_cfg
check_cfg -A WITH_PROXY
check_cfg -A WITH_TCP
# The TLS variant needs its module (the tls.cfg itself is the test's).
if ! ls /usr/lib/*/kamailio/modules/tls.so >/dev/null 2>&1; then
  echo "error: Kamailio's tls module is missing after installing kamailio-tls-modules." >&2
  exit 1
fi
echo "Test peers ready: $(kamailio -v | head -n 1 | sed 's/^version: //'), $(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -n 1), $(dnsmasq --version | head -n 1 | grep -o 'Dnsmasq version [0-9.]*')"

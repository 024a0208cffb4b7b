#!/usr/bin/env bash
# The one test command, run by CI (.ci/run) and by developers:
# installs the real peers the end-to-end tests need (Kamailio, SIPp, dnsmasq) when missing,
# then checks formatting, lints, and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Snapshots are checked, never rewritten, by the test run.
export INSTA_UPDATE=no

step "Test peers (scripts/install-peers.sh)"
bash scripts/install-peers.sh

step "cargo fmt --all --check"
if ! cargo fmt --all --check; then
  echo "error: code is not formatted; run: cargo fmt --all" >&2
  exit 1
fi

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "static: the trunkline binary does not link the simulator"; if cargo tree -p runtime-tokio -e normal --prefix none | grep -q "^simulator "; then echo "error: runtime-tokio depends on simulator; take the peer models from peer-models" >&2; exit 1; fi

if cargo nextest --version >/dev/null 2>&1; then
  step "cargo nextest run --workspace"
  cargo nextest run --workspace --no-fail-fast
else
  step "cargo test --workspace (cargo-nextest is not installed)"
  cargo test --workspace --no-fail-fast
fi

step "simulator: seed sweep of ${SIM_SEEDS:-1000} worlds with faults, release build"
SIM_SEEDS="${SIM_SEEDS:-1000}" cargo test --release -p simulator --test sim -- seed_sweep --exact

step "fuzz: known reproducers and seeds replay (cargo test in fuzz/)"
cargo test --manifest-path fuzz/Cargo.toml

step "fuzz: each target for ${FUZZ_SECONDS:-45} s (scripts/fuzz.sh)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-45}"


#!/usr/bin/env bash
# Builds every cargo-fuzz target of fuzz/ and runs each for a bounded time.
#
#   bash scripts/fuzz.sh [SECONDS]      # default: 60 s per target
#
# Environment:
#   FUZZ_TARGETS     space-separated targets to run (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER   address (default) or none (about 10x more executions per second,
#                    but an out-of-bounds access in unsafe code of a dependency would
#                    go unseen)
#   FUZZ_JOBS        libFuzzer worker processes per target (default 1)
#   CARGO_TARGET_DIR where to build (default fuzz/target, ignored by git)
#
# Seeds (fuzz/seeds/<target>) and known reproducers (fuzz/regressions/<target>) are
# copied into the working corpus fuzz/corpus/<target> first, so every run starts from
# them and grows the corpus across runs. Exits non-zero when any target finds a crash,
# a hang or a leak, and prints the reproducer's path and the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS per target, default 60]" >&2
  exit 2
fi
sanitizer="${FUZZ_SANITIZER:-address}"
jobs="${FUZZ_JOBS:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/fuzz/target}"

# cargo-fuzz passes nightly-only flags to rustc (-Zsanitizer=…, -Cpasses=sancov-module,
# …). There is no nightly toolchain on these machines and none can be downloaded;
# RUSTC_BOOTSTRAP=1 lets the stable compiler accept them. The sanitizer runtimes ship
# with the stable toolchain, so no -Zbuild-std is needed. See fuzz/README.md.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

echo "==> cargo fuzz build -s $sanitizer ($CARGO_TARGET_DIR)"
cargo fuzz build -s "$sanitizer"

failed=()
for target in $targets; do
  corpus="fuzz/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  for dir in "fuzz/seeds/$target" "fuzz/regressions/$target"; do
    if [ -d "$dir" ]; then
      find "$dir" -maxdepth 1 -type f ! -name '*.md' -exec cp -f {} "$corpus"/ \;
    fi
  done
  marker="$(mktemp)"
  echo
  echo "==> $target: ${secs}s, sanitizer $sanitizer, $(find "$corpus" -type f | wc -l) corpus inputs"
  # -timeout: one input running longer than 10 s is a hang (a loop that never ends).
  # -artifact_prefix: reproducers land in fuzz/artifacts/<target>/.
  args=(-max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/")
  if [ "$jobs" -gt 1 ]; then
    # Several processes (libFuzzer then logs each to fuzz-<n>.log in the cwd).
    args+=(-jobs="$jobs" -workers="$jobs")
  fi
  status=0
  cargo fuzz run -s "$sanitizer" "$target" "$corpus" -- "${args[@]}" || status=$?
  new="$(find "$artifacts" -type f -newer "$marker" | sort)"
  rm -f "$marker"
  if [ "$status" -ne 0 ] || [ -n "$new" ]; then
    failed+=("$target")
    echo "==> $target FAILED (exit $status)" >&2
    for file in $new; do
      echo "    reproducer: $file" >&2
      echo "    replay:     RUSTC_BOOTSTRAP=1 cargo fuzz run -s $sanitizer $target $file" >&2
      echo "    trace:      cargo run --manifest-path fuzz/Cargo.toml --example replay -- $target $file" >&2
      echo "    minimize:   RUSTC_BOOTSTRAP=1 cargo fuzz tmin -s $sanitizer $target $file" >&2
    done
  else
    echo "==> $target: no crash in ${secs}s"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo >&2
  echo "fuzzing found problems in: ${failed[*]}" >&2
  echo "keep each minimized reproducer under fuzz/regressions/<target>/ once fixed" >&2
  exit 1
fi
echo
echo "all targets ran ${secs}s without a crash:" $targets

//! The environment interface of seed runs (as madsim's `MADSIM_TEST_SEED`):
//! `SIM_SEED` runs one seed, `SIM_SEEDS` sweeps that many seeds from it, `SIM_TRACE=1`
//! keeps and prints the full trace of failures, `SIM_CHECK_DETERMINISM=1` runs every seed
//! twice and compares trace hashes.

use crate::report::Report;
use std::path::PathBuf;

/// Reads a `u64` variable.
pub fn var_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Whether a flag variable is set to something other than `0`/empty.
pub fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `SIM_SEED`, if set.
pub fn seed() -> Option<u64> {
    var_u64("SIM_SEED")
}

/// `SIM_SEEDS`, or `default`.
pub fn seeds(default: u64) -> u64 {
    var_u64("SIM_SEEDS").unwrap_or(default)
}

/// The line that replays a failing seed of the sweep test.
pub fn reproduce_line(seed: u64) -> String {
    format!("reproduce: SIM_SEED={seed} cargo test -p simulator --test sim -- seed_sweep --exact")
}

/// Where failure traces go: `<target>/sim-failures/`.
pub fn failure_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("sim-failures")
}

/// Writes a failing run's trace to `<target>/sim-failures/<seed>.trace`; returns the
/// path when it was written.
pub fn write_failure_trace(report: &Report) -> Option<PathBuf> {
    if report.trace.is_empty() {
        return None;
    }
    let dir = failure_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("{}.trace", report.seed));
    let mut text = report.failure_text(0);
    text.push_str("\ntrace:\n");
    text.push_str(&report.trace_text());
    std::fs::write(&path, text).ok()?;
    Some(path)
}

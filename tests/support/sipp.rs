//! SIPp scenarios of `tests/sipp/` run against a peer on loopback.

use crate::kamailio::{find_binary, tail};
use crate::net::{free_udp_port, LOOPBACK};
use crate::WAIT_LIMIT;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The folder of the SIPp scenarios.
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sipp")
}

/// Runs one call of `scenario` (a file name in `tests/sipp/`) as user `user` with
/// digest password `password` against `target`, from a free loopback port, plus
/// `extra` arguments (`-key`, `-set`, …). Returns SIPp's own log lines (`<log>` of
/// the scenario) on success, and everything SIPp said on failure.
pub async fn run_scenario(
    target: SocketAddr,
    scenario: &str,
    user: &str,
    password: &str,
    extra: &[&str],
) -> Result<String, String> {
    let sipp = find_binary("sipp", "SIPP_BIN");
    let dir = tempfile::Builder::new()
        .prefix("trunkline-sipp-")
        .tempdir()
        .expect("creating a temp dir for SIPp's logs");
    let run = tokio::process::Command::new(&sipp)
        .current_dir(dir.path())
        .arg(target.to_string())
        .arg("-sf")
        .arg(scenario_dir().join(scenario))
        .args(["-m", "1", "-nostdin", "-i"])
        .arg(LOOPBACK.to_string())
        .arg("-p")
        .arg(free_udp_port().to_string())
        .args(["-s", user, "-au", user, "-ap", password])
        // SIPp's own call timeout, well inside ours; no BYE on abort for REGISTER.
        .args([
            "-timeout",
            "30",
            "-timeout_error",
            "-default_behaviors",
            "none",
        ])
        .args(["-trace_logs", "-trace_err"])
        .args(extra)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT_LIMIT, run)
        .await
        .map_err(|_| format!("sipp {scenario} did not finish within {WAIT_LIMIT:?}"))?
        .map_err(|e| format!("cannot run {}: {e}", sipp.display()))?;
    let logs = read_files(dir.path(), "_logs.log");
    if output.status.success() {
        Ok(logs)
    } else {
        Err(format!(
            "sipp {scenario} as {user} failed ({}):\n{}\nerrors:\n{}\nlog:\n{logs}",
            output.status,
            tail(&String::from_utf8_lossy(&output.stdout), 40),
            read_files(dir.path(), "_errors.log"),
        ))
    }
}

/// The contents of the files in `dir` whose names end with `suffix`.
fn read_files(dir: &Path, suffix: &str) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return String::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

//! The `trunkline` binary as a child process, with its output captured.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// How long trunkline may take to exit after SIGTERM: its shutdown grace (5 s in
/// these tests) plus a wide margin. Exceeding it is a failure, not a measurement.
pub const EXIT_LIMIT: Duration = Duration::from_secs(30);

/// Variables of CONTRACT.md §2 and §6 (and logging ones) that must not leak from the
/// environment of the test run into the child.
const SCRUBBED_ENV: &[&str] = &[
    "BACKEND_URL",
    "API_KEY",
    "SIP_LISTEN_ADDRESS",
    "SIP_PORT",
    "SIP_PUBLIC_ADDRESS",
    "LIVEKIT_SIP_DOMAIN",
    "RTP_ENGINE",
    "ADMIN_LISTEN",
    "ADMIN_TOKEN",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "SYNC_INTERVAL",
    "SHUTDOWN_GRACE",
    "TRUNKLINE_CONFIG",
    "RUST_LOG",
    "ROUTE_LOOKUP_TIMEOUT",
    // Calls (CONTRACT.md §6).
    "SIP_ALLOWED_SOURCES",
    "SIP_REJECT_UNKNOWN",
    "LIVEKIT_SIP_USERNAME",
    "LIVEKIT_SIP_PASSWORD",
    "CALL_RING_TIMEOUT",
    "CALL_MAX_DURATION",
    "MAX_CALLS",
    "MAX_CALLS_PER_PROVIDER",
    "CALL_DRAIN",
];

type Buffer = Arc<Mutex<Vec<u8>>>;

/// A running trunkline process. Killed on drop; its output is printed when the test
/// is failing.
pub struct Trunkline {
    child: Child,
    /// Bumped whenever the process writes output, so a test can await a log line.
    grew: Arc<tokio::sync::watch::Sender<usize>>,
    /// The working directory it runs in (its state file lands there), when it owns it.
    _workdir: Option<tempfile::TempDir>,
    stdout: Buffer,
    stderr: Buffer,
    pumps: Vec<JoinHandle<()>>,
}

/// A trunkline process that has exited, with everything it wrote.
pub struct Exited {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Trunkline {
    /// The binary under test: `$TRUNKLINE_BIN` if set, else built once per test
    /// process with `cargo build -p runtime-tokio --bin trunkline` in the profile and
    /// target directory of the running test.
    pub fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("TRUNKLINE_BIN") {
            return PathBuf::from(path);
        }
        static BUILT: OnceLock<PathBuf> = OnceLock::new();
        BUILT.get_or_init(build_binary).clone()
    }

    /// Starts `trunkline <args…>` with `env` on top of a scrubbed environment, in a fresh
    /// temporary working directory (so its state file never lands in the source tree).
    pub async fn start(args: &[&str], env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("creating a working directory for trunkline");
        let path = dir.path().to_path_buf();
        let mut t = Self::start_in(&path, args, env).await;
        t._workdir = Some(dir);
        t
    }

    /// Like [`Trunkline::start`], in `workdir`: a restart in the same directory finds
    /// the state file of the previous run.
    pub async fn start_in(workdir: &Path, args: &[&str], env: &[(&str, String)]) -> Self {
        Self::spawn(workdir, None, args, env).await
    }

    /// Like [`Trunkline::start`], inside network namespace `netns` (`ip netns exec`;
    /// see `crate::netns`), e.g. behind a NAT. Its admin API, on loopback there, is
    /// out of the test's reach: such a test watches the log instead.
    pub async fn start_netns(netns: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("creating a working directory for trunkline");
        let path = dir.path().to_path_buf();
        let mut t = Self::spawn(&path, Some(netns), args, env).await;
        t._workdir = Some(dir);
        t
    }

    async fn spawn(
        workdir: &Path,
        netns: Option<&str>,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Self {
        let binary = tokio::task::spawn_blocking(Self::binary)
            .await
            .expect("building the trunkline binary panicked");
        let mut command = Command::from(crate::netns::command(&binary, netns));
        command
            .args(args)
            .current_dir(workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in SCRUBBED_ENV {
            command.env_remove(name);
        }
        command.env("NO_COLOR", "1").env("RUST_BACKTRACE", "1");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary.display()));
        let stdout = Buffer::default();
        let stderr = Buffer::default();
        let grew = Arc::new(tokio::sync::watch::channel(0usize).0);
        let pumps = vec![
            pump(child.stdout.take(), stdout.clone(), grew.clone()),
            pump(child.stderr.take(), stderr.clone(), grew.clone()),
        ];
        Trunkline {
            child,
            grew,
            _workdir: None,
            stdout,
            stderr,
            pumps,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child
            .id()
            .expect("trunkline's pid is known while it runs")
    }

    /// A field of the running process's `/proc/<pid>/status` (`THP_enabled`, `VmRSS`),
    /// `None` when this kernel does not report it.
    pub fn proc_status(&self, field: &str) -> Option<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading trunkline's /proc status");
        status.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name == field).then(|| value.trim().to_owned())
        })
    }

    /// What trunkline wrote to stdout so far.
    pub fn stdout(&self) -> String {
        text(&self.stdout)
    }

    /// What trunkline wrote to stderr so far.
    pub fn stderr(&self) -> String {
        text(&self.stderr)
    }

    /// Runs `future` while watching the process: if trunkline exits first, the test
    /// fails at once with its exit status and output instead of waiting for a
    /// deadline.
    pub async fn run_until<F: Future>(&mut self, future: F) -> F::Output {
        tokio::select! {
            output = future => output,
            // Drop prints the output while this panic unwinds.
            status = self.child.wait() => panic!(
                "trunkline exited early ({}) while the test waited for it; its output follows",
                status.map_or_else(|e| format!("wait failed: {e}"), |s| s.to_string()),
            ),
        }
    }

    /// Waits until the JSON log lines written so far satisfy `check` (re-checked each
    /// time the process writes), failing after 120 s with the output.
    pub async fn wait_for_log(&mut self, what: &str, check: impl Fn(&[serde_json::Value]) -> bool) {
        let mut grew = self.grew.subscribe();
        let stdout = self.stdout.clone();
        let found = async move {
            loop {
                let lines: Vec<serde_json::Value> = text(&stdout)
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                if check(&lines) {
                    return;
                }
                if grew.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let limit = Duration::from_secs(120);
        if tokio::time::timeout(limit, self.run_until(found))
            .await
            .is_err()
        {
            panic!("waited {limit:?} for {what} in trunkline's log; its output follows");
        }
    }

    /// Sends SIGTERM and waits, up to [`EXIT_LIMIT`], for the process to exit.
    pub async fn terminate(self) -> Exited {
        self.sigterm();
        self.wait_exit().await
    }

    /// Sends SIGTERM without waiting: the test goes on with calls while trunkline
    /// shuts down, then collects the exit with [`Trunkline::wait_exit`].
    pub fn sigterm(&self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let pid = i32::try_from(self.pid()).expect("pid fits in i32");
        kill(Pid::from_raw(pid), Signal::SIGTERM).expect("sending SIGTERM to trunkline");
    }

    /// Waits, up to [`EXIT_LIMIT`], for the process to exit by itself (e.g. for
    /// `check-config`), and collects its output.
    pub async fn wait_exit(mut self) -> Exited {
        let status = match tokio::time::timeout(EXIT_LIMIT, self.child.wait()).await {
            Ok(status) => status.expect("waiting for trunkline to exit"),
            Err(_) => {
                let _ = self.child.kill().await;
                // Drop prints the output while this panic unwinds.
                panic!("trunkline did not exit within {EXIT_LIMIT:?}; its output follows");
            }
        };
        // The pipes close when the process exits; the bound only guards against a
        // grandchild that inherited them.
        for pump in std::mem::take(&mut self.pumps) {
            let _ = tokio::time::timeout(EXIT_LIMIT, pump).await;
        }
        Exited {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Trunkline {
    fn drop(&mut self) {
        // kill_on_drop ends the process; the output is worth more than the process.
        if std::thread::panicking() {
            eprintln!("{}", output_text(&self.stdout(), &self.stderr()));
        }
    }
}

impl Exited {
    /// The exit code, `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout and stderr, labelled, for failure messages.
    pub fn output(&self) -> String {
        output_text(&self.stdout, &self.stderr)
    }

    /// The stdout and stderr lines that parse as JSON objects (LOG_FORMAT=json).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(serde_json::Value::is_object)
            .collect()
    }

    /// Fails the test when any of `secrets` (name, value) appears in the output,
    /// saying where without printing the secret itself.
    pub fn assert_no_secret(&self, secrets: &[(&str, &str)]) {
        let mut found = Vec::new();
        for (stream, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            for (number, line) in text.lines().enumerate() {
                for (name, secret) in secrets {
                    assert!(!secret.is_empty(), "secret {name} is empty");
                    if line.contains(secret) {
                        found.push(format!(
                            "{name} in {stream} line {}: {}",
                            number + 1,
                            line.replace(secret, "<SECRET>")
                        ));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "secrets appear in trunkline's output:\n{}",
            found.join("\n")
        );
    }
}

impl Drop for Exited {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.output());
        }
    }
}

/// Copies a child's pipe into a buffer until EOF.
fn pump<R>(
    pipe: Option<R>,
    buffer: Buffer,
    grew: Arc<tokio::sync::watch::Sender<usize>>,
) -> JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let Some(mut pipe) = pipe else { return };
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk).await {
            let Some(read) = chunk.get(..n).filter(|r| !r.is_empty()) else {
                break;
            };
            lock(&buffer).extend_from_slice(read);
            grew.send_modify(|n| *n += 1);
        }
    })
}

fn lock(buffer: &Buffer) -> std::sync::MutexGuard<'_, Vec<u8>> {
    buffer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn text(buffer: &Buffer) -> String {
    String::from_utf8_lossy(&lock(buffer)).into_owned()
}

fn output_text(stdout: &str, stderr: &str) -> String {
    format!(
        "---- trunkline stdout ----\n{stdout}\n---- trunkline stderr ----\n{stderr}\n---- end of trunkline output ----"
    )
}

/// Builds the binary with cargo into the target directory and profile that the
/// running test binary came from (`<target>/<profile>/deps/<test>`).
fn build_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("locating the running test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory has a parent target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(name) => name.to_owned(),
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace root");
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let mut command = std::process::Command::new(&cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "runtime-tokio",
            "--bin",
            "trunkline",
            "--profile",
        ])
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null());
    // Cargo describes the running test crate in the environment (CARGO_PKG_NAME, …);
    // build scripts that track such variables (ring's) would see them change between
    // this build and a plain `cargo build` or the next test build, and rebuild the TLS
    // stack each time.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(describes_the_running_crate) {
            command.env_remove(name);
        }
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {} build: {e}", cargo.display()));
    assert!(
        output.status.success(),
        "`cargo build -p runtime-tokio --bin trunkline --profile {profile}` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let binary = profile_dir.join("trunkline");
    assert!(
        binary.is_file(),
        "cargo built trunkline but {} does not exist",
        binary.display()
    );
    binary
}

/// Whether `name` is one of the variables cargo sets for a crate it runs (the test
/// binary), not one that configures cargo itself (CARGO_HOME, CARGO_BUILD_*, …).
fn describes_the_running_crate(name: &str) -> bool {
    const SET_FOR_A_CRATE: [&str; 6] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    SET_FOR_A_CRATE.contains(&name)
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_")
}

/// The environment every end-to-end test starts trunkline with: SIP on loopback at
/// `sip_port` (and advertised as loopback), the admin API on any free loopback port,
/// JSON logs at debug. Tests add what they are about.
pub fn loopback_env(sip_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
        ("SIP_PORT", sip_port.to_string()),
        ("SIP_PUBLIC_ADDRESS", "127.0.0.1".to_owned()),
        ("ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("LOG_LEVEL", "debug".to_owned()),
    ]
}

//! Network namespaces a test creates for itself (`ip netns`), and running a peer
//! inside one (`ip netns exec NAME program …`).
//!
//! The machine's own (root) namespace is only ever used on loopback: every other
//! address a test needs lives in namespaces it creates, names after its own pid (so
//! parallel runs never collide) and deletes again on drop, failing or not. Creating
//! them needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); where that is missing the test
//! fails saying so, it never skips.

use crate::kamailio::find_binary;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How to get `ip` and `nft` when they are missing; part of every "not installed" panic.
pub const NETNS_HINT: &str = "run scripts/install-peers.sh, which installs them, or \
     `apt-get install -y iproute2 nftables`; the test needs root for `ip netns add`";

/// The `ip` executable (iproute2).
pub fn ip_binary() -> PathBuf {
    find_binary("ip", "IP_BIN")
}

/// `program` as a command that runs in network namespace `netns` when one is given
/// (`ip netns exec`, which execs the program in place: the child's pid is the
/// program's own, so signals and `/proc/<pid>` reach it), else `program` itself.
pub fn command(program: &Path, netns: Option<&str>) -> Command {
    match netns {
        None => Command::new(program),
        Some(name) => {
            let mut command = Command::new(ip_binary());
            command.args(["netns", "exec", name]).arg(program);
            command
        }
    }
}

/// A network namespace of this test process, deleted on drop.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates `tl-<pid>-<n>-<role>` with its loopback up (`n` counts the namespaces
    /// of this process, for tests run as threads of one process). Panics, naming what
    /// is missing, when `ip` is not installed or namespaces cannot be created here.
    pub fn create(role: &str) -> Self {
        static CREATED: AtomicUsize = AtomicUsize::new(0);
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let name = format!("tl-{}-{n}-{role}", std::process::id());
        // A namespace left by an earlier process with our pid (killed before its
        // Drop ran) would make `add` fail; it is ours by name, so take it over.
        if Path::new("/run/netns").join(&name).exists() {
            let _ = run(&ip_binary(), &["netns", "del", &name]);
        }
        if let Err(why) = run(&ip_binary(), &["netns", "add", &name]) {
            panic!(
                "cannot create network namespace {name}: {why}\nThis test puts trunkline behind a \
                 NAT between network namespaces of its own; it needs root (CAP_SYS_ADMIN, \
                 CAP_NET_ADMIN) and a kernel with network namespaces. {NETNS_HINT}"
            );
        }
        let namespace = Namespace { name };
        namespace.ip(&["link", "set", "lo", "up"]);
        namespace
    }

    /// Its name, for `ip netns exec` and `ip link … netns`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <name> <args…>`; panics with ip's message when it fails.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        if let Err(why) = run(&ip_binary(), &all) {
            panic!("ip {} failed: {why}", all.join(" "));
        }
    }

    /// Runs `program args…` inside the namespace to the end and returns its stdout;
    /// `Err` with its stderr when it fails.
    pub fn exec(&self, program: &Path, args: &[&str]) -> Result<String, String> {
        let mut command = command(program, Some(&self.name));
        output(command.args(args))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // The processes started in it were dropped (killed) before, as they are
        // declared first; a straggler keeps the namespace alive until it exits, but
        // its name is gone either way, and with it the veth ends inside.
        if let Err(why) = run(&ip_binary(), &["netns", "del", &self.name]) {
            eprintln!("could not delete network namespace {}: {why}", self.name);
        }
    }
}

/// Runs `program args…` to the end; `Err` with its status and stderr when it fails.
fn run(program: &Path, args: &[&str]) -> Result<String, String> {
    output(Command::new(program).args(args))
}

fn output(command: &mut Command) -> Result<String, String> {
    let described = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", described))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` {}: {}",
            described,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

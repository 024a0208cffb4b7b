//! Kamailio as a real registrar on loopback, run from `tests/kamailio/registrar.cfg`.
//!
//! The cfg is used as it is; what changes per run (UDP port, control socket, the key
//! that derives passwords) is passed on the command line. See the cfg's header for
//! the behaviour of `minexp-*` and `short-*` accounts.

use crate::net::{free_udp_port, LOOPBACK};
use crate::WAIT_LIMIT;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How to get the peers when they are missing; part of every "not installed" panic.
pub const INSTALL_HINT: &str = "run scripts/test.sh, which installs the test peers, or \
     `apt-get update && apt-get install -y kamailio kamailio-extra-modules sip-tester \
     dnsmasq-base`";

/// How long Kamailio may take to answer on its control socket after start. Polled,
/// because Kamailio signals readiness in no way a child process can await.
const START_LIMIT: Duration = Duration::from_secs(30);

/// How long Kamailio's processes may take to stop after SIGSTOP, or go on after
/// SIGCONT: the kernel acts at once; this only turns a hang into a failure.
const SIGNAL_LIMIT: Duration = Duration::from_secs(10);

/// Ports tried before giving up: a free port can be taken between picking and binding.
const START_ATTEMPTS: usize = 3;

/// A running Kamailio registrar on `127.0.0.1:<port>` (UDP), or where
/// [`Options::listen`] says. Stopped on drop.
pub struct Kamailio {
    child: Child,
    addr: SocketAddr,
    ctl: PathBuf,
    log: PathBuf,
    pw_key: String,
    kamcmd: PathBuf,
    kamailio: PathBuf,
    options: Options,
    /// Between [`Kamailio::pause`] and [`Kamailio::resume`]: its control socket
    /// cannot answer, so kamcmd calls fail at once instead of hanging.
    paused: bool,
    // Declared last so it is removed after the process is gone.
    dir: tempfile::TempDir,
}

/// What a test may change about the registrar; everything else is the cfg's.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Seconds a digest nonce stays valid (the cfg's default is 300). A short one
    /// makes refreshes meet `stale=true`.
    pub nonce_expire_secs: Option<u32>,
    /// Listen on TCP too, on the same address and port as UDP.
    pub tcp: bool,
    /// Listen on TLS too, on the same address and port as UDP (so not with `tcp`),
    /// presenting this certificate chain and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The network namespace to run in (`ip netns exec`; see `crate::netns`), for a
    /// registrar on the far side of a NAT. The control socket is a file, so `kamcmd`
    /// reaches it from the test's own namespace.
    pub netns: Option<String>,
    /// The UDP address to listen on instead of a free port on 127.0.0.1: an address
    /// of [`Options::netns`], where every port is free.
    pub listen: Option<SocketAddr>,
    /// Also proxy INVITEs to registered users (the cfg's `WITH_PROXY`): the provider
    /// that calls a registered trunk.
    pub proxy: bool,
    /// The key its passwords are derived from (see [`Kamailio::password`]): another
    /// instance's [`Kamailio::password_key`] makes this one accept the same accounts,
    /// as the second registrar of one provider does. `None`: a key of its own.
    pub password_key: Option<String>,
}

/// One contact binding as `kamcmd ul.dump` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Address of record: the user part only (the cfg sets usrloc `use_domain` to 0).
    pub aor: String,
    /// The bound Contact URI.
    pub contact: String,
    /// Seconds until the binding expires; `None` when Kamailio printed a word
    /// instead (`permanent`, `expired`, `deleted`), kept in `expires_text`.
    pub expires: Option<u64>,
    /// The Expires field exactly as printed.
    pub expires_text: String,
    /// Call-ID of the REGISTER that last updated the binding.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u64,
    /// User-Agent of that REGISTER (`n/a` when it had none).
    pub user_agent: String,
}

impl Kamailio {
    /// The registrar config used by the harness and by `scripts/run-local.sh`.
    pub fn cfg_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("kamailio/registrar.cfg")
    }

    /// Starts Kamailio on a free loopback UDP port and returns once its control socket
    /// answers. Panics, with how to install it, when Kamailio is not installed.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// [`Kamailio::start`] with `options`.
    pub async fn start_with(options: Options) -> Self {
        let kamailio = find_binary("kamailio", "KAMAILIO_BIN");
        let kamcmd = find_binary("kamcmd", "KAMCMD_BIN");
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&kamailio, &kamcmd, &options).await {
                Ok(started) => return started,
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "Kamailio did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    async fn try_start(kamailio: &Path, kamcmd: &Path, options: &Options) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("trunkline-kamailio-")
            .tempdir()
            .expect("creating a temp dir for Kamailio");
        let addr = options
            .listen
            .unwrap_or_else(|| SocketAddr::from((LOOPBACK, free_udp_port())));
        let ctl = dir.path().join("ctl.sock");
        let log = dir.path().join("kamailio.log");
        // Unique per run, so a password found in trunkline's output can only have
        // come from this run's configuration.
        let pw_key = options
            .password_key
            .clone()
            .unwrap_or_else(|| format!("trunkline-test-{}", crate::random_hex(8)));
        let child = spawn(kamailio, options, dir.path(), addr, &ctl, &log, &pw_key);
        let mut started = Kamailio {
            child,
            addr,
            ctl,
            log,
            pw_key,
            kamcmd: kamcmd.to_path_buf(),
            kamailio: kamailio.to_path_buf(),
            options: options.clone(),
            paused: false,
            dir,
        };
        started.wait_ready().await?;
        Ok(started)
    }

    /// Waits until the control socket answers (or the process exits, or the limit).
    async fn wait_ready(&mut self) -> Result<(), String> {
        let addr = self.addr;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("checking whether Kamailio is still running")
            {
                return Err(format!(
                    "Kamailio exited during start ({status}) on udp {addr}; its log:\n{}",
                    self.log_text()
                ));
            }
            if self.try_kamcmd(&["core.uptime"]).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Kamailio did not answer `kamcmd core.uptime` within {START_LIMIT:?}; its log:\n{}",
                    self.log_text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops Kamailio (its bindings, kept in memory, are lost, and every TCP connection
    /// to it closes) and starts it again on the same port, as a registrar's restart.
    /// A paused Kamailio is stopped all the same.
    pub async fn restart(&mut self) {
        stop_group(&mut self.child, "Kamailio");
        self.paused = false;
        self.child = spawn(
            &self.kamailio,
            &self.options,
            self.dir.path(),
            self.addr,
            &self.ctl,
            &self.log,
            &self.pw_key,
        );
        if let Err(e) = self.wait_ready().await {
            panic!("Kamailio did not come back after a restart: {e}");
        }
    }

    /// Makes the registrar stop answering while keeping its memory: SIGSTOP to every
    /// process of its group, returning once all of them are stopped (polled in
    /// `/proc`, bounded), so nothing sent after this returns is answered before
    /// [`Kamailio::resume`]. Unlike [`Kamailio::restart`], its bindings, nonces and
    /// transactions survive, and its sockets stay open: the kernel still accepts
    /// datagrams (they queue in the socket, see [`Kamailio::udp_rx_queue`]) and TCP
    /// connections, so a client sees silence, not an ICMP error or a reset.
    ///
    /// While paused, kamcmd-based calls ([`Kamailio::ul_dump`], …) panic at once
    /// rather than wait for a control socket that cannot answer.
    pub async fn pause(&mut self) {
        use nix::sys::signal::Signal;
        self.signal_group(Signal::SIGSTOP);
        self.paused = true;
        self.wait_group(|state| state == 'T', "stopped after SIGSTOP")
            .await;
    }

    /// Lets a [`Kamailio::pause`]d registrar go on (SIGCONT to its group), returning
    /// once none of its processes is stopped. What was queued meanwhile is processed
    /// then, as if it had just arrived: UDP datagrams that fit the socket's receive
    /// buffer (Kamailio raises it to 512 KB of kernel memory: a few hundred
    /// REGISTERs; the kernel drops the rest), and what TCP peers sent. Kamailio's timers run on the
    /// wall clock, so whatever fell due during the pause happens at once: bindings
    /// that expired meanwhile are removed, transaction timers fire.
    pub async fn resume(&mut self) {
        use nix::sys::signal::Signal;
        self.signal_group(Signal::SIGCONT);
        self.paused = false;
        self.wait_group(|state| state != 'T', "running after SIGCONT")
            .await;
    }

    /// Whether Kamailio is between [`Kamailio::pause`] and [`Kamailio::resume`].
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Sends `signal` to Kamailio's process group (the main process and its workers).
    fn signal_group(&self, signal: nix::sys::signal::Signal) {
        let group = self.group();
        nix::sys::signal::killpg(group, signal)
            .unwrap_or_else(|e| panic!("sending {signal} to Kamailio's group {group}: {e}"));
    }

    fn group(&self) -> nix::unistd::Pid {
        let raw = i32::try_from(self.child.id()).expect("Kamailio's pid fits an i32");
        // process_group(0) at spawn: the group id is the main process's pid.
        nix::unistd::Pid::from_raw(raw)
    }

    /// Waits (bounded poll: a signal's effect on other processes cannot be awaited)
    /// until every process of Kamailio's group is in a `/proc/<pid>/stat` state
    /// satisfying `ok`.
    async fn wait_group(&self, ok: impl Fn(char) -> bool, what: &str) {
        let group = self.group().as_raw();
        let deadline = Instant::now() + SIGNAL_LIMIT;
        loop {
            let states = group_states(group);
            if !states.is_empty() && states.iter().all(|&(_, state)| ok(state)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Kamailio's processes were not all {what} within {SIGNAL_LIMIT:?}: \
                 (pid, state) {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Kernel memory held by datagrams waiting unread in Kamailio's UDP socket (the
    /// `rx_queue` of `/proc/<pid>/net/udp`, which counts buffer sizes, not payload
    /// bytes): 0 when nothing waits. While Kamailio is paused it grows with each
    /// datagram sent to it, which shows that a request reached the registrar and was
    /// not answered (rather than never sent). Panics when no socket is bound to
    /// [`Kamailio::addr`].
    pub fn udp_rx_queue(&self) -> u64 {
        // The process's own view, which is its network namespace's.
        let table = if self.addr.is_ipv4() { "udp" } else { "udp6" };
        let path = format!("/proc/{}/net/{table}", self.child.id());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        udp_rx_queue(&text, self.addr)
            .unwrap_or_else(|| panic!("no UDP socket bound to {} in {path}:\n{text}", self.addr))
    }

    /// The UDP port Kamailio listens on (on 127.0.0.1 unless [`Options::listen`]).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Kamailio's SIP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The digest realm of every account.
    pub fn realm(&self) -> &'static str {
        "trunkline.test"
    }

    /// The password Kamailio accepts for `user`: hex MD5 of `"<key>:<user>"`, with a
    /// key unique to this run (see route[AUTH] in the cfg).
    pub fn password(&self, user: &str) -> String {
        crate::hex(&Md5::digest(format!("{}:{user}", self.pw_key)))
    }

    /// The key of [`Kamailio::password`], for [`Options::password_key`].
    pub fn password_key(&self) -> &str {
        &self.pw_key
    }

    /// Changes the password Kamailio accepts for `user` from now on (a rotation at the
    /// provider; see `pwover` in the cfg).
    pub async fn set_password(&self, user: &str, password: &str) {
        self.kamcmd(&["htable.sets", "pwover", user, password])
            .await;
    }

    /// The control socket, for running `kamcmd -s <socket> …` by hand while debugging.
    pub fn ctl_socket(&self) -> &Path {
        &self.ctl
    }

    /// The directory holding the control socket, pid file and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything Kamailio has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(cannot read log: {e})"))
    }

    /// Runs `kamcmd -s <socket> <args…>` and returns its stdout; panics with stderr
    /// when kamcmd fails.
    pub async fn kamcmd(&self, args: &[&str]) -> String {
        self.try_kamcmd(args)
            .await
            .unwrap_or_else(|e| panic!("kamcmd {}: {e}", args.join(" ")))
    }

    async fn try_kamcmd(&self, args: &[&str]) -> Result<String, String> {
        if self.paused {
            return Err(format!(
                "Kamailio is paused, its control socket cannot answer `kamcmd {}`: \
                 resume() it first",
                args.join(" ")
            ));
        }
        let run = tokio::process::Command::new(&self.kamcmd)
            .arg("-s")
            .arg(format!("unix:{}", self.ctl.display()))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(WAIT_LIMIT, run)
            .await
            .map_err(|_| format!("no answer within {WAIT_LIMIT:?}"))?
            .map_err(|e| format!("cannot run {}: {e}", self.kamcmd.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // kamcmd exits 0 when the RPC itself fails and prints "error: <code> - …".
        if out.status.success() && !stdout.starts_with("error:") {
            Ok(stdout.into_owned())
        } else {
            Err(format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// All bindings of the location table (`kamcmd ul.dump`).
    ///
    /// kamcmd reads replies of about 200 bindings at most ("reply too big"); for
    /// more, use [`Kamailio::binding_count`] and [`Kamailio::bindings_of`].
    pub async fn ul_dump(&self) -> Vec<Binding> {
        match self.try_kamcmd(&["ul.dump"]).await {
            Ok(text) => parse_ul_dump(&text),
            Err(e) if self.paused => panic!("kamcmd ul.dump: {e}"),
            Err(e) => panic!(
                "kamcmd ul.dump: {e}\n(above about 200 bindings kamcmd cannot read the dump: \
                 use binding_count() and bindings_of() instead)"
            ),
        }
    }

    /// The bindings of one address of record (`kamcmd ul.lookup location <aor>`),
    /// usable at any table size.
    pub async fn bindings_of(&self, aor: &str) -> Vec<Binding> {
        match self.try_kamcmd(&["ul.lookup", "location", aor]).await {
            Ok(text) => parse_ul_dump(&text),
            // Never registered, or its last binding just removed.
            Err(e) if e.contains("AOR not found") || e.contains("AOR has no contacts") => {
                Vec::new()
            }
            Err(e) => panic!("kamcmd ul.lookup location {aor}: {e}"),
        }
    }

    /// How many contact bindings the location table holds, from usrloc's
    /// statistics; usable at any table size.
    pub async fn binding_count(&self) -> u64 {
        let text = self
            .kamcmd(&["stats.get_statistics", "location_contacts"])
            .await;
        text.lines()
            .find_map(|line| line.trim().strip_prefix("usrloc:location_contacts = "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected usrloc statistics output: {text:?}"))
    }

    /// How many REGISTER requests reached the registrar's script, per To user, since
    /// start (the cfg's `regcount` htable). A user that never sent one is absent.
    /// Like [`Kamailio::ul_dump`], limited by kamcmd to a few hundred users.
    pub async fn register_counts(&self) -> BTreeMap<String, u64> {
        parse_htable_dump(&self.kamcmd(&["htable.dump", "regcount"]).await)
    }

    /// How many REGISTER requests for To user `user` reached the registrar's script;
    /// usable at any number of users.
    pub async fn register_count(&self, user: &str) -> u64 {
        match self.try_kamcmd(&["htable.get", "regcount", user]).await {
            Ok(text) => parse_htable_dump(&text).get(user).copied().unwrap_or(0),
            Err(e) if e.contains("doesn't exist") => 0,
            Err(e) => panic!("kamcmd htable.get regcount {user}: {e}"),
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        stop_group(&mut self.child, "Kamailio");
        if std::thread::panicking() {
            eprintln!(
                "---- Kamailio log (udp {}) ----\n{}---- end of Kamailio log ----",
                self.addr,
                tail(&self.log_text(), 200)
            );
        }
    }
}

/// Starts Kamailio on `addr` with its files in `dir`, its control socket `ctl`, its log
/// appended to `log`, passwords derived from `pw_key`.
fn spawn(
    kamailio: &Path,
    options: &Options,
    dir: &Path,
    addr: SocketAddr,
    ctl: &Path,
    log: &Path,
    pw_key: &str,
) -> Child {
    let log_file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("opening Kamailio's log file");
    let log_err = log_file
        .try_clone()
        .expect("duplicating Kamailio's log file handle");
    let mut command = crate::netns::command(kamailio, options.netns.as_deref());
    if let Some(secs) = options.nonce_expire_secs {
        command.arg("-A").arg(format!("NONCE_EXPIRE={secs}"));
    }
    if options.proxy {
        command.arg("-A").arg("WITH_PROXY");
    }
    if options.tcp {
        command
            .args(["-A", "WITH_TCP", "-l"])
            .arg(format!("tcp:{addr}"));
    }
    if let Some((cert, key)) = &options.tls {
        let tls_cfg = dir.join("tls.cfg");
        // The registrar checks no client certificate: trunkline offers none here.
        let text = format!(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
             require_certificate = no\nprivate_key = {}\ncertificate = {}\n\n\
             [client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
             require_certificate = no\n",
            key.display(),
            cert.display()
        );
        std::fs::write(&tls_cfg, text).expect("writing Kamailio's tls.cfg");
        command
            .args(["-A", "WITH_TLS", "-A"])
            .arg(format!("TLS_CFG=\"{}\"", tls_cfg.display()))
            .arg("-l")
            .arg(format!("tls:{addr}"));
    }
    command
        .arg("-f")
        .arg(Kamailio::cfg_path())
        // Foreground, no daemon; log to stderr, which goes to the log file.
        .args(["-DD", "-E"])
        .arg("-w")
        .arg(dir)
        .arg("-Y")
        .arg(dir)
        .arg("-P")
        .arg(dir.join("kamailio.pid"))
        .arg("-l")
        .arg(format!("udp:{addr}"))
        .arg("-A")
        .arg(format!("CTL_SOCKET=\"unix:{}\"", ctl.display()))
        .arg("-A")
        .arg(format!("PW_KEY=\"{pw_key}\""))
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        // Own process group: Drop signals Kamailio's worker processes too.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", kamailio.display()))
}

/// Sends SIGTERM to the child's process group, waits a bounded time for the child to
/// exit, then SIGKILLs the group. Used from Drop, where nothing can be awaited. A
/// stopped (paused) group is continued right after the SIGTERM, so that it acts on
/// it at once instead of first handling what queued while it was stopped.
pub(crate) fn stop_group(child: &mut Child, what: &str) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let Ok(raw) = i32::try_from(child.id()) else {
        let _ = child.kill();
        return;
    };
    let group = Pid::from_raw(raw);
    let _ = killpg(group, Signal::SIGTERM);
    // A stopped process keeps a SIGTERM pending until continued; harmless otherwise.
    let _ = killpg(group, Signal::SIGCONT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            // The main process stops its workers before it exits; make sure.
            let _ = killpg(group, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{what} did not exit within 10 s of SIGTERM; killing it");
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

/// (pid, state) of every process whose process group is `group`, from
/// `/proc/<pid>/stat`; a process that exits while being read is left out.
fn group_states(group: i32) -> Vec<(i32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (state, pgrp) = parse_stat(&stat)?;
            (pgrp == group).then_some((pid, state))
        })
        .collect()
}

/// State and process group of a `/proc/<pid>/stat` line: `pid (comm) state ppid
/// pgrp …`, where comm may hold spaces and parentheses, so fields count from the last
/// `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// The `rx_queue` of the socket bound to `addr` in `text` (`/proc/net/udp` or
/// `udp6` format), or `None` when none is.
fn udp_rx_queue(text: &str, addr: SocketAddr) -> Option<u64> {
    // The kernel prints each 32-bit word of the address as the hex of its in-memory
    // (network order) value, then the port.
    let octets = match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    let mut wanted = String::new();
    for word in octets.chunks_exact(4) {
        let word: [u8; 4] = word.try_into().ok()?;
        wanted.push_str(&format!("{:08X}", u32::from_le_bytes(word)));
    }
    wanted.push_str(&format!(":{:04X}", addr.port()));
    text.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.nth(1) != Some(wanted.as_str()) {
            return None;
        }
        // rem_address, st, then tx_queue:rx_queue.
        let queues = fields.nth(2)?;
        let (_, rx) = queues.split_once(':')?;
        u64::from_str_radix(rx, 16).ok()
    })
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let skip = all.len().saturating_sub(lines);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("(… {skip} earlier lines)\n"));
    }
    for line in all.iter().skip(skip) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Finds a peer's executable: `$env_var` if set, else `PATH`, else the sbin
/// directories a non-root PATH often lacks. Panics with how to install it.
pub fn find_binary(name: &str, env_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (searched PATH and /usr/sbin; or set {env_var}); \
                 these tests need it and do not skip: {INSTALL_HINT}"
            )
        })
}

/// Parses `kamcmd ul.dump` output: one [`Binding`] per `Contact: { … }` block, under
/// the `AoR:` line that precedes it.
pub fn parse_ul_dump(text: &str) -> Vec<Binding> {
    let mut bindings = Vec::new();
    let mut aor = String::new();
    let mut current: Option<Binding> = None;
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("AoR: ") {
            aor = value.to_owned();
        } else if line == "Contact: {" {
            current = Some(Binding {
                aor: aor.clone(),
                contact: String::new(),
                expires: None,
                expires_text: String::new(),
                call_id: String::new(),
                cseq: 0,
                user_agent: String::new(),
            });
        } else if let Some(binding) = current.as_mut() {
            // A contact block has no nested blocks: its first `}` closes it.
            if line == "}" {
                bindings.extend(current.take());
            } else if let Some((key, value)) = line.split_once(": ") {
                match key {
                    "Address" => binding.contact = value.to_owned(),
                    "Expires" => {
                        binding.expires = value.parse().ok();
                        binding.expires_text = value.to_owned();
                    }
                    "Call-ID" => binding.call_id = value.to_owned(),
                    "CSeq" => {
                        binding.cseq = value.parse().unwrap_or_else(|e| {
                            panic!("ul.dump CSeq {value:?} is not a number ({e}):\n{text}")
                        })
                    }
                    "User-Agent" => binding.user_agent = value.to_owned(),
                    _ => {}
                }
            }
        }
    }
    bindings
}

/// Parses `kamcmd htable.dump <table>` output of integer items into name → value.
pub fn parse_htable_dump(text: &str) -> BTreeMap<String, u64> {
    let mut items = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("name: ") {
            name = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("value: ") {
            if let Some(key) = name.take() {
                let count = value.parse().unwrap_or_else(|e| {
                    panic!("htable item {key:?} has a non-integer value {value:?} ({e})")
                });
                items.insert(key, count);
            }
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ul_dump() {
        let text = "{\n\tDomains: {\n\t\tDomain: {\n\t\t\tDomain: location\n\t\t\tAoRs: {\n\
            \t\t\t\tInfo: {\n\t\t\t\t\tAoR: alice\n\t\t\t\t\tHashID: 1\n\t\t\t\t\tContacts: {\n\
            \t\t\t\t\t\tContact: {\n\t\t\t\t\t\t\tAddress: sip:alice@127.0.0.1:5070\n\
            \t\t\t\t\t\t\tExpires: 300\n\t\t\t\t\t\t\tQ: -1\n\
            \t\t\t\t\t\t\tCall-ID: abc@127.0.0.1\n\t\t\t\t\t\t\tCSeq: 2\n\
            \t\t\t\t\t\t\tUser-Agent: n/a\n\t\t\t\t\t\t}\n\
            \t\t\t\t\t\tContact: {\n\t\t\t\t\t\t\tAddress: sip:alice@127.0.0.1:5071\n\
            \t\t\t\t\t\t\tExpires: expired\n\t\t\t\t\t\t\tCall-ID: def\n\
            \t\t\t\t\t\t\tCSeq: 7\n\t\t\t\t\t\t}\n\t\t\t\t\t}\n\t\t\t\t}\n\t\t\t}\n\
            \t\t\tStats: {\n\t\t\t\tRecords: 1\n\t\t\t}\n\t\t}\n\t}\n}\n";
        let got = parse_ul_dump(text);
        assert_eq!(got.len(), 2, "{got:?}");
        let first = got.first().unwrap();
        assert_eq!(first.aor, "alice");
        assert_eq!(first.contact, "sip:alice@127.0.0.1:5070");
        assert_eq!(first.expires, Some(300));
        assert_eq!(first.call_id, "abc@127.0.0.1");
        assert_eq!(first.cseq, 2);
        let second = got.get(1).unwrap();
        assert_eq!(second.expires, None);
        assert_eq!(second.expires_text, "expired");
        assert_eq!(second.cseq, 7);
    }

    #[test]
    fn parses_empty_ul_dump() {
        let text = "{\n\tDomains: {\n\t\tDomain: {\n\t\t\tDomain: location\n\t\t\tSize: 1024\n\
            \t\t\tAoRs: {\n\t\t\t}\n\t\t\tStats: {\n\t\t\t\tRecords: 0\n\t\t\t}\n\t\t}\n\t}\n}\n";
        assert!(parse_ul_dump(text).is_empty());
    }

    #[test]
    fn parses_proc_stat_with_an_awkward_comm() {
        let stat = "4242 (kamailio (a) x) T 4240 4241 4241 0 -1 4194560 100 0 0 0";
        assert_eq!(parse_stat(stat), Some(('T', 4241)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_the_rx_queue_of_a_udp_socket() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            12: 0100007F:13C4 00000000:0000 07 00000000:00000A00 00:00000000 00000000     0        0 1 2 0000000000000000 0\n";
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(udp_rx_queue(text, at(5060)), Some(0xA00));
        assert_eq!(udp_rx_queue(text, at(5061)), None);
        let socket = std::net::UdpSocket::bind(at(0)).unwrap();
        let addr = socket.local_addr().unwrap();
        let table = std::fs::read_to_string("/proc/net/udp").unwrap();
        assert_eq!(udp_rx_queue(&table, addr), Some(0));
    }

    #[test]
    fn parses_htable_dump() {
        let text = "{\n\tentry: 3\n\tsize: 2\n\tslot: {\n\t\t{\n\t\t\tname: alice\n\
            \t\t\tvalue: 6\n\t\t\ttype: int\n\t\t}\n\t\t{\n\t\t\tname: bob\n\t\t\tvalue: 2\n\
            \t\t\ttype: int\n\t\t}\n\t}\n}\n";
        let got = parse_htable_dump(text);
        assert_eq!(got.get("alice"), Some(&6));
        assert_eq!(got.get("bob"), Some(&2));
        assert!(parse_htable_dump("").is_empty());
    }
}

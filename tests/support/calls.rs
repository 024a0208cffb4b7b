//! SIPp at both ends of a call: the provider calling in (UAC scenarios
//! `tests/sipp/call-uac*.xml`) and the destination answering (UAS scenarios
//! `tests/sipp/call-uas*.xml`, LiveKit's stand-in).
//!
//! Each SIPp runs in a temporary directory of its own with its `<log>` actions,
//! errors, message trace, screen and statistics in named files there. The scenarios
//! log one `call=N key=value` line per fact, which [`SippLog`] parses, so a test
//! compares what the caller sent with what the destination saw. Statistics come
//! from SIPp's `-trace_stat` file (its final line, written at exit).
//!
//! Waiting follows the crate's rule: a process exit is awaited; SIPp's socket coming
//! up and a line appearing in its log have no event to await, so they are polled with
//! a bounded deadline.

use crate::kamailio::{find_binary, tail};
use crate::WAIT_LIMIT;
use md5::{Digest as _, Md5};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

/// SIPp's own global timeout (`-timeout`, seconds): a scenario stuck on a message
/// that never comes fails by itself well inside [`WAIT_LIMIT`].
const SIPP_TIMEOUT_SECS: &str = "30";

/// SIPp's exit code when it cannot bind its main socket (the free port was taken in
/// the meantime): start again on another port.
const EXIT_CANNOT_BIND: i32 = 254;

/// How many ports to try before giving up on binding.
const BIND_ATTEMPTS: usize = 5;

/// The interval of the bounded polls (socket bound, log line written).
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The caller number the UAC scenarios send unless told otherwise.
pub const DEFAULT_CALLER: &str = "+5511988887777";

/// What `call-uac-reinvite.xml` and `call-uas-reinvite.xml` both log of a hold and
/// a resume: the SDP of each re-INVITE as sent and as the destination saw it, and
/// the SDP of each answer as the destination sent it and as the caller got it.
pub const REINVITE_FIELDS: [&str; 10] = [
    "hold_o",
    "hold_s",
    "hold_direction",
    "hold_answer_s",
    "hold_answer_direction",
    "resume_o",
    "resume_s",
    "resume_direction",
    "resume_answer_s",
    "resume_answer_direction",
];

/// The folder of the SIPp scenarios.
fn scenario_path(scenario: &str) -> PathBuf {
    crate::sipp::scenario_dir().join(scenario)
}

/// One UAC run of a `call-uac*.xml` scenario: the provider calling trunkline (or, in
/// the harness tests, a SIPp UAS directly). Built with defaults, adjusted with the
/// builder methods, then [`Call::run`] (to the end) or [`Call::start`] (background).
#[derive(Debug, Clone)]
pub struct Call {
    scenario: String,
    did: String,
    caller: String,
    to_user: Option<String>,
    ruri_params: String,
    custom: String,
    headers: String,
    from_ip: Ipv4Addr,
    calls: u32,
    rate: Option<u32>,
    hold_ms: u32,
    extra: Vec<String>,
}

impl Call {
    /// `scenario` (a file name in `tests/sipp/`) dialing `did`: one call from
    /// 127.0.0.1, caller [`DEFAULT_CALLER`], held 300 ms where the scenario pauses.
    pub fn new(scenario: &str, did: &str) -> Self {
        Call {
            scenario: scenario.to_owned(),
            did: did.to_owned(),
            caller: DEFAULT_CALLER.to_owned(),
            to_user: None,
            ruri_params: String::new(),
            custom: format!("e2e-{}", crate::random_hex(6)),
            headers: "Subject: trunkline e2e call".to_owned(),
            from_ip: Ipv4Addr::LOCALHOST,
            calls: 1,
            rate: None,
            hold_ms: 300,
            extra: Vec::new(),
        }
    }

    /// The calling number (From and P-Asserted-Identity user).
    pub fn caller(mut self, caller: &str) -> Self {
        self.caller = caller.to_owned();
        self
    }

    /// The Request-URI becomes `sip:<user>@<target><params>` (e.g. trunkline's
    /// registration Contact, `;line=…`) while the To user stays the DID.
    pub fn to_contact(mut self, user: &str, params: &str) -> Self {
        self.to_user = Some(self.did.clone());
        self.did = user.to_owned();
        self.ruri_params = params.to_owned();
        self
    }

    /// The value of X-Custom (a random token by default).
    pub fn custom(mut self, value: &str) -> Self {
        self.custom = value.to_owned();
        self
    }

    /// Whole header lines added to the INVITE, CRLF-separated (never empty; a
    /// `Subject` line by default).
    pub fn headers(mut self, lines: &str) -> Self {
        assert!(
            !lines.is_empty(),
            "an empty header keyword would end the headers"
        );
        self.headers = lines.to_owned();
        self
    }

    /// The source address (SIPp `-i`), a loopback address such as 127.0.0.5.
    pub fn from_ip(mut self, ip: Ipv4Addr) -> Self {
        assert!(ip.is_loopback(), "tests use loopback addresses only: {ip}");
        self.from_ip = ip;
        self
    }

    /// `calls` calls (SIPp `-m`) at `rate` calls per second (SIPp `-r`).
    pub fn calls(mut self, calls: u32, rate: u32) -> Self {
        self.calls = calls;
        self.rate = Some(rate);
        self
    }

    /// How long the scenario's `<pause/>` lasts (SIPp `-d`, ms).
    pub fn hold_ms(mut self, ms: u32) -> Self {
        self.hold_ms = ms;
        self
    }

    /// Extra SIPp arguments (`-set expected 486`, `-au`/`-ap`, …).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Shorthand for `call-uac-expect.xml`'s `-set expected <status>`.
    pub fn expect_status(self, status: u16) -> Self {
        let status = status.to_string();
        self.args(&["-set", "expected", &status])
    }

    fn sipp_args(&self, target: SocketAddr) -> Vec<String> {
        let to_user = self.to_user.clone().unwrap_or_else(|| self.did.clone());
        let mut args = vec![target.to_string()];
        for (flag, value) in [
            ("-s", self.did.clone()),
            ("-m", self.calls.to_string()),
            ("-d", self.hold_ms.to_string()),
        ] {
            args.push(flag.to_owned());
            args.push(value);
        }
        if let Some(rate) = self.rate {
            args.extend(["-r".to_owned(), rate.to_string()]);
        }
        for (key, value) in [
            ("caller", &self.caller),
            ("to_user", &to_user),
            ("ruri_params", &self.ruri_params),
            ("custom", &self.custom),
            ("headers", &self.headers),
        ] {
            args.extend(["-key".to_owned(), key.to_owned(), value.clone()]);
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Starts the calls in the background (for a call held up while the test does
    /// something else); [`Sipp::wait`] collects the outcome.
    pub async fn start(&self, target: SocketAddr) -> Sipp {
        let place = Place::Loopback(self.from_ip);
        Sipp::spawn(&self.scenario, &place, &self.sipp_args(target)).await
    }

    /// Like [`Call::start`], from `from` inside network namespace `netns` (see
    /// `crate::netns`) instead of a loopback address.
    pub async fn start_netns(&self, netns: &str, from: SocketAddrV4, target: SocketAddr) -> Sipp {
        let place = Place::Netns {
            netns: netns.to_owned(),
            addr: from,
        };
        Sipp::spawn(&self.scenario, &place, &self.sipp_args(target)).await
    }

    /// Runs the calls to the end.
    pub async fn run(&self, target: SocketAddr) -> SippRun {
        self.start(target).await.wait().await
    }
}

/// A `call-uas*.xml` scenario on a free port of 127.0.0.1 that exits after `calls`
/// calls (SIPp `-m`), plus `extra` arguments (`-d`, `-set`, …). Returns once its
/// socket is bound, so a call sent to [`Sipp::addr`] finds it.
pub async fn start_uas(scenario: &str, calls: u32, extra: &[&str]) -> Sipp {
    let mut args = vec!["-m".to_owned(), calls.to_string()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    Sipp::spawn(scenario, &Place::Loopback(Ipv4Addr::LOCALHOST), &args).await
}

/// Like [`start_uas`], on `addr` inside network namespace `netns` (see
/// `crate::netns`), where the test chose the port: nothing else binds there.
pub async fn start_uas_netns(
    netns: &str,
    addr: SocketAddrV4,
    scenario: &str,
    calls: u32,
    extra: &[&str],
) -> Sipp {
    let mut args = vec!["-m".to_owned(), calls.to_string()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let place = Place::Netns {
        netns: netns.to_owned(),
        addr,
    };
    Sipp::spawn(scenario, &place, &args).await
}

/// Where a SIPp runs.
enum Place {
    /// A free port of this loopback address, in the test's own namespace.
    Loopback(Ipv4Addr),
    /// This address inside a network namespace of the test.
    Netns { netns: String, addr: SocketAddrV4 },
}

/// The header lines trunkline adds to the INVITE towards the destination
/// (CONTRACT.md §6), for a harness test that plays trunkline's part with a plain
/// SIPp UAC (through [`Call::headers`]).
pub fn trunkline_headers(
    provider_id: &str,
    provider_name: &str,
    did: &str,
    caller: &str,
    call_id: &str,
) -> String {
    [
        "Subject: trunkline e2e call".to_owned(),
        format!("X-Trunkline-Provider-Id: {provider_id}"),
        format!("X-Trunkline-Provider-Name: {provider_name}"),
        format!("X-Trunkline-Did: {did}"),
        format!("X-Trunkline-Caller: {caller}"),
        format!("X-Trunkline-Call-Id: {call_id}"),
    ]
    .join("\r\n")
}

/// A running SIPp. Killed on drop; prints what it logged when the test is failing.
pub struct Sipp {
    scenario: String,
    child: Child,
    addr: SocketAddr,
    /// Over TCP (`-t t1`): its port is a TCP one.
    tcp: bool,
    dir: tempfile::TempDir,
}

impl Sipp {
    /// Spawns `sipp -sf <scenario> -i <ip> -p <port> <args…>` with its files in a
    /// fresh directory, and waits until it bound its port (or exited already: a UAC
    /// may be done before the poll sees it). On loopback the port is a free one, and
    /// a port taken in between is retried.
    async fn spawn(scenario: &str, place: &Place, args: &[String]) -> Sipp {
        let sipp = find_binary("sipp", "SIPP_BIN");
        for _ in 0..BIND_ATTEMPTS {
            let (netns, ip, port) = match place {
                Place::Loopback(ip) => (None, *ip, free_udp_port_on(*ip)),
                Place::Netns { netns, addr } => (Some(netns.as_str()), *addr.ip(), addr.port()),
            };
            let dir = tempfile::Builder::new()
                .prefix("trunkline-sipp-")
                .tempdir()
                .expect("creating a temp dir for SIPp's files");
            let d = dir.path();
            let mut command = Command::from(crate::netns::command(&sipp, netns));
            command
                .current_dir(d)
                .arg("-sf")
                .arg(scenario_path(scenario))
                .arg("-i")
                .arg(ip.to_string())
                .arg("-p")
                .arg(port.to_string())
                .args(["-nostdin", "-timeout", SIPP_TIMEOUT_SECS, "-timeout_error"])
                .arg("-trace_logs")
                .arg("-log_file")
                .arg(d.join("log.log"))
                .arg("-trace_err")
                .arg("-error_file")
                .arg(d.join("errors.log"))
                .arg("-trace_msg")
                .arg("-message_file")
                .arg(d.join("messages.log"))
                .arg("-trace_stat")
                .arg("-stf")
                .arg(d.join("stats.csv"))
                .arg("-trace_screen")
                .arg("-screen_file")
                .arg(d.join("screen.log"))
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {}: {e}", sipp.display()));
            let mut this = Sipp {
                scenario: scenario.to_owned(),
                child,
                addr: SocketAddr::from((ip, port)),
                tcp: args
                    .windows(2)
                    .any(|w| matches!(w, [t, v] if t == "-t" && v == "t1")),
                dir,
            };
            match this.until_bound().await {
                Some(status) if status.code() == Some(EXIT_CANNOT_BIND) && netns.is_none() => {
                    continue
                }
                _ => return this,
            }
        }
        let ip = match place {
            Place::Loopback(ip) => *ip,
            Place::Netns { addr, .. } => *addr.ip(),
        };
        panic!("SIPp {scenario} could not bind a port on {ip} in {BIND_ATTEMPTS} attempts");
    }

    /// Polls (bounded) until the port shows in SIPp's `/proc/<pid>/net/udp` (the
    /// table of the namespace it runs in; `net/tcp` over TCP, where SIPp listens on it
    /// as UAS and as UAC); `Some(status)` when SIPp exited first.
    async fn until_bound(&mut self) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            let table = self.child.id().map(|pid| {
                let table = if self.tcp { "tcp" } else { "udp" };
                PathBuf::from(format!("/proc/{pid}/net/{table}"))
            });
            if table.is_some_and(|table| udp_bound(&table, self.addr)) {
                return None;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "SIPp {} did not bind {} within {WAIT_LIMIT:?}",
                self.scenario,
                self.addr
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Where this SIPp listens (and sends from).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its directory's file `name`, empty when absent.
    fn file(&self, name: &str) -> String {
        crate::read_lossy(&self.dir.path().join(name))
    }

    /// What its scenario logged so far.
    pub fn log(&self) -> SippLog {
        SippLog::parse(&self.file("log.log"))
    }

    /// Waits (bounded poll: SIPp's log file offers nothing to await) until its log
    /// satisfies `check`; fails with everything SIPp wrote if it exits first or the
    /// limit passes.
    pub async fn wait_for_log(&mut self, what: &str, check: impl Fn(&SippLog) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            if check(&self.log()) {
                return;
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            // One more look: the line may have been written just before the exit.
            if exited && check(&self.log()) {
                return;
            }
            assert!(
                !exited && tokio::time::Instant::now() < deadline,
                "waited for {what} in the log of SIPp {}, which {}:\n{}",
                self.scenario,
                if exited { "exited" } else { "ran too long" },
                self.diagnostics()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Sends `call-uac-hold.xml` the MESSAGE it waits for, straight to this SIPp
    /// (not through trunkline), in call `call` (from 1), which then hangs up.
    pub fn poke(&self, call: u32) {
        let log = self.log();
        let call_id = log
            .call(call)
            .get("call_id")
            .unwrap_or_else(|| panic!("SIPp {} logged no call_id for call {call}", self.scenario));
        let message = format!(
            "MESSAGE sip:hold@{addr} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-poke-{call}\r\n\
             From: <sip:test@127.0.0.1>;tag=poke\r\n\
             To: <sip:hold@{addr}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 MESSAGE\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            addr = self.addr
        );
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a UDP socket");
        socket
            .send_to(message.as_bytes(), self.addr)
            .expect("sending the poke to SIPp");
    }

    /// Waits (up to [`WAIT_LIMIT`]) for SIPp to exit by itself (after its `-m` calls or
    /// its own timeout) and collects the outcome.
    pub async fn wait(mut self) -> SippRun {
        match tokio::time::timeout(WAIT_LIMIT, self.child.wait()).await {
            Ok(status) => {
                let status = status.expect("waiting for SIPp");
                self.outcome(status)
            }
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "SIPp {} did not exit within {WAIT_LIMIT:?}:\n{}",
                    self.scenario,
                    self.diagnostics()
                );
            }
        }
    }

    /// Ends SIPp now (SIGTERM: it writes its final statistics and exits), for a
    /// destination that should have seen nothing.
    pub async fn stop(self) -> SippRun {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid).expect("pid fits in i32");
            // It may have exited on its own in between: nothing to stop then.
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        self.wait().await
    }

    fn outcome(&self, status: ExitStatus) -> SippRun {
        let stats = crate::read_lossy(&self.dir.path().join("stats.csv"));
        SippRun {
            scenario: self.scenario.clone(),
            addr: self.addr,
            status,
            successful: stat(&stats, "SuccessfulCall(C)"),
            failed: stat(&stats, "FailedCall(C)"),
            created: stat(&stats, "TotalCallCreated"),
            log: self.log(),
            log_text: self.file("log.log"),
            errors: self.file("errors.log"),
            messages: self.file("messages.log"),
            screen: self.file("screen.log"),
        }
    }

    fn diagnostics(&self) -> String {
        describe(
            &self.scenario,
            self.addr,
            None,
            &self.file("log.log"),
            &self.file("errors.log"),
            &self.file("messages.log"),
            &self.file("screen.log"),
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        // kill_on_drop ends the process.
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

/// A SIPp that has exited, with what it wrote.
pub struct SippRun {
    /// The scenario file.
    pub scenario: String,
    /// The address it used.
    pub addr: SocketAddr,
    /// Its exit status: 0 when every call succeeded, 1 when one failed, 254/255 fatal.
    pub status: ExitStatus,
    /// Successful calls, from the statistics file (0 if SIPp wrote none).
    pub successful: u64,
    /// Failed calls, from the statistics file (0 if SIPp wrote none).
    pub failed: u64,
    /// Calls created, by an incoming INVITE for a UAS (so 0: it saw none).
    pub created: u64,
    /// The scenario's `<log>` lines, parsed.
    pub log: SippLog,
    log_text: String,
    errors: String,
    messages: String,
    screen: String,
}

impl SippRun {
    /// Fails the test, with SIPp's files, unless SIPp exited 0 with exactly
    /// `successful` successful calls and none failed.
    pub fn assert_succeeded(&self, successful: u64) {
        assert!(
            self.status.code() == Some(0) && self.successful == successful && self.failed == 0,
            "SIPp {} should exit 0 with {successful} successful and 0 failed calls:\n{}",
            self.scenario,
            self.diagnostics()
        );
    }

    /// Everything SIPp wrote, labelled, for failure messages.
    pub fn diagnostics(&self) -> String {
        describe(
            &self.scenario,
            self.addr,
            Some((self.status, self.successful, self.failed)),
            &self.log_text,
            &self.errors,
            &self.messages,
            &self.screen,
        )
    }
}

impl Drop for SippRun {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
    }
}

fn describe(
    scenario: &str,
    addr: SocketAddr,
    outcome: Option<(ExitStatus, u64, u64)>,
    log: &str,
    errors: &str,
    messages: &str,
    screen: &str,
) -> String {
    let outcome = outcome.map_or_else(
        || "still running".to_owned(),
        |(status, ok, failed)| format!("{status}, {ok} successful, {failed} failed"),
    );
    format!(
        "---- SIPp {scenario} on {addr}: {outcome} ----\n\
         -- log --\n{log}\n-- errors --\n{errors}\n-- messages (tail) --\n{}\n\
         -- screen (tail) --\n{}\n---- end of SIPp {scenario} ----",
        tail(messages, 120),
        tail(screen, 30)
    )
}

/// The `call=N key=value` lines a scenario logged, by call number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SippLog {
    calls: BTreeMap<u32, CallLog>,
}

/// What one call logged: `key=value` facts (a repeated key keeps its last value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallLog {
    /// The facts, by key.
    pub fields: BTreeMap<String, String>,
}

impl CallLog {
    /// The value logged for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// Whether `key` was logged (e.g. `bye` for "the BYE arrived").
    pub fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// The value logged for `key`; fails the test naming the key when absent.
    #[track_caller]
    pub fn field(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("no {key} in this call's log: {:?}", self.fields))
    }
}

impl SippLog {
    /// Parses `call=N key=value` lines; other lines are ignored.
    pub fn parse(text: &str) -> Self {
        let mut calls: BTreeMap<u32, CallLog> = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("call=") else {
                continue;
            };
            let Some((number, fact)) = rest.split_once(' ') else {
                continue;
            };
            let (Ok(number), Some((key, value))) = (number.parse(), fact.split_once('=')) else {
                continue;
            };
            calls
                .entry(number)
                .or_default()
                .fields
                .insert(key.to_owned(), value.to_owned());
        }
        SippLog { calls }
    }

    /// Call `n` (SIPp's call number, from 1); fails the test when it logged nothing.
    #[track_caller]
    pub fn call(&self, n: u32) -> &CallLog {
        self.calls
            .get(&n)
            .unwrap_or_else(|| panic!("no call {n} in the SIPp log: {self:?}"))
    }

    /// Every call that logged something, by number.
    pub fn calls(&self) -> impl Iterator<Item = &CallLog> {
        self.calls.values()
    }

    /// How many calls logged `key`.
    pub fn count(&self, key: &str) -> usize {
        self.calls.values().filter(|c| c.has(key)).count()
    }
}

/// A `Proxy-Authorization`/`Authorization` header value, as a destination saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestHeader {
    /// Parameters by lowercase name, unquoted.
    pub params: BTreeMap<String, String>,
}

impl DigestHeader {
    /// Parses `Digest k="v", k2=v2, …`; `None` when it is not Digest.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("Digest")?;
        let mut params = BTreeMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if name.trim().is_empty() {
                break;
            }
            let value: String = if chars.peek() == Some(&'"') {
                chars.next();
                chars.by_ref().take_while(|c| *c != '"').collect()
            } else {
                chars.by_ref().take_while(|c| *c != ',').collect()
            };
            params.insert(name.trim().to_lowercase(), value.trim().to_owned());
        }
        Some(DigestHeader { params })
    }

    /// Parameter `name` (lowercase).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Whether `response` is the MD5 digest (RFC 2617, no qop) of `method` with
    /// `password` and the header's own username, realm, nonce and uri.
    pub fn verify(&self, method: &str, password: &str) -> bool {
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) = (
            self.param("username"),
            self.param("realm"),
            self.param("nonce"),
            self.param("uri"),
            self.param("response"),
        ) else {
            return false;
        };
        let md5 = |text: String| crate::hex(&Md5::digest(text));
        let ha1 = md5(format!("{user}:{realm}:{password}"));
        let ha2 = md5(format!("{method}:{uri}"));
        md5(format!("{ha1}:{nonce}:{ha2}")) == response
    }
}

/// A UDP port on `ip` (a loopback address) that was free a moment ago.
pub fn free_udp_port_on(ip: Ipv4Addr) -> u16 {
    let socket = UdpSocket::bind((ip, 0))
        .unwrap_or_else(|e| panic!("binding a UDP socket on {ip}:0 to find a free port: {e}"));
    socket
        .local_addr()
        .expect("reading the local address of a bound UDP socket")
        .port()
}

/// Whether some socket is bound to `addr` (IPv4), from `table` (`/proc/net/udp` or
/// a process's `/proc/<pid>/net/udp`, or the `tcp` one of the same format), which shows it without disturbing the owner (a
/// test bind would race with it).
fn udp_bound(table: &Path, addr: SocketAddr) -> bool {
    let SocketAddr::V4(v4) = addr else {
        return false;
    };
    // The kernel prints the address as the hex of its in-memory (network order) u32.
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    crate::read_lossy(table)
        .lines()
        .skip(1)
        .any(|line| line.split_whitespace().nth(1) == Some(wanted.as_str()))
}

/// Column `name` of the last row of a SIPp `-trace_stat` file (`;`-separated, header
/// row first), 0 when absent.
fn stat(csv: &str, name: &str) -> u64 {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return 0;
    };
    let Some(column) = header.split(';').position(|h| h == name) else {
        return 0;
    };
    lines
        .next_back()
        .and_then(|row| row.split(';').nth(column))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse_by_call() {
        let log = SippLog::parse(
            "call=1 ruri=sip:+1@h\ncall=2 x= a=b \nnoise\ncall=x y=z\ncall=1 ack=yes\n",
        );
        assert_eq!(log.call(1).get("ruri"), Some("sip:+1@h"));
        assert!(log.call(1).has("ack"));
        assert_eq!(log.call(2).get("x"), Some(" a=b "));
        assert_eq!(log.calls().count(), 2);
        assert_eq!(log.count("ack"), 1);
    }

    #[test]
    fn digest_header_verifies_an_rfc2617_response() {
        // Computed independently (python hashlib) for lk / LiveKit / sekrit.
        let header = DigestHeader::parse(
            r#"Digest username="lk",realm="LiveKit",uri="sip:127.0.0.1:48126",nonce="e2e15258n1",response="e9d981a50b51c9e03c291b92e73b7564",algorithm=MD5"#,
        )
        .unwrap();
        assert_eq!(header.param("algorithm"), Some("MD5"));
        assert!(header.verify("INVITE", "sekrit"));
        assert!(!header.verify("INVITE", "wrong"));
        assert!(!header.verify("BYE", "sekrit"));
        assert!(DigestHeader::parse("Basic Zm9v").is_none());
    }

    #[test]
    fn stats_come_from_the_last_row() {
        let csv = "A;SuccessfulCall(C);FailedCall(C)\nx;0;0\ny;100;2\n";
        assert_eq!(stat(csv, "SuccessfulCall(C)"), 100);
        assert_eq!(stat(csv, "FailedCall(C)"), 2);
        assert_eq!(stat("", "FailedCall(C)"), 0);
    }

    #[test]
    fn a_bound_socket_shows_in_proc_net_udp() {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = socket.local_addr().unwrap();
        let table = Path::new("/proc/net/udp");
        assert!(udp_bound(table, addr));
        drop(socket);
        assert!(!udp_bound(table, addr));
    }
}

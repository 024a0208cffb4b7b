//! A real DNS server on loopback for the RFC 3263 tests: dnsmasq, answering only from
//! the records a test gives it.
//!
//! dnsmasq runs in the foreground on 127.0.0.1 and a free port (UDP and TCP), with no
//! upstream server, no `/etc/hosts`, no `resolv.conf` and no config file, so nothing
//! of the machine leaks into the answers. Every name under `.test` (RFC 2606's
//! test-only TLD) is local: one the test did not give is answered NXDOMAIN (or
//! NODATA when the name has records of another type), never forwarded. Names outside
//! `.test` are refused, as dnsmasq has nowhere to forward them.
//!
//! ```no_run
//! # async fn example() {
//! use std::net::Ipv4Addr;
//! use trunkline_tests::DnsServer;
//! let dns = DnsServer::builder()
//!     .a("sip1.example.test", Ipv4Addr::new(127, 0, 0, 1))
//!     .srv("_sip._udp.example.test", "sip1.example.test", 5060, 10, 100)
//!     .naptr("example.test", 10, 50, "s", "SIP+D2U", "_sip._udp.example.test")
//!     .ttl(60)
//!     .start()
//!     .await;
//! let dns_server_env = ("DNS_SERVER", dns.addr().to_string());
//! # }
//! ```

use crate::kamailio::{find_binary, stop_group, tail};
use crate::net::{free_udp_port, LOOPBACK};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use std::fmt::Write as _;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The TTL of every record unless [`DnsServerBuilder::ttl`] says otherwise. Not
/// dnsmasq's own default of 0 ("do not cache"): providers publish TTLs, and a client
/// that never caches would hide caching bugs.
pub const DEFAULT_TTL: u32 = 60;

/// The name the harness asks for to learn that dnsmasq answers. Under `.test`, so it
/// is answered (NXDOMAIN) from the local data and never forwarded; left out of
/// [`DnsServer::queries`].
pub const READY_PROBE: &str = "harness-ready-probe.test";

/// How long dnsmasq may take to answer its first query. Polled: dnsmasq signals
/// readiness in no way a child process can await (no sd_notify, no pipe).
const START_LIMIT: Duration = Duration::from_secs(10);

/// Ports tried before giving up: a free port can be taken between picking and binding.
const START_ATTEMPTS: usize = 3;

/// How long one query of [`DnsServer::query`] waits for its answer. dnsmasq answers
/// from memory at once; this only turns a hang into a failure.
const QUERY_LIMIT: Duration = Duration::from_secs(10);

/// The domain whose names dnsmasq answers from local data only (`--local=/test/`).
const LOCAL_DOMAIN: &str = "test";

/// One record a test gives the server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Record {
    Address {
        name: String,
        ip: IpAddr,
    },
    Srv {
        service: String,
        target: String,
        port: u16,
        priority: u16,
        weight: u16,
    },
    Naptr {
        name: String,
        order: u16,
        preference: u16,
        flags: String,
        service: String,
        replacement: String,
    },
}

impl Record {
    /// The dnsmasq option that publishes this record.
    fn option(&self) -> String {
        match self {
            // One option per address: a name may appear in several --host-record.
            Record::Address { name, ip } => format!("--host-record={name},{ip}"),
            // dnsmasq's order is target, port, priority, weight (not a zone file's
            // priority, weight, port); checked by the harness self-test.
            Record::Srv {
                service,
                target,
                port,
                priority,
                weight,
            } => format!("--srv-host={service},{target},{port},{priority},{weight}"),
            // RFC 3263 NAPTRs rewrite by replacement only: the regexp is empty.
            Record::Naptr {
                name,
                order,
                preference,
                flags,
                service,
                replacement,
            } => format!(
                "--naptr-record={name},{order},{preference},{flags},{service},,{replacement}"
            ),
        }
    }
}

/// Collects the records and TTL of a [`DnsServer`]; [`DnsServerBuilder::start`] runs it.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until start() is awaited"]
pub struct DnsServerBuilder {
    records: Vec<Record>,
    ttl: u32,
}

impl DnsServerBuilder {
    /// An A record `name` → `ip`. Several for one name give several addresses,
    /// answered in the order given (`--no-round-robin`).
    pub fn a(self, name: &str, ip: Ipv4Addr) -> Self {
        self.address(name, IpAddr::V4(ip))
    }

    /// An AAAA record `name` → `ip`.
    pub fn aaaa(self, name: &str, ip: Ipv6Addr) -> Self {
        self.address(name, IpAddr::V6(ip))
    }

    fn address(mut self, name: &str, ip: IpAddr) -> Self {
        self.records.push(Record::Address {
            name: checked_name(name),
            ip,
        });
        self
    }

    /// An SRV record at `service` (the whole owner name, e.g.
    /// `_sip._udp.example.test`) naming `target:port` with RFC 2782's `priority`
    /// (lower first) and `weight` (within one priority). Several for one service are
    /// all answered, each time in another order: dnsmasq moves the first to the end
    /// after every answer (`--no-round-robin` covers addresses only), so a client
    /// that does not sort by priority itself is caught. Their targets' A/AAAA
    /// records come along in the additional section.
    pub fn srv(
        mut self,
        service: &str,
        target: &str,
        port: u16,
        priority: u16,
        weight: u16,
    ) -> Self {
        let service = checked_name(service);
        assert!(
            service.starts_with('_')
                && service
                    .split('.')
                    .nth(1)
                    .is_some_and(|p| p.starts_with('_')),
            "SRV owner {service:?} is not _service._proto.domain (RFC 2782)"
        );
        self.records.push(Record::Srv {
            service,
            target: checked_name(target),
            port,
            priority,
            weight,
        });
        self
    }

    /// A NAPTR record at `name` (RFC 3403) with an empty regexp, rewriting to
    /// `replacement`, as RFC 3263 §4.1 uses them: e.g. flags `"s"`, service
    /// `"SIP+D2U"` and replacement `_sip._udp.example.test`. Several for one name are
    /// all answered, in no promised order (a client sorts by order and preference).
    pub fn naptr(
        mut self,
        name: &str,
        order: u16,
        preference: u16,
        flags: &str,
        service: &str,
        replacement: &str,
    ) -> Self {
        assert!(
            !flags.contains(',') && !service.contains(','),
            "NAPTR flags {flags:?} and service {service:?} cannot hold a comma \
             (dnsmasq's option separator)"
        );
        self.records.push(Record::Naptr {
            name: checked_name(name),
            order,
            preference,
            flags: flags.to_owned(),
            service: service.to_owned(),
            replacement: checked_name(replacement),
        });
        self
    }

    /// The TTL, in seconds, of every record answered (dnsmasq's `--local-ttl`, which
    /// covers A/AAAA, SRV and NAPTR alike); [`DEFAULT_TTL`] unless set. 0 tells
    /// clients not to cache at all.
    pub fn ttl(mut self, secs: u32) -> Self {
        self.ttl = secs;
        self
    }

    /// Starts dnsmasq with these records on a free 127.0.0.1 port (UDP and TCP) and
    /// returns once it answers on both. Panics, with how to install it, when dnsmasq
    /// is not installed (`DNSMASQ_BIN` names another binary), and with its output
    /// when it does not start.
    pub async fn start(self) -> DnsServer {
        let dnsmasq = find_binary("dnsmasq", "DNSMASQ_BIN");
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match DnsServer::try_start(&dnsmasq, &self).await {
                Ok(started) => return started,
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "dnsmasq did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }
}

/// The name as dnsmasq gets it, after checking it fits an option (no comma, no
/// whitespace) and is under the test-only `.test` domain.
fn checked_name(name: &str) -> String {
    let name = name.trim_end_matches('.');
    assert!(
        !name.is_empty() && !name.contains([',', ' ', '\t', '\n']),
        "DNS name {name:?} is empty or holds a separator of dnsmasq's options"
    );
    assert!(
        name.ends_with(".test"),
        "DNS name {name:?} is not under .test: test records stay in the test-only TLD"
    );
    name.to_owned()
}

/// How [`DnsServer::query_over`] sends its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram each way.
    Udp,
    /// A TCP connection, messages prefixed by their 2-byte length (RFC 1035 §4.2.2).
    Tcp,
}

/// A running dnsmasq on `127.0.0.1:<port>`, UDP and TCP, answering only the records
/// it was built with. Stopped on drop; its log is printed when the test is failing.
pub struct DnsServer {
    child: Child,
    addr: SocketAddr,
    ttl: u32,
    log: PathBuf,
    stderr: PathBuf,
    // Declared last so it is removed after the process is gone.
    dir: tempfile::TempDir,
}

impl DnsServer {
    /// A builder with no records and [`DEFAULT_TTL`].
    pub fn builder() -> DnsServerBuilder {
        DnsServerBuilder {
            records: Vec::new(),
            ttl: DEFAULT_TTL,
        }
    }

    async fn try_start(dnsmasq: &Path, builder: &DnsServerBuilder) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("trunkline-dnsmasq-")
            .tempdir()
            .expect("creating a temp dir for dnsmasq");
        let addr = SocketAddr::from((LOOPBACK, free_udp_port()));
        let log = dir.path().join("dnsmasq.log");
        let stderr = dir.path().join("stderr.log");
        let child = spawn(dnsmasq, builder, dir.path(), addr, &log, &stderr);
        let mut started = DnsServer {
            child,
            addr,
            ttl: builder.ttl,
            log,
            stderr,
            dir,
        };
        started.wait_ready().await?;
        Ok(started)
    }

    /// Waits until dnsmasq answers the probe over UDP, then over TCP (or exits, or
    /// the limit passes).
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("checking whether dnsmasq is still running")
            {
                return Err(format!(
                    "dnsmasq exited during start ({status}) on {}; its output:\n{}",
                    self.addr,
                    self.log_text()
                ));
            }
            // Until dnsmasq has bound, the datagram meets a closed port and the
            // connected socket reports it at once; a short wait covers the rest.
            let probe = query(
                self.addr,
                Transport::Udp,
                READY_PROBE,
                RecordType::A,
                Duration::from_millis(200),
            )
            .await;
            if probe.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dnsmasq did not answer on udp {} within {START_LIMIT:?}; its output:\n{}",
                    self.addr,
                    self.log_text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The TCP listener is bound before dnsmasq serves anything, so one try tells.
        query(
            self.addr,
            Transport::Tcp,
            READY_PROBE,
            RecordType::A,
            QUERY_LIMIT,
        )
        .await
        .map(drop)
        .map_err(|e| {
            format!(
                "dnsmasq answers on udp {} but not on tcp: {e}; its output:\n{}",
                self.addr,
                self.log_text()
            )
        })
    }

    /// The server's address (UDP and TCP), for `DNS_SERVER=ip:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TTL every record is answered with.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The directory holding the log files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Asks the server `name`/`record_type` over UDP and returns its answer, whatever
    /// its response code. Panics, with the server's log, when no answer comes.
    pub async fn query(&self, name: &str, record_type: RecordType) -> Message {
        self.query_over(Transport::Udp, name, record_type).await
    }

    /// [`DnsServer::query`] over `transport`.
    pub async fn query_over(
        &self,
        transport: Transport,
        name: &str,
        record_type: RecordType,
    ) -> Message {
        query(self.addr, transport, name, record_type, QUERY_LIMIT)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "DNS query {record_type} {name} over {transport:?} to {}: {e}\ndnsmasq's log:\n{}",
                    self.addr,
                    tail(&self.log_text(), 100)
                )
            })
    }

    /// The questions the server was asked, in order, as dnsmasq logs them
    /// (`query[SRV] _sip._udp.example.test from 127.0.0.1`), without the harness's
    /// own readiness probes. dnsmasq logs a question before it sends the answer, so
    /// once a client has its answer, its question is here.
    pub fn queries(&self) -> Vec<String> {
        self.log_messages()
            .into_iter()
            .filter(|line| line.starts_with("query["))
            .filter(|line| !line.contains(&format!(" {READY_PROBE} ")))
            .collect()
    }

    /// How many times the server was asked for `name` with type `record_type`
    /// (`"SRV"`, `"NAPTR"`, `"A"`, `"AAAA"`), from [`DnsServer::queries`].
    pub fn query_count(&self, record_type: &str, name: &str) -> usize {
        let prefix = format!("query[{record_type}] {name} from ");
        self.queries()
            .iter()
            .filter(|line| line.starts_with(&prefix))
            .count()
    }

    /// dnsmasq's log messages without their timestamp and `dnsmasq[pid]: ` prefix:
    /// each question, each answer (`config NAME is …`), start and exit.
    pub fn log_messages(&self) -> Vec<String> {
        crate::read_lossy(&self.log)
            .lines()
            .map(|line| match line.split_once("]: ") {
                Some((_, message)) => message.to_owned(),
                None => line.to_owned(),
            })
            .collect()
    }

    /// Everything dnsmasq wrote: its log, then whatever went to stderr (a failed
    /// start reports there).
    pub fn log_text(&self) -> String {
        let mut text = crate::read_lossy(&self.log);
        let stderr = crate::read_lossy(&self.stderr);
        if !stderr.is_empty() {
            let _ = write!(text, "(stderr)\n{stderr}");
        }
        text
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        stop_group(&mut self.child, "dnsmasq");
        if std::thread::panicking() {
            eprintln!(
                "---- dnsmasq log ({}) ----\n{}---- end of dnsmasq log ----",
                self.addr,
                tail(&self.log_text(), 200)
            );
        }
    }
}

/// Starts dnsmasq on `addr` with `builder`'s records, logging queries to `log` and
/// its stderr to `stderr`, its pid file in `dir`.
fn spawn(
    dnsmasq: &Path,
    builder: &DnsServerBuilder,
    dir: &Path,
    addr: SocketAddr,
    log: &Path,
    stderr: &Path,
) -> Child {
    let stderr = File::create(stderr).expect("creating dnsmasq's stderr file");
    let mut command = std::process::Command::new(dnsmasq);
    command
        // Foreground, but otherwise as in production: unlike --no-daemon, TCP queries
        // get a process each, so a client holding a TCP connection open does not
        // stall every other query. As root it drops to `nobody` after opening its
        // sockets and files.
        .arg("--keep-in-foreground")
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        // Nothing of the machine: no /etc/dnsmasq.conf, /etc/hosts, resolv.conf.
        .arg("--conf-file=/dev/null")
        .args(["--no-resolv", "--no-hosts", "--no-poll"])
        .arg(format!("--local=/{LOCAL_DOMAIN}/"))
        .arg(format!("--listen-address={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        // Only 127.0.0.1:<port>, not the wildcard address: other DNS servers (a
        // parallel test's) may use other ports and addresses.
        .arg("--bind-interfaces")
        .arg(format!("--local-ttl={}", builder.ttl))
        // Answers in the order the test gave the records, every time.
        .arg("--no-round-robin")
        .arg("--log-queries")
        .arg(format!("--log-facility={}", log.display()))
        .args(builder.records.iter().map(Record::option))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // Own process group: Drop stops the TCP worker processes too.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", dnsmasq.display()))
}

/// Asks `server` for `name`/`record_type` over `transport`, waiting up to `limit`.
/// Any answer with the query's id counts, whatever its response code.
pub async fn query(
    server: SocketAddr,
    transport: Transport,
    name: &str,
    record_type: RecordType,
    limit: Duration,
) -> Result<Message, String> {
    let qname = Name::from_ascii(name).map_err(|e| format!("bad DNS name {name:?}: {e}"))?;
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(qname, record_type));
    let id = message.metadata.id;
    let bytes = message
        .to_vec()
        .map_err(|e| format!("encoding the query: {e}"))?;
    let exchange = async {
        let answer = match transport {
            Transport::Udp => {
                let socket = tokio::net::UdpSocket::bind((LOOPBACK, 0))
                    .await
                    .map_err(|e| format!("binding a UDP socket: {e}"))?;
                // Connected, so a closed port shows as an error instead of silence.
                socket
                    .connect(server)
                    .await
                    .map_err(|e| format!("connecting to {server}: {e}"))?;
                socket
                    .send(&bytes)
                    .await
                    .map_err(|e| format!("sending to {server}: {e}"))?;
                let mut buf = vec![0u8; 65535];
                let n = socket
                    .recv(&mut buf)
                    .await
                    .map_err(|e| format!("receiving from {server}: {e}"))?;
                buf.truncate(n);
                buf
            }
            Transport::Tcp => {
                let mut stream = tokio::net::TcpStream::connect(server)
                    .await
                    .map_err(|e| format!("connecting to tcp {server}: {e}"))?;
                let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_owned())?;
                let mut framed = len.to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                stream
                    .write_all(&framed)
                    .await
                    .map_err(|e| format!("writing to tcp {server}: {e}"))?;
                let len = stream
                    .read_u16()
                    .await
                    .map_err(|e| format!("reading the answer's length from tcp {server}: {e}"))?;
                let mut buf = vec![0u8; usize::from(len)];
                stream
                    .read_exact(&mut buf)
                    .await
                    .map_err(|e| format!("reading the answer from tcp {server}: {e}"))?;
                buf
            }
        };
        Message::from_vec(&answer).map_err(|e| format!("decoding the answer: {e}"))
    };
    let answer = tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| format!("no answer within {limit:?}"))??;
    if answer.metadata.id != id {
        return Err(format!(
            "answer id {} is not the query's {id}",
            answer.metadata.id
        ));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_dnsmasq_options() {
        let builder = DnsServer::builder()
            .a("sip1.example.test", Ipv4Addr::new(127, 0, 0, 2))
            .aaaa("sip1.example.test", Ipv6Addr::LOCALHOST)
            .srv("_sip._udp.example.test", "sip1.example.test", 5070, 10, 20)
            .naptr(
                "example.test",
                10,
                50,
                "s",
                "SIP+D2U",
                "_sip._udp.example.test.",
            );
        let options: Vec<String> = builder.records.iter().map(Record::option).collect();
        assert_eq!(
            options,
            [
                "--host-record=sip1.example.test,127.0.0.2",
                "--host-record=sip1.example.test,::1",
                "--srv-host=_sip._udp.example.test,sip1.example.test,5070,10,20",
                "--naptr-record=example.test,10,50,s,SIP+D2U,,_sip._udp.example.test",
            ]
        );
    }

    #[test]
    #[should_panic(expected = "not under .test")]
    fn names_outside_the_test_domain_are_refused() {
        let _ = DnsServer::builder().a("sip.example.com", Ipv4Addr::LOCALHOST);
    }
}

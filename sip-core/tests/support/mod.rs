//! A small world for driving the controller in virtual time against a scripted
//! registrar and an always-answering backend.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

pub mod calls;
pub mod registrar;

use registrar::Registrar;
use sip_core::{
    BackendOp, BackendReply, Config, Controller, Event, Input, Output, ProviderSpec, StatusReport,
};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, UNIX_EPOCH};

pub const REGISTRAR: &str = "192.0.2.10";
/// A second registrar of the same provider (RFC 3263 failover tests), with its own
/// bindings: [`World::second`].
pub const REGISTRAR2: &str = "192.0.2.11";
pub const LOCAL: &str = "198.51.100.1:5070";

/// What the backend model does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendMode {
    Up,
    Down,
    /// Takes requests and never answers.
    Silent,
    /// Answers every request 401.
    Unauthorized,
}

pub struct World {
    pub core: Controller,
    /// Wall-clock time spent inside the controller's `handle_*` (for `benches/calls.rs`,
    /// which must not count this world's own bookkeeping).
    pub busy: Duration,
    pub t0: Instant,
    pub now: Instant,
    pub registrar: Registrar,
    /// The registrar at [`REGISTRAR2`], when the test has one.
    pub second: Option<Registrar>,
    /// Registrar addresses that take datagrams and answer nothing (a paused process).
    pub silent: std::collections::BTreeSet<IpAddr>,
    /// DNS records by (kind, name); a query for anything else is answered with the
    /// name parsed as an IP, else [`REGISTRAR`].
    pub dns:
        std::collections::BTreeMap<(sip_core::QueryKind, String), Result<sip_core::Answer, String>>,
    /// Every DNS query the core asked, in order.
    pub queries: Vec<(sip_core::QueryKind, String)>,
    pub providers: Vec<ProviderSpec>,
    /// Every datagram the core sent, with its time.
    pub sent: Vec<(Duration, SocketAddr, String)>,
    /// Everything the core wrote on a connection, with its time.
    pub written: Vec<(Duration, sip_core::Flow, String)>,
    /// Connections the core asked to open.
    pub connects: Vec<sip_core::Connect>,
    /// Connections the core closed.
    pub closed: Vec<sip_core::ConnId>,
    /// Every PATCH the backend accepted, in order.
    pub reports: Vec<(Duration, String, StatusReport)>,
    pub attempted_reports: usize,
    pub events: Vec<(Duration, Event)>,
    pub backend: BackendMode,
    pub fetches: usize,
    /// The backend's destinations by DID (others: 404).
    pub routes: std::collections::BTreeMap<String, String>,
    /// `livekitDomain` of GET /api/sip/config (`None`: 404).
    pub livekit_domain: Option<String>,
    pub config_fetches: usize,
    pub lookups: usize,
    /// How long the backend takes to answer.
    pub backend_delay: Duration,
    /// How long the registrar takes to answer.
    pub registrar_delay: Duration,
    /// Datagrams in flight to the core: (deliver at, from, bytes).
    inbound: Vec<(Instant, SocketAddr, Vec<u8>)>,
    /// Bytes due on a connection: `(when, connection, bytes)`.
    stream_inbound: Vec<(Instant, sip_core::ConnId, Vec<u8>)>,
    /// Whether connections the core opens come up at once (else they are only
    /// recorded in `connects`, for the test to answer).
    pub auto_connect: bool,
    /// Whether the peers of the core's connections answer its keep-alive pings.
    pub answer_pings: bool,
    backend_queue: Vec<(Instant, sip_core::RequestId, BackendReply)>,
}

pub fn provider(id: &str, user: &str, password: &str) -> ProviderSpec {
    ProviderSpec {
        id: id.into(),
        name: format!("Provider {id}"),
        host: REGISTRAR.into(),
        port: Some(5060),
        transport: Some("udp".into()),
        username: user.into(),
        password: password.into(),
        expires: Some(3600),
        ..ProviderSpec::default()
    }
}

pub fn config() -> Config {
    Config {
        local_port: 5070,
        contact_host: Some("198.51.100.1".into()),
        sync_interval: None,
        ..Config::default()
    }
}

impl World {
    pub fn new(cfg: Config, registrar: Registrar, providers: Vec<ProviderSpec>) -> Self {
        Self::new_restored(cfg, registrar, providers, Vec::new())
    }

    /// A world whose controller restores binding identities of an earlier run.
    pub fn new_restored(
        cfg: Config,
        registrar: Registrar,
        providers: Vec<ProviderSpec>,
        restored: Vec<sip_core::BindingIdentity>,
    ) -> Self {
        Self::new_with_backend(cfg, registrar, providers, restored, |_| {})
    }

    /// A world whose backend is set up by `setup` before the controller's first request
    /// (destinations, `livekitDomain`, mode).
    pub fn new_with_backend(
        cfg: Config,
        registrar: Registrar,
        providers: Vec<ProviderSpec>,
        restored: Vec<sip_core::BindingIdentity>,
        setup: impl FnOnce(&mut Self),
    ) -> Self {
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let mut core = Controller::new(cfg, 42, t0, wall);
        core.restore(restored);
        let mut w = Self {
            core,
            busy: Duration::ZERO,
            t0,
            now: t0,
            registrar,
            second: None,
            silent: std::collections::BTreeSet::new(),
            dns: std::collections::BTreeMap::new(),
            queries: Vec::new(),
            providers,
            sent: Vec::new(),
            written: Vec::new(),
            connects: Vec::new(),
            closed: Vec::new(),
            reports: Vec::new(),
            attempted_reports: 0,
            events: Vec::new(),
            backend: BackendMode::Up,
            fetches: 0,
            routes: std::collections::BTreeMap::new(),
            livekit_domain: None,
            config_fetches: 0,
            lookups: 0,
            backend_delay: Duration::from_millis(5),
            registrar_delay: Duration::from_millis(10),
            inbound: Vec::new(),
            stream_inbound: Vec::new(),
            auto_connect: true,
            answer_pings: true,
            backend_queue: Vec::new(),
        };
        setup(&mut w);
        w.drain();
        w
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn drain(&mut self) {
        loop {
            match self.core.poll_output() {
                Output::Transmit(t) if t.flow != sip_core::Flow::Udp => {
                    let text = String::from_utf8_lossy(&t.payload).into_owned();
                    self.written.push((self.elapsed(), t.flow, text));
                    let conn = t.flow.conn().unwrap();
                    if t.payload == b"\r\n\r\n" && self.answer_pings {
                        // RFC 5626 §4.4.1: a ping gets its pong.
                        let at = self.now + self.registrar_delay;
                        self.stream_inbound.push((at, conn, b"\r\n".to_vec()));
                    } else if t.remote.ip() == REGISTRAR.parse::<IpAddr>().unwrap() {
                        for resp in self.registrar.handle(&t.payload, self.elapsed()) {
                            self.stream_inbound
                                .push((self.now + self.registrar_delay, conn, resp));
                        }
                    }
                }
                Output::Connect(c) => {
                    let conn = c.conn;
                    self.connects.push(c);
                    if self.auto_connect {
                        let local = "198.51.100.1:40001".parse().unwrap();
                        self.core
                            .handle_input(self.now, Input::Connected { conn, local });
                    }
                }
                Output::Close { conn } => self.closed.push(conn),
                Output::Transmit(t) => {
                    let text = String::from_utf8_lossy(&t.payload).into_owned();
                    self.sent.push((self.elapsed(), t.remote, text));
                    let elapsed = self.elapsed();
                    let registrar = if self.silent.contains(&t.remote.ip()) {
                        None
                    } else if t.remote.ip() == REGISTRAR.parse::<IpAddr>().unwrap() {
                        Some(&mut self.registrar)
                    } else if t.remote.ip() == REGISTRAR2.parse::<IpAddr>().unwrap() {
                        self.second.as_mut()
                    } else {
                        None
                    };
                    if let Some(registrar) = registrar {
                        for resp in registrar.handle(&t.payload, elapsed) {
                            self.inbound
                                .push((self.now + self.registrar_delay, t.remote, resp));
                        }
                    }
                }
                Output::Backend(req) => {
                    let reply = match (&req.op, self.backend) {
                        (_, BackendMode::Silent) => continue,
                        (_, BackendMode::Unauthorized) => {
                            BackendReply::Unauthorized { status: 401 }
                        }
                        (_, BackendMode::Down) => {
                            if let BackendOp::ReportStatus { .. } = req.op {
                                self.attempted_reports += 1;
                            }
                            BackendReply::Failed("connection refused".into())
                        }
                        (BackendOp::FetchProviders, BackendMode::Up) => {
                            self.fetches += 1;
                            BackendReply::Providers(self.providers.clone())
                        }
                        (
                            BackendOp::ReportStatus {
                                provider_id,
                                report,
                            },
                            BackendMode::Up,
                        ) => {
                            self.attempted_reports += 1;
                            self.reports.push((
                                self.elapsed(),
                                provider_id.clone(),
                                report.clone(),
                            ));
                            BackendReply::Delivered
                        }
                        (BackendOp::FetchConfig, BackendMode::Up) => {
                            self.config_fetches += 1;
                            match &self.livekit_domain {
                                Some(d) => BackendReply::Config {
                                    livekit_domain: Some(d.clone()),
                                },
                                None => BackendReply::NotFound,
                            }
                        }
                        (BackendOp::LookupDestination { did }, BackendMode::Up) => {
                            self.lookups += 1;
                            match self.routes.get(did) {
                                Some(uri) => BackendReply::Destination { uri: uri.clone() },
                                None => BackendReply::NotFound,
                            }
                        }
                    };
                    self.backend_queue
                        .push((self.now + self.backend_delay, req.id, reply));
                }
                Output::Resolve(q) => {
                    self.queries.push((q.kind, q.host.clone()));
                    let result = match self.dns.get(&(q.kind, q.host.clone())) {
                        Some(r) => r.clone(),
                        None => {
                            let ip: IpAddr = q.host.parse().unwrap_or(REGISTRAR.parse().unwrap());
                            Ok(sip_core::Answer::addresses(vec![ip], None))
                        }
                    };
                    self.core
                        .handle_input(self.now, Input::Resolved { id: q.id, result });
                }
                Output::Event(e) => self.events.push((self.elapsed(), e)),
                Output::Timeout(_) => break,
            }
        }
    }

    /// Runs the world until `until` (relative to start), one event at a time.
    pub fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        loop {
            let next_in = self
                .inbound
                .iter()
                .map(|(t, _, _)| *t)
                .chain(self.stream_inbound.iter().map(|(t, _, _)| *t))
                .min();
            let next_be = self.backend_queue.iter().map(|(t, _, _)| *t).min();
            let next_timer = self.core.poll_timeout();
            let next = [next_in, next_be, next_timer].into_iter().flatten().min();
            let Some(next) = next.filter(|t| *t <= end) else {
                self.now = end;
                return;
            };
            self.now = self.now.max(next);
            if next_in == Some(next) {
                let on_stream = self.stream_inbound.iter().position(|(t, _, _)| *t == next);
                if let Some(i) = on_stream {
                    let (_, conn, bytes) = self.stream_inbound.remove(i);
                    let input = Input::Received { conn, bytes };
                    self.timed(|core, now| core.handle_input(now, input));
                    self.drain();
                    continue;
                }
                let i = self
                    .inbound
                    .iter()
                    .position(|(t, _, _)| *t == next)
                    .unwrap();
                let (_, from, bytes) = self.inbound.remove(i);
                let input = Input::Datagram {
                    local: LOCAL.parse().unwrap(),
                    remote: from,
                    payload: bytes,
                };
                self.timed(|core, now| core.handle_input(now, input));
            } else if next_be == Some(next) {
                let i = self
                    .backend_queue
                    .iter()
                    .position(|(t, _, _)| *t == next)
                    .unwrap();
                let (_, id, reply) = self.backend_queue.remove(i);
                self.timed(|core, now| core.handle_input(now, Input::Backend { id, reply }));
            } else {
                self.timed(|core, now| core.handle_timeout(now));
            }
            self.drain();
        }
    }

    pub fn input(&mut self, input: Input) {
        self.timed(|core, now| core.handle_input(now, input));
        self.drain();
    }

    /// Runs `f` on the controller, adding its wall-clock time to [`World::busy`].
    // A measurement of the test's own speed, not virtual time.
    #[allow(clippy::disallowed_methods)]
    fn timed(&mut self, f: impl FnOnce(&mut Controller, Instant)) {
        let start = Instant::now();
        f(&mut self.core, self.now);
        self.busy += start.elapsed();
    }

    /// REGISTER requests sent so far (retransmissions included).
    pub fn registers(&self) -> Vec<&(Duration, SocketAddr, String)> {
        self.sent
            .iter()
            .filter(|(_, _, m)| m.starts_with("REGISTER "))
            .collect()
    }

    pub fn reports_for(&self, id: &str) -> Vec<&StatusReport> {
        self.reports
            .iter()
            .filter(|(_, p, _)| p == id)
            .map(|(_, _, r)| r)
            .collect()
    }

    pub fn last_report(&self, id: &str) -> Option<&StatusReport> {
        self.reports_for(id).last().copied()
    }

    /// The answer to a [`sip_core::Command::LookupDestination`] with `ticket`.
    pub fn destination(&self, ticket: u64) -> Option<&Result<sip_core::Route, sip_core::NoRoute>> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::DestinationFound {
                ticket: t, result, ..
            } if *t == ticket => Some(result),
            _ => None,
        })
    }

    pub fn shutdown_complete(&self) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, Event::ShutdownComplete))
    }
}

/// `n` accounts `{user}{i}` (password `pw`) at a registrar behaving as `behaviour`, and
/// one provider `{id}{i}` for each.
pub fn numbered(
    n: usize,
    user: &str,
    id: &str,
    behaviour: registrar::Behaviour,
) -> (Registrar, Vec<ProviderSpec>) {
    let mut reg = Registrar::new(&[], behaviour);
    let providers = (0..n)
        .map(|i| {
            reg.accounts.insert(format!("{user}{i}"), "pw".to_owned());
            provider(&format!("{id}{i}"), &format!("{user}{i}"), "pw")
        })
        .collect();
    (reg, providers)
}

/// A world whose one provider (`p1`, account `alice`) is registered, after 5 s.
pub fn registered(cfg: Config) -> World {
    let registrar = Registrar::new(&[("alice", "pw")], registrar::Behaviour::default());
    let mut w = World::new(cfg, registrar, vec![provider("p1", "alice", "pw")]);
    w.run_for(Duration::from_secs(5));
    assert_eq!(
        w.last_report("p1").map(|r| r.register_status),
        Some(sip_core::RegisterStatus::Registered)
    );
    w
}

/// The value of header `name` in a message's text (first occurrence).
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

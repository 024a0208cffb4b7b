//! The world around the core in a fuzz run: virtual time, the recent REGISTERs to
//! answer, the pending backend requests and DNS queries, the destination lookups asked
//! for — and the invariants checked after every step.

use super::calls::CallWorld;
use super::ops::{BackendPick, CommandPick, ConfigPick, Op, Script};
use super::pools::{self, Routing, SECRETS};
use sip_core::backend::destination::valid_destination;
use sip_core::message::{parse, Message, Request};
use sip_core::{
    BackendOp, BackendReply, BackendRequest, Command, Config, Controller, Event, Input, NoRoute,
    Output, ResolveQuery, Route, RouteSource, SipTimers,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

/// REGISTERs kept to answer: the core may have several in flight, and answering an old
/// one (a late response) is part of the game.
const KEPT_REGISTERS: usize = 8;

/// Pending backend requests and DNS queries kept: the core forgets timed-out ones, so a
/// reply to one of those is a late reply it must ignore.
const KEPT_PENDING: usize = 32;

/// A drain that does not end is a bug (a queue that refills itself).
const MAX_OUTPUTS_PER_STEP: usize = 100_000;

/// How long inputs count towards the timer bound: a completed transaction lingers T4
/// (5 s) and a backend request lives its timeout plus 1 s.
const RECENT: Duration = Duration::from_secs(70);

/// How a step mutated the core, for the checks that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    /// `handle_timeout(now)`: every timer due at `now` fired.
    Timeout,
    /// `handle_input(now, …)`.
    Input,
}

/// A REGISTER the core sent, parsed, with where it went.
#[derive(Debug, Clone)]
struct SentRegister {
    request: Request,
    remote: SocketAddr,
}

/// The core, the world around it, and what the invariants need to remember.
pub struct World {
    core: Controller,
    now: Instant,
    backend_timeout: Duration,
    registers: VecDeque<SentRegister>,
    backend: VecDeque<BackendRequest>,
    queries: VecDeque<ResolveQuery>,
    last_request_id: u64,
    last_query_id: u64,
    /// `ShutdownComplete` was seen: nothing may follow.
    finished: bool,
    /// When the first shutdown's grace runs out: `ShutdownComplete` must have come by
    /// then.
    shutdown_by: Option<Instant>,
    /// Every provider id handed to the core.
    ids_seen: BTreeSet<String>,
    /// When recent inputs arrived, for the timer bound.
    recent: VecDeque<Instant>,
    /// Per Call-ID: the CSeq and branch of the newest REGISTER.
    cseq_by_call: BTreeMap<String, (u32, String)>,
    /// Per branch: the first bytes sent, so retransmissions can be compared.
    sent_by_branch: BTreeMap<String, Vec<u8>>,
    /// Every step and output as a line, when asked for (tests, reproducing a crash).
    trace: Option<Vec<String>>,
    /// Print each trace line as it happens (so a panic shows what led to it).
    echo: bool,
    /// A peer sent a password of the pool itself: from then on the core may echo it
    /// (a 200 to OPTIONS copies Via and From; a dropped message's reason quotes it)
    /// without leaking anything, so the secret checks stop.
    secrets_public: bool,
    /// Hashes of the datagrams already checked.
    checked_payloads: BTreeSet<u64>,
    /// Call routing, when the tape turned it on.
    routing: Option<Routing>,
    /// The next `LookupDestination` ticket (tickets are never reused).
    next_ticket: u64,
    /// Tickets not answered yet: the DID asked for and when.
    tickets: BTreeMap<u64, (String, Instant)>,
    /// The default destination domain as the events told it.
    domain: Option<String>,
    /// Every destination URI the backend gave, per DID: a backend route must be one.
    given_routes: BTreeMap<String, BTreeSet<String>>,
    /// The `livekitDomain` of the config reply being delivered in this step.
    config_sent: Option<String>,
    /// The calls, in call mode.
    calls: Option<CallWorld>,
    /// How long calls may drain after a shutdown.
    call_drain: Duration,
}

impl World {
    /// A core built from the configuration choice, after its first drain.
    pub fn new(pick: ConfigPick) -> Self {
        let backend_timeout =
            pools::pick(pools::BACKEND_TIMEOUTS, pick.backend_timeout).unwrap_or_default();
        let routing = pools::routing(&pick);
        let mut cfg = Config {
            local_port: 5060,
            contact_host: pools::pick(pools::CONTACTS, pick.contact)
                .flatten()
                .map(str::to_owned),
            register_rate: pools::pick(pools::RATES, pick.rate).unwrap_or(200),
            sync_interval: pools::pick(pools::SYNCS, pick.sync).flatten(),
            max_reports_in_flight: pools::pick(pools::REPORTS, pick.reports).unwrap_or(32),
            backend_timeout,
            timers: SipTimers::default(),
            ..Config::default()
        };
        if let Some(r) = &routing {
            cfg.routes_from_backend = true;
            cfg.default_domain = r.default_domain.map(str::to_owned);
            cfg.fixed_routes = r.fixed.clone();
            cfg.route_lookup_timeout = r.timeout;
        }
        // Call mode implies routing (both need config byte 3's bit 7).
        let calls = CallWorld::new(&pick);
        if let Some(c) = &calls {
            c.configure(&mut cfg);
        }
        let call_drain = cfg.calls.drain;
        // A fixed wall anchor: the run must depend on the tape only.
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let now = Instant::now();
        let core = Controller::new(cfg, 7, now, wall);
        let mut world = Self {
            core,
            now,
            backend_timeout,
            registers: VecDeque::new(),
            backend: VecDeque::new(),
            queries: VecDeque::new(),
            last_request_id: 0,
            last_query_id: 0,
            finished: false,
            shutdown_by: None,
            ids_seen: BTreeSet::new(),
            recent: VecDeque::new(),
            cseq_by_call: BTreeMap::new(),
            sent_by_branch: BTreeMap::new(),
            trace: None,
            echo: false,
            secrets_public: false,
            checked_payloads: BTreeSet::new(),
            domain: routing
                .as_ref()
                .and_then(|r| r.effective_domain)
                .map(str::to_owned),
            routing,
            next_ticket: 1,
            tickets: BTreeMap::new(),
            given_routes: BTreeMap::new(),
            config_sent: None,
            calls,
            call_drain,
        };
        assert_eq!(
            world.core.default_domain(),
            world.domain.as_deref(),
            "the configured default domain was not taken as it should be (trimmed, or \
             refused when it has control characters or URI delimiters)"
        );
        world.drain(Mutation::Input);
        world
    }

    /// Runs a whole script, then shuts down and checks that the shutdown completes.
    pub fn run(script: &Script) {
        let mut world = Self::new(script.config);
        for op in &script.ops {
            world.apply(op);
        }
        world.shut_down();
    }

    /// Like [`World::run`], and returns every step and output as a line: for tests, and
    /// to read what a crashing input did (`cargo run --example replay`).
    pub fn trace(script: &Script) -> Vec<String> {
        let mut world = Self::new(script.config);
        world.trace = Some(Vec::new());
        for op in &script.ops {
            world.note(|| format!("step {op:?}"));
            world.apply(op);
        }
        world.note(|| "end of tape: shutting down".to_owned());
        world.shut_down();
        world.trace.unwrap_or_default()
    }

    /// Runs a whole script printing every step and output as it happens, so that a
    /// failing invariant's panic comes right after the steps that led to it.
    pub fn replay(script: &Script) {
        let mut world = Self::new(script.config);
        world.echo = true;
        for op in &script.ops {
            world.note(|| format!("step {op:?}"));
            world.apply(op);
        }
        world.note(|| "end of tape: shutting down".to_owned());
        world.shut_down();
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.echo {
            println!("{}", line());
        } else if let Some(t) = self.trace.as_mut() {
            t.push(line());
        }
    }

    /// One step: one mutation of the core, then a full drain with every check.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Advance { amount, scale } => {
                let unit = pools::pick(pools::SCALES, *scale).unwrap_or_default();
                self.now += unit * u32::from(*amount);
                self.timeout();
            }
            Op::Deadline => {
                if let Some(at) = self.core.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.timeout();
            }
            Op::Respond {
                which,
                reply,
                mutations,
                twice,
            } => {
                let call_answer = match &self.calls {
                    Some(calls) if *which >= 0x80 => Some(calls.answer(*which & 0x7F, reply)),
                    _ => None,
                };
                let (remote, mut bytes) = match call_answer {
                    Some(Some(answer)) => answer,
                    Some(None) => return,
                    None => {
                        let Some(sent) = nth_newest(&self.registers, *which).cloned() else {
                            return;
                        };
                        (sent.remote, pools::response(&sent.request, reply))
                    }
                };
                for m in mutations {
                    m.apply(&mut bytes);
                }
                let unmutated = mutations.is_empty();
                self.deliver(remote, bytes.clone(), unmutated);
                if *twice {
                    self.deliver(remote, bytes, unmutated);
                }
            }
            Op::Raw(bytes) => self.deliver(peer(), bytes.clone(), false),
            Op::Request {
                kind,
                mutations,
                twice,
            } => {
                let (remote, mut bytes, twice) = match self.calls.as_mut() {
                    Some(calls) => match calls.request(*kind) {
                        Some((remote, bytes)) => (remote, bytes, *twice),
                        None => return,
                    },
                    // Before call mode a request went once, whatever the flag.
                    None => (peer(), pools::request(*kind), false),
                };
                for m in mutations {
                    m.apply(&mut bytes);
                }
                let unmutated = mutations.is_empty();
                self.deliver(remote, bytes.clone(), unmutated);
                if twice {
                    self.deliver(remote, bytes, unmutated);
                }
            }
            Op::Backend { which, reply } => {
                let Some(req) = take_nth(&mut self.backend, *which) else {
                    return;
                };
                if let Some(reply) = pools::route_reply(&req.op, reply) {
                    match &reply {
                        BackendReply::Config { livekit_domain } => {
                            let domain = livekit_domain.clone().unwrap_or_default();
                            self.secrets_public |= contains_secret(domain.as_bytes());
                            self.config_sent = livekit_domain.clone();
                        }
                        BackendReply::Destination { uri } => {
                            self.secrets_public |= contains_secret(uri.as_bytes());
                            if let BackendOp::LookupDestination { did } = &req.op {
                                self.given_routes
                                    .entry(did.clone())
                                    .or_default()
                                    .insert(uri.clone());
                            }
                        }
                        _ => {}
                    }
                    self.input(Input::Backend { id: req.id, reply });
                    self.config_sent = None;
                    return;
                }
                let reply = match reply {
                    BackendPick::Providers(list) => {
                        let specs: Vec<_> = list.iter().map(pools::provider).collect();
                        self.ids_seen.extend(specs.iter().map(|s| s.id.clone()));
                        // A password copied into a field that is shown (the id, the
                        // user name …) is shown legitimately.
                        self.secrets_public |= specs.iter().any(|s| {
                            let mut shown = s.clone();
                            shown.password = sip_core::Secret::default();
                            contains_secret(format!("{shown:?}").as_bytes())
                        });
                        BackendReply::Providers(specs)
                    }
                    BackendPick::Delivered => BackendReply::Delivered,
                    BackendPick::NotFound => BackendReply::NotFound,
                    BackendPick::Unauthorized(s) => BackendReply::Unauthorized {
                        status: if s % 2 == 0 { 401 } else { 403 },
                    },
                    BackendPick::Failed => BackendReply::Failed("backend answered HTTP 503".into()),
                };
                self.input(Input::Backend { id: req.id, reply });
            }
            Op::Resolve { which, answer } => {
                let Some(q) = take_nth(&mut self.queries, *which) else {
                    return;
                };
                self.input(Input::Resolved {
                    id: q.id,
                    result: pools::answer(q.kind, *answer),
                });
            }
            Op::Command(c) => {
                let cmd = match c {
                    CommandPick::Resync => Command::Resync,
                    CommandPick::Reregister(id) => {
                        // With routing on, the same pick also asks where a call to a
                        // DID goes (no tape byte more: old tapes mean what they meant).
                        self.command(Command::Reregister {
                            id: pools::provider_id(id),
                        });
                        if self.routing.is_some() {
                            self.lookup(pools::did(id));
                        }
                        return;
                    }
                    CommandPick::Shutdown { grace_centis } => Command::Shutdown {
                        grace: Duration::from_millis(u64::from(*grace_centis) * 10),
                    },
                };
                self.command(cmd);
            }
        }
    }

    /// Asks for a shutdown (if none was asked for) and runs the clock until the core
    /// says it is complete, which its grace guarantees.
    pub fn shut_down(&mut self) {
        self.command(Command::Shutdown {
            grace: Duration::from_secs(5),
        });
        for _ in 0..10_000 {
            if self.finished {
                break;
            }
            let Some(at) = self.core.poll_timeout() else {
                break;
            };
            self.now = self.now.max(at);
            self.timeout();
        }
        assert!(
            self.finished,
            "shutdown never completed: no ShutdownComplete and deadline {:?}",
            self.core
                .poll_timeout()
                .map(|at| at.saturating_duration_since(self.now))
        );
        if let Some(calls) = &self.calls {
            calls.at_end(&self.core);
        }
    }

    fn lookup(&mut self, did: String) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.secrets_public |= contains_secret(did.as_bytes());
        self.tickets.insert(ticket, (did.clone(), self.now));
        self.command(Command::LookupDestination { did, ticket });
    }

    fn command(&mut self, cmd: Command) {
        let first_shutdown = match &cmd {
            Command::Shutdown { grace } if self.shutdown_by.is_none() && !self.finished => {
                Some(*grace)
            }
            _ => None,
        };
        if let Some(grace) = first_shutdown {
            self.shutdown_by = Some(self.now + grace);
        }
        self.input(Input::Command(cmd));
        if let Some(grace) = first_shutdown {
            // The grace, or longer while calls drain: never more than CALL_DRAIN and
            // the BYEs' allowance.
            let drain = self.call_drain + sip_core::controller::CALL_HANGUP_ALLOWANCE;
            let bound = self.now + grace.max(drain);
            if let Some(ends) = self.core.shutdown_ends_at() {
                assert!(ends <= bound, "the shutdown ends after grace and drain");
                if !self.finished {
                    self.shutdown_by = Some(ends);
                }
            }
        }
    }

    /// Delivers a datagram; `unmutated` when it is exactly what its builder made.
    fn deliver(&mut self, remote: SocketAddr, payload: Vec<u8>, unmutated: bool) {
        self.secrets_public |= contains_secret(&payload);
        if let (Some(calls), false) = (self.calls.as_mut(), self.finished) {
            calls.on_delivered(remote, &payload, self.now, unmutated);
        }
        self.input(Input::Datagram {
            local: local(),
            remote,
            payload,
        });
    }

    fn input(&mut self, input: Input) {
        self.recent.push_back(self.now);
        self.core.handle_input(self.now, input);
        self.drain(Mutation::Input);
    }

    fn timeout(&mut self) {
        self.core.handle_timeout(self.now);
        self.drain(Mutation::Timeout);
        if let Some(by) = self.shutdown_by {
            assert!(
                self.now < by || self.finished,
                "the shutdown grace ran out {:?} ago without ShutdownComplete",
                self.now.saturating_duration_since(by)
            );
        }
        // A caller hears silence while its destination is looked up: every ticket is
        // answered when the lookup timeout has passed (a ticket that joined a lookup
        // already in flight sooner), unless the core has shut down first.
        if let (Some(r), false) = (&self.routing, self.finished) {
            for (ticket, (did, asked)) in &self.tickets {
                assert!(
                    self.now < *asked + r.timeout,
                    "ticket {ticket} ({did:?}) still unanswered {:?} after it was asked \
                     (route_lookup_timeout {:?})",
                    self.now.saturating_duration_since(*asked),
                    r.timeout
                );
            }
        }
    }

    /// Drains every output and checks the invariants.
    fn drain(&mut self, after: Mutation) {
        let mut n = 0;
        let deadline = loop {
            n += 1;
            assert!(
                n <= MAX_OUTPUTS_PER_STEP,
                "poll_output did not reach Timeout after {MAX_OUTPUTS_PER_STEP} outputs"
            );
            let output = self.core.poll_output();
            if self.finished {
                assert_eq!(
                    output,
                    Output::Timeout(None),
                    "output after ShutdownComplete"
                );
            }
            self.note(|| format!("  -> {output:?}"));
            match output {
                Output::Timeout(at) => break at,
                Output::Transmit(t) => self.on_transmit(t.remote, &t.payload),
                Output::Backend(req) => self.on_backend(req),
                Output::Resolve(q) => self.on_resolve(q),
                // No stream peers in this world yet: every connection is refused (a
                // TCP provider fails and backs off).
                Output::Connect(c) => self.core.handle_input(
                    self.now,
                    Input::Closed {
                        conn: c.conn,
                        error: Some("connection refused".to_owned()),
                    },
                ),
                Output::Close { conn } => panic!("{conn} closed, but none was accepted"),
                Output::Event(e) => self.on_event(&e),
            }
        };
        assert_eq!(
            deadline,
            self.core.poll_timeout(),
            "Output::Timeout and poll_timeout disagree"
        );
        if let Some(at) = deadline {
            match after {
                Mutation::Timeout => assert!(
                    at > self.now,
                    "after handle_timeout the next deadline is not in the future ({:?} late)",
                    self.now.saturating_duration_since(at)
                ),
                Mutation::Input => assert!(
                    at >= self.now,
                    "after handle_input the next deadline is in the past ({:?} late)",
                    self.now.saturating_duration_since(at)
                ),
            }
        }
        if self.finished {
            assert_eq!(self.core.poll_timeout(), None, "a timer after shutdown");
        }
        assert_eq!(
            self.core.default_domain(),
            self.domain.as_deref(),
            "the default domain changed without DefaultDomainChanged"
        );
        self.check_timer_bound();
    }

    /// Timers are bounded by what can legitimately be armed: per provider a
    /// registration timer, a transaction and a status retry; per recent input a
    /// lingering transaction or a backend deadline; a few global ones. A timer per
    /// resync or per refresh (the old controller's bug) grows past this.
    ///
    /// Routing needs no change here: a destination lookup's deadline belongs to a
    /// backend request, and every request counts as a recent input (`on_backend`)
    /// and lives at most `route_lookup_timeout` (≤ 10 s here, well inside [`RECENT`]);
    /// the config retry is one more global timer (sync, config retry, rate limit and
    /// the two shutdown timers make 5 of the 8).
    fn check_timer_bound(&mut self) {
        while self.recent.front().is_some_and(|t| {
            self.now.saturating_duration_since(*t) > RECENT.max(self.backend_timeout * 2)
        }) {
            self.recent.pop_front();
        }
        // A call holds its own timers for as long as it lasts (the longest-call timer,
        // a 2xx resend and its ACK wait, a transaction per leg): 8 is ample.
        let bound =
            8 + 4 * self.ids_seen.len() + 2 * self.recent.len() + 8 * self.core.active_calls();
        let count = self.core.timer_count();
        assert!(
            count <= bound,
            "{count} timers armed, more than {bound} ({} providers seen, {} recent inputs)",
            self.ids_seen.len(),
            self.recent.len()
        );
    }

    fn on_transmit(&mut self, remote: SocketAddr, payload: &[u8]) {
        assert!(
            pools::known_destination(remote.ip()) && remote.port() != 0,
            "a datagram to {remote}, which no provider or DNS answer named"
        );
        // Retransmissions repeat bytes already checked: skip them, the checks below
        // (a parse above all) are most of a run's time.
        let digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            payload.hash(&mut h);
            h.finish()
        };
        if !self.checked_payloads.insert(digest) {
            return;
        }
        self.assert_no_secret(payload, "a transmitted datagram");
        let message = match parse(payload) {
            Ok(m) => m,
            Err(e) => panic!(
                "the core sent a datagram its own parser rejects ({e}): {:?}",
                String::from_utf8_lossy(payload)
            ),
        };
        for name in ["Authorization", "Proxy-Authorization"] {
            for value in message.headers().get_all(name) {
                assert!(
                    value.starts_with("Digest "),
                    "{name} is not Digest: {value:?}"
                );
            }
        }
        if let Some(calls) = self.calls.as_mut() {
            calls.on_sent(remote, &message, payload, self.now);
        }
        let Message::Request(request) = message else {
            return;
        };
        if request.method != "REGISTER" {
            return;
        }
        self.check_register(&request, payload);
        self.registers.push_back(SentRegister { request, remote });
        if self.registers.len() > KEPT_REGISTERS {
            self.registers.pop_front();
        }
    }

    /// One Call-ID per registration with a rising CSeq; a retransmission is the same
    /// bytes as the first send of its branch.
    fn check_register(&mut self, request: &Request, payload: &[u8]) {
        let h = &request.headers;
        let (Some(call_id), Some((cseq, method)), Some(branch)) =
            (h.call_id(), h.cseq(), h.top_via().and_then(|v| v.branch))
        else {
            panic!("a REGISTER without Call-ID, CSeq or Via branch: {request:?}");
        };
        assert_eq!(method, "REGISTER", "CSeq method of a REGISTER");
        assert!(
            branch.starts_with("z9hG4bK"),
            "branch {branch:?} lacks the magic cookie"
        );
        if let Some(first) = self.sent_by_branch.get(&branch) {
            assert_eq!(
                first.as_slice(),
                payload,
                "a retransmission differs from the first send of branch {branch}"
            );
            return;
        }
        if self.sent_by_branch.len() > 4096 {
            self.sent_by_branch.clear();
        }
        self.sent_by_branch.insert(branch.clone(), payload.to_vec());
        if let Some((last, _)) = self.cseq_by_call.get(call_id) {
            assert!(
                cseq > *last,
                "CSeq {cseq} after {last} in registration {call_id}: a new REGISTER must count up"
            );
        }
        self.cseq_by_call.insert(call_id.to_owned(), (cseq, branch));
    }

    fn on_backend(&mut self, req: BackendRequest) {
        assert!(
            req.id.0 > self.last_request_id,
            "backend request id {} after {}: ids must be fresh",
            req.id.0,
            self.last_request_id
        );
        self.last_request_id = req.id.0;
        match &req.op {
            BackendOp::ReportStatus {
                provider_id,
                report,
            } => {
                assert!(
                    self.ids_seen.contains(provider_id),
                    "a status report for {provider_id:?}, which no provider list named"
                );
                self.assert_no_secret(format!("{report:?}").as_bytes(), "a status report");
            }
            BackendOp::FetchConfig => {
                assert!(
                    self.routing.is_some(),
                    "FetchConfig with routes_from_backend off"
                );
                assert!(!self.core.shutting_down(), "FetchConfig during a shutdown");
            }
            BackendOp::LookupDestination { did } => self.check_lookup_request(did),
            BackendOp::FetchProviders => {}
        }
        self.recent.push_back(self.now);
        self.backend.push_back(req);
        if self.backend.len() > KEPT_PENDING {
            self.backend.pop_front();
        }
    }

    fn on_resolve(&mut self, q: ResolveQuery) {
        assert!(
            q.id.0 > self.last_query_id,
            "query id {} after {}: ids must be fresh",
            q.id.0,
            self.last_query_id
        );
        self.last_query_id = q.id.0;
        assert!(!q.host.is_empty(), "a DNS query for the empty name");
        self.queries.push_back(q);
        if self.queries.len() > KEPT_PENDING {
            self.queries.pop_front();
        }
    }

    fn on_event(&mut self, e: &Event) {
        self.assert_no_secret(format!("{e:?}").as_bytes(), "an event");
        match e {
            Event::ShutdownComplete => {
                assert!(
                    self.shutdown_by.is_some(),
                    "ShutdownComplete without a shutdown command"
                );
                self.finished = true;
            }
            Event::DestinationFound {
                ticket,
                did,
                result,
            } => self.on_destination_found(*ticket, did, result),
            // A ticket's, or a call's (an INVITE on the tape: in progress or counted).
            Event::DestinationFallback { did, .. } => assert!(
                self.tickets.values().any(|(d, _)| d == did)
                    || self.core.active_calls() > 0
                    || self.core.stats().calls.values().sum::<u64>() > 0,
                "DestinationFallback for {did:?}, which no waiting ticket or call asked for"
            ),
            Event::DefaultDomainChanged { domain } => self.on_domain_changed(domain),
            _ => {}
        }
    }

    /// The core asks the backend about a DID only with routing on, only for a DID it
    /// can route, and once per DID at a time: the ticket asked for just now is the only
    /// one waiting for this DID (later ones share its request), or none for a call's.
    fn check_lookup_request(&self, did: &str) {
        let Some(r) = &self.routing else {
            panic!("LookupDestination for {did:?} with routes_from_backend off");
        };
        assert!(dialable(did), "a backend lookup for undialable {did:?}");
        assert!(
            !r.fixed.contains_key(did),
            "a backend lookup for {did:?}, which has a fixed route"
        );
        let waiting: Vec<u64> = self
            .tickets
            .iter()
            .filter(|(_, (d, _))| d == did)
            .map(|(t, _)| *t)
            .collect();
        // No ticket waiting: a call's own lookup (an INVITE on the tape); otherwise the
        // ticket asked for just now is the only one.
        assert!(
            waiting.is_empty() || waiting == vec![self.next_ticket - 1],
            "a second backend lookup for {did:?} while tickets {waiting:?} wait for it"
        );
    }

    /// Every ticket is answered once, for the DID it asked about, with a route the
    /// core may use: a valid `sip:`/`sips:` URI, the fixed one, one the backend gave
    /// for this DID, or `sip:{did}@{default domain}`.
    fn on_destination_found(&mut self, ticket: u64, did: &str, result: &Result<Route, NoRoute>) {
        let Some((asked, _)) = self.tickets.remove(&ticket) else {
            panic!(
                "DestinationFound for ticket {ticket} ({did:?}), which {}",
                if ticket >= self.next_ticket || ticket == 0 {
                    "was never asked for"
                } else {
                    "was answered already"
                }
            );
        };
        assert_eq!(did, asked, "ticket {ticket} answered for another DID");
        let fixed = self
            .routing
            .as_ref()
            .and_then(|r| r.fixed.get(did).cloned());
        match result {
            Ok(route) => {
                assert!(
                    valid_destination(&route.uri)
                        && route.uri.chars().all(|c| c.is_ascii_graphic()),
                    "ticket {ticket} ({did:?}) routed to unusable {route:?}"
                );
                assert!(dialable(did), "undialable {did:?} routed to {route:?}");
                match route.source {
                    RouteSource::Fixed => assert_eq!(
                        Some(&route.uri),
                        fixed.as_ref(),
                        "a fixed route for {did:?} that the configuration does not have"
                    ),
                    RouteSource::Backend => assert!(
                        fixed.is_none()
                            && self
                                .given_routes
                                .get(did)
                                .is_some_and(|uris| uris.contains(&route.uri)),
                        "a backend route for {did:?} the backend never gave: {route:?}"
                    ),
                    RouteSource::Default | RouteSource::Fallback => {
                        let domain = self.domain.as_deref().unwrap_or_default();
                        assert!(
                            fixed.is_none() && route.uri == format!("sip:{did}@{domain}"),
                            "a default route for {did:?} that is not sip:{{did}}@{{default \
                             domain {:?}}} (or overrides a fixed one): {route:?}",
                            self.domain
                        );
                    }
                }
                assert!(
                    !route.cached
                        || matches!(route.source, RouteSource::Backend | RouteSource::Default),
                    "only backend answers are cached: {route:?}"
                );
            }
            Err(NoRoute::BadDid { did: bad }) => {
                assert_eq!(bad, did, "BadDid names another DID");
                assert!(!dialable(did), "dialable {did:?} refused as BadDid");
            }
            Err(NoRoute::NoDefault { did: none }) => {
                assert_eq!(none, did, "NoDefault names another DID");
                assert!(
                    dialable(did) && fixed.is_none() && self.domain.is_none(),
                    "NoDefault for {did:?} with default domain {:?}",
                    self.domain
                );
            }
        }
    }

    /// The default domain changes only to the trimmed `livekitDomain` of the config
    /// reply delivered now, only when it differs, and never to something that cannot
    /// follow `sip:{did}@`.
    fn on_domain_changed(&mut self, domain: &str) {
        assert!(
            self.routing.is_some(),
            "DefaultDomainChanged with routing off"
        );
        assert_eq!(
            self.config_sent.as_deref().map(str::trim),
            Some(domain),
            "DefaultDomainChanged to {domain:?}, not the livekitDomain just delivered"
        );
        assert!(
            !domain.is_empty()
                && domain
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '@' | '<' | '>' | '"' | '?')),
            "an unusable default domain {domain:?}"
        );
        assert_ne!(
            self.domain.as_deref(),
            Some(domain),
            "DefaultDomainChanged to the domain already in use"
        );
        self.domain = Some(domain.to_owned());
    }
}

/// A DID the core can put in `sip:{did}@…`: 1 to 64 letters, digits, `+`, `*`, `#`,
/// `-` or `.` (the rule `NoRoute::BadDid` states).
fn dialable(did: &str) -> bool {
    !did.is_empty()
        && did.len() <= 64
        && did
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '-' | '.'))
}

impl World {
    fn assert_no_secret(&self, bytes: &[u8], what: &str) {
        assert!(
            self.secrets_public || !contains_secret(bytes),
            "a password appears in {what}"
        );
    }
}

fn contains_secret(bytes: &[u8]) -> bool {
    SECRETS
        .iter()
        .any(|secret| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
}

fn local() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 5060))
}

fn peer() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 5090))
}

fn nth_newest<T>(items: &VecDeque<T>, which: u8) -> Option<&T> {
    let len = items.len();
    if len == 0 {
        return None;
    }
    items.get(len - 1 - usize::from(which) % len)
}

fn take_nth<T>(items: &mut VecDeque<T>, which: u8) -> Option<T> {
    let len = items.len();
    if len == 0 {
        return None;
    }
    items.remove(usize::from(which) % len)
}

//! The discrete-event loop (quinn's `Pair`, str0m's `progress`): find the earliest
//! pending thing — a packet or backend answer in flight, a scheduled fault, the core's
//! deadline, a registrar's deadline — move virtual time there, feed it in, drain every
//! output into the network, check the safety invariants. Ties go to the queue first (in
//! insertion order), then the core, then registrars by index.
//!
//! A run has phases: faults until `heal_at`; then healed links for the convergence time;
//! a quiet moment; the liveness checks; an explicit resync of the unchanged list; and,
//! when the scenario asks, a graceful shutdown and its checks.

mod faults;
mod peers;
mod route;
mod streams;

use crate::check::backend::BackendChecks;
use crate::check::register::RegisterChecks;
use crate::check::secrets::SecretScan;
use crate::check::streams::StreamChecks;
use crate::check::{liveness, Findings, Invariant, KnownIssues};
use crate::clock::VirtualClock;
use crate::journal::Journal;
use crate::models::backend::Backend;
use crate::models::registrar::{Mode, Registrar};
use crate::net::Link;
use crate::queue::EventQueue;
use crate::report::{Report, RunStats};
use crate::rng::{SimRng, Streams};
use crate::scenario::{registrar_addr, registrar_host, ProviderDef, Scenario};
use crate::trace::{Trace, TraceEvent, TraceMode};
use sip_core::{
    BackendOp, BackendReply, Command, Controller, Input, QueryId, RequestId, Resolution,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// How a run is observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// How much trace to keep.
    pub trace: TraceMode,
    /// Stop at the first violation (sweeps, proptest) or run to the end (snapshots).
    pub stop_at_first: bool,
    /// Keep every PATCH in the backend model (off for long benchmarks).
    pub keep_patch_log: bool,
    /// Known core issues to tolerate (none by default: strict).
    pub known: KnownIssues,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            trace: TraceMode::Hash,
            stop_at_first: true,
            keep_patch_log: true,
            known: KnownIssues::none(),
        }
    }
}

/// Something in flight or scheduled.
#[derive(Debug)]
enum Pending {
    ToRegistrar {
        index: usize,
        bytes: Vec<u8>,
    },
    ToCore {
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    BackendArrives {
        id: RequestId,
        op: BackendOp,
    },
    BackendReply {
        id: RequestId,
        reply: BackendReply,
    },
    DnsAnswer {
        id: QueryId,
        result: Result<Resolution, String>,
    },
    ToPeer {
        index: usize,
        bytes: Vec<u8>,
    },
    PlaceCall(usize),
    Fault(usize),
    Heal,
    /// Reaches the registrar end of a connection.
    StreamToRegistrar {
        conn: u64,
        item: streams::ToPeer,
    },
    /// Reaches the core's end of a connection.
    StreamToCore {
        conn: u64,
        item: streams::ToCore,
    },
    /// The core reads what arrived on a connection.
    StreamRead {
        conn: u64,
    },
    /// A partition may have held a connection's bytes for too long.
    StreamGiveUp {
        conn: u64,
    },
    /// A re-registration after a connection drop is due.
    CheckReregister(usize),
}

impl Pending {
    /// Traffic (as opposed to schedule entries and checks): the run is quiet when none
    /// is left.
    fn is_traffic(&self) -> bool {
        !matches!(
            self,
            Self::Fault(_)
                | Self::Heal
                | Self::PlaceCall(_)
                | Self::StreamGiveUp { .. }
                | Self::CheckReregister(_)
        )
    }
}

/// What the current step made the core do (for the unchanged-resync check).
#[derive(Debug, Default, Clone, Copy)]
struct StepWork {
    registers: u32,
    reports: u32,
    changes: u32,
}

/// Steps at one instant before the run counts as livelocked.
const MAX_STEPS_AT_ONE_INSTANT: u64 = 200_000;

/// One simulated world and the core inside it.
pub struct Sim {
    scenario: Scenario,
    options: RunOptions,
    clock: VirtualClock,
    net_rng: SimRng,
    queue: EventQueue<Pending>,
    core: Controller,
    core_deadline: Option<Instant>,
    registrars: Vec<Registrar>,
    registrar_deadline: Vec<Option<Instant>>,
    registrar_deadlines: BTreeSet<(Instant, usize)>,
    links: Vec<Link>,
    backend_link: Link,
    backend: Backend,
    providers: Vec<(ProviderDef, bool)>,
    by_addr: BTreeMap<SocketAddr, usize>,
    dns: BTreeMap<String, IpAddr>,
    healthy_since: Vec<Option<Instant>>,
    findings: Findings,
    register: RegisterChecks,
    backend_checks: BackendChecks,
    secrets: SecretScan,
    trace: Trace,
    /// Kept with the full trace only.
    journal: Option<Journal>,
    shutdown_started: Option<Instant>,
    shutdown_completed: Option<Instant>,
    work: StepWork,
    stats: RunStats,
    timer_bound: usize,
    txn_bound: usize,
    same_instant_steps: u64,
    last_instant: Option<Instant>,
    peers: peers::Peers,
    streams: streams::Streams,
    stream_checks: StreamChecks,
    /// The last provider-list change or operator command (obligations made before it
    /// are void: the workload moved under them).
    last_workload_change: Option<Instant>,
    /// 64·T1: how long a REGISTER transaction may last.
    register_span: Duration,
}

impl Sim {
    /// Builds the world of `scenario`. The only real clock read of the run happens here.
    pub fn new(scenario: Scenario, options: RunOptions) -> Self {
        let mut streams = Streams::split(scenario.seed);
        let clock = VirtualClock::new();
        let mut registrars = Vec::new();
        let mut links = Vec::new();
        let mut by_addr = BTreeMap::new();
        let mut dns = BTreeMap::new();
        for (i, def) in scenario.registrars.iter().enumerate() {
            registrars.push(Registrar::new(
                def.config.clone(),
                streams.models.next_u64(),
            ));
            links.push(Link::new(def.link.clone()));
            by_addr.insert(registrar_addr(i), i);
            dns.insert(registrar_host(i), registrar_addr(i).ip());
        }
        let mut accounts = BTreeMap::new();
        let mut transports = BTreeMap::new();
        let served_by = scenario.registrars_by_provider();
        for (p, regs) in scenario.providers.iter().zip(served_by) {
            for reg in regs {
                if let Some(r) = registrars.get_mut(reg) {
                    r.add_account(&p.username, &p.password);
                }
                accounts.insert((reg, p.username.clone()), p.id.clone());
                transports.insert((reg, p.username.clone()), p.sip_transport());
            }
        }
        let stream_checks = StreamChecks::new(transports, scenario.stream_targets().len());
        let providers: Vec<(ProviderDef, bool)> = scenario
            .providers
            .iter()
            .map(|p| (p.clone(), p.listed))
            .collect();
        let mut backend = Backend::new(Vec::new());
        backend.keep_patch_log(options.keep_patch_log);
        let mut cfg = scenario.core.to_config();
        (cfg.fixed_routes, cfg.default_domain) = scenario.route_config();
        let peers = peers::Peers::new(&scenario, &mut streams.models, &mut dns);
        let journal = (options.trace == TraceMode::Full).then(|| Journal::new(accounts.clone()));
        let cfg_t1 = cfg.timers.t1;
        let register = RegisterChecks::new(cfg.timers.t1, accounts, options.known);
        let backend_checks = BackendChecks::new(cfg.backend_timeout, cfg.max_reports_in_flight);
        let secrets = SecretScan::new(
            scenario
                .providers
                .iter()
                .map(|p| p.password.as_str())
                .chain([crate::scenario::LIVEKIT_PASSWORD]),
        );
        let n = scenario.providers.len();
        let core = Controller::new(cfg, streams.core_seed, clock.now(), clock.wall_origin());
        let now = clock.now();
        let mut sim = Self {
            options,
            clock,
            net_rng: streams.net,
            queue: EventQueue::new(),
            core,
            core_deadline: None,
            registrar_deadline: vec![None; registrars.len()],
            registrar_deadlines: BTreeSet::new(),
            healthy_since: vec![Some(now); registrars.len()],
            registrars,
            links,
            backend_link: Link::new(scenario.backend_link.clone()),
            backend,
            providers,
            by_addr,
            dns,
            findings: Findings::default(),
            register,
            backend_checks,
            secrets,
            trace: Trace::new(options.trace),
            journal,
            shutdown_started: None,
            shutdown_completed: None,
            work: StepWork::default(),
            stats: RunStats::default(),
            // Each call holds a few timers of its own and of its transactions.
            timer_bound: 4 * n + 64 + 16 * scenario.calls.len(),
            txn_bound: 2 * n + 8,
            same_instant_steps: 0,
            last_instant: None,
            peers,
            streams: streams::Streams::new(scenario.registrars.len(), scenario.seed, now),
            stream_checks,
            last_workload_change: None,
            register_span: cfg_t1 * 64,
            scenario,
        };
        sim.publish_providers();
        for i in 0..sim.registrars.len() {
            sim.refresh_health(i);
        }
        for (i, s) in sim.scenario.faults.iter().enumerate() {
            if s.at < sim.scenario.heal_at {
                sim.queue.push(sim.clock.at(s.at), Pending::Fault(i));
            }
        }
        for (i, c) in sim.scenario.calls.iter().enumerate() {
            if c.at < sim.scenario.heal_at {
                sim.queue.push(sim.clock.at(c.at), Pending::PlaceCall(i));
            }
        }
        sim.queue
            .push(sim.clock.at(sim.scenario.heal_at), Pending::Heal);
        sim.drain();
        sim
    }

    /// Runs every phase, catching panics; returns the report.
    pub fn run(mut self) -> Report {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.run_phases()));
        if let Err(payload) = outcome {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            self.findings.set_time(self.clock.elapsed());
            self.findings.push(Invariant::Panic, msg);
        }
        self.report()
    }

    fn failed(&self) -> bool {
        self.options.stop_at_first && !self.findings.is_empty()
    }

    fn run_phases(&mut self) {
        let end = self.scenario.heal_at + self.scenario.convergence();
        self.run_until(self.clock.at(end));
        if self.failed() {
            return;
        }
        self.run_until_quiet(Duration::from_secs(300));
        self.phase("liveness check");
        self.check_liveness();
        if self.failed() {
            return;
        }
        // An explicit resync of the unchanged list: the reply step must cause nothing.
        self.phase("resync (list unchanged)");
        self.command(Command::Resync);
        self.run_until_quiet(Duration::from_secs(60));
        if self.failed() {
            return;
        }
        if let Some(grace) = self.scenario.shutdown_grace {
            self.phase("shutdown");
            let started = self.clock.now();
            self.shutdown_started = Some(started);
            self.command(Command::Shutdown { grace });
            self.run_until(started + grace + Duration::from_secs(5));
            if self.failed() {
                return;
            }
            self.findings.set_time(self.clock.elapsed());
            if self.shutdown_completed.is_none() {
                self.findings.push(
                    Invariant::ShutdownIncomplete,
                    format!("no ShutdownComplete within the {grace:?} grace"),
                );
            }
            self.run_until_quiet(Duration::from_secs(10));
            self.phase("shutdown check");
            let world = self.liveness_world();
            let mut f = std::mem::take(&mut self.findings);
            liveness::check_shutdown(&mut f, &world.borrow(self));
            self.tolerate_unknown_outcomes(&mut f);
            self.findings = f;
        }
    }

    fn phase(&mut self, name: &str) {
        let at = self.clock.elapsed();
        self.trace.record(at, TraceEvent::Phase(name));
    }

    fn command(&mut self, cmd: Command) {
        let now = self.clock.now();
        self.core.handle_input(now, Input::Command(cmd));
        self.drain();
    }

    /// Steps until `until` (or until the first violation when stopping early).
    fn run_until(&mut self, until: Instant) {
        while self.step(until) {
            if self.failed() {
                return;
            }
        }
    }

    /// Steps until no SIP or backend traffic is in flight, at most `limit` longer.
    fn run_until_quiet(&mut self, limit: Duration) {
        let until = self.clock.now() + limit;
        loop {
            let now = self.clock.now();
            let quiet = self.backend_checks.in_flight(now) == 0
                && self.register.open_transactions() == 0
                && !self.queue.iter().any(Pending::is_traffic);
            if quiet || !self.step(until) || self.failed() {
                return;
            }
        }
    }

    /// One step: the earliest pending thing at or before `until`. Returns `false` when
    /// there was none (time is then moved to `until`).
    fn step(&mut self, until: Instant) -> bool {
        #[derive(Clone, Copy)]
        enum Next {
            Queue,
            Core,
            Registrar(usize),
            Peer(usize),
        }
        let mut best: Option<(Instant, Next)> = self.queue.peek_time().map(|t| (t, Next::Queue));
        if let Some(t) = self.core_deadline {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, Next::Core));
            }
        }
        if let Some(&(t, i)) = self.registrar_deadlines.first() {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, Next::Registrar(i)));
            }
        }
        if let Some((t, i)) = self.peers.next_deadline() {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, Next::Peer(i)));
            }
        }
        let Some((at, next)) = best.filter(|(t, _)| *t <= until) else {
            self.clock.advance_to(until);
            return false;
        };
        self.clock.advance_to(at);
        let now = self.clock.now();
        self.findings.set_time(self.clock.elapsed());
        self.stats.steps += 1;
        if self.last_instant == Some(now) {
            self.same_instant_steps += 1;
            if self.same_instant_steps == MAX_STEPS_AT_ONE_INSTANT {
                self.findings.push(
                    Invariant::NoProgress,
                    format!("{MAX_STEPS_AT_ONE_INSTANT} steps without time moving"),
                );
            }
        } else {
            self.last_instant = Some(now);
            self.same_instant_steps = 0;
        }
        match next {
            Next::Queue => {
                if let Some((_, item)) = self.queue.pop() {
                    self.deliver(item);
                }
            }
            Next::Core => {
                self.core.handle_timeout(now);
                self.drain();
                if self.core_deadline.is_some_and(|d| d <= now) {
                    self.findings.push(
                        Invariant::TimeoutInPast,
                        "after handle_timeout the core's next deadline is not in the future",
                    );
                    // Avoid spinning on it: the check has fired.
                    self.core_deadline = None;
                }
            }
            Next::Registrar(i) => {
                let out = self
                    .registrars
                    .get_mut(i)
                    .map(|r| r.handle_timeout(now))
                    .unwrap_or_default();
                self.after_registrar(i, out);
            }
            Next::Peer(i) => self.peer_timeout(i),
        }
        self.check_bounds();
        true
    }

    fn check_bounds(&mut self) {
        let calls = self.core.active_calls();
        if calls > self.peers.placed() {
            self.findings.push(
                Invariant::CallsUnbounded,
                format!("{calls} calls in the core, {} placed", self.peers.placed()),
            );
        }
        let timers = self.core.timer_count();
        if timers > self.timer_bound {
            self.findings.push(
                Invariant::TimerBound,
                format!("{timers} timers armed, bound {}", self.timer_bound),
            );
        }
        let open = self.register.open_transactions();
        if open > self.txn_bound {
            self.findings.push(
                Invariant::TransactionBound,
                format!(
                    "{open} REGISTER transactions open, bound {}",
                    self.txn_bound
                ),
            );
        }
    }

    fn deliver(&mut self, item: Pending) {
        match item {
            Pending::ToRegistrar { index, bytes } => self.deliver_to_registrar(index, &bytes),
            Pending::ToCore { from, bytes } => self.deliver_to_core(from, bytes),
            Pending::ToPeer { index, bytes } => self.deliver_to_peer(index, &bytes),
            Pending::PlaceCall(i) => self.place_call(i),
            Pending::BackendArrives { id, op } => self.backend_arrives(id, &op),
            Pending::BackendReply { id, reply } => self.backend_reply(id, reply),
            Pending::DnsAnswer { id, result } => {
                let now = self.clock.now();
                let result = result.map(sip_core::Answer::from);
                self.core.handle_input(now, Input::Resolved { id, result });
                self.drain();
            }
            Pending::Fault(i) => self.apply_fault(i),
            Pending::Heal => self.heal(),
            Pending::StreamToRegistrar { conn, item } => self.stream_at_registrar(conn, item),
            Pending::StreamToCore { conn, item } => self.stream_at_core(conn, item),
            Pending::StreamRead { conn } => self.stream_read(conn),
            Pending::StreamGiveUp { conn } => self.stream_give_up(conn),
            Pending::CheckReregister(i) => self.check_reregister(i),
        }
    }

    /// Whether registrar `i` and its link are healthy; keeps `healthy_since` current.
    fn refresh_health(&mut self, i: usize) {
        let healthy = self.links.get(i).is_some_and(Link::is_healthy)
            && self
                .registrars
                .get(i)
                .is_some_and(|r| *r.mode() == Mode::Normal);
        let now = self.clock.now();
        if let Some(slot) = self.healthy_since.get_mut(i) {
            match (healthy, *slot) {
                (true, None) => *slot = Some(now),
                (false, _) => *slot = None,
                (true, Some(_)) => {}
            }
        }
    }

    fn check_liveness(&mut self) {
        let world = self.liveness_world();
        let mut f = std::mem::take(&mut self.findings);
        liveness::check(&mut f, &world.borrow(self));
        self.peers.check_end(&mut f, &self.core);
        self.tolerate_unknown_outcomes(&mut f);
        self.findings = f;
    }

    /// The known outbox issues, tolerated only when asked: the backend holds a report
    /// whose outcome the core never learned while the core believes an older one was the
    /// last delivered ([`KnownIssues::report_outcome_unknown`]), or a 404 made the core
    /// forget a listed provider's report ([`KnownIssues::patch_404_forgets_listed`]).
    fn tolerate_unknown_outcomes(&mut self, f: &mut Findings) {
        let known = self.options.known;
        let backend = &self.backend;
        let checks = &self.backend_checks;
        let n = f.remove_where(|v| {
            matches!(
                v.invariant,
                Invariant::BackendStale | Invariant::ShutdownIncomplete
            ) && v.provider.as_deref().is_some_and(|p| {
                let unknown = known.report_outcome_unknown
                    && backend
                        .last_body(p)
                        .is_some_and(|b| checks.outcome_was_unknown(p, b));
                let forgotten = known.patch_404_forgets_listed && checks.forgotten_while_listed(p);
                unknown || forgotten
            })
        });
        self.stats.tolerated += n as u64;
    }

    fn liveness_world(&self) -> LivenessSnapshot {
        LivenessSnapshot {
            views: self.core.registrations(),
            current_calls: self
                .providers
                .iter()
                .map(|(p, _)| {
                    (
                        p.id.clone(),
                        self.register.current_call(&p.id).map(str::to_owned),
                    )
                })
                .collect(),
        }
    }

    fn report(self) -> Report {
        let mut stats = self.stats;
        stats.sim_time = self.clock.elapsed();
        stats.trace_lines = self.trace.count();
        stats.core = self.core.stats().clone();
        stats.patches = self.backend.stats().patches;
        stats.registrar_requests = self.registrars.iter().map(|r| r.stats().requests).sum();
        stats.registrar_overflowed = self.registrars.iter().map(|r| r.stats().overflowed).sum();
        stats.registrars = self
            .registrars
            .iter()
            .map(|r| crate::report::RegistrarRun {
                requests: r.stats().requests,
                overflowed: r.stats().overflowed,
                all_bound_at: r.stats().all_bound_at.map(|t| self.clock.offset_of(t)),
            })
            .collect();
        stats.tolerated += self.register.tolerated();
        let mut journal = self.journal.unwrap_or_default();
        if self.options.trace == TraceMode::Full {
            journal.finish(
                self.backend.statuses().clone(),
                self.registrars
                    .iter()
                    .enumerate()
                    .flat_map(|(i, r)| r.bindings().map(move |b| (i, b))),
            );
        }
        Report {
            name: self.scenario.name.clone(),
            seed: self.scenario.seed,
            violations: self.findings.list().to_vec(),
            trace_hash: self.trace.hash(),
            trace: self.trace.lines().to_vec(),
            stats,
            journal,
        }
    }
}

/// The parts of the liveness view that must be computed before borrowing the models.
struct LivenessSnapshot {
    views: Vec<sip_core::RegistrationView>,
    current_calls: BTreeMap<String, Option<String>>,
}

impl LivenessSnapshot {
    fn borrow<'a>(&'a self, sim: &'a Sim) -> liveness::World<'a> {
        liveness::World {
            views: &self.views,
            backend: &sim.backend,
            registrars: &sim.registrars,
            registrar_defs: &sim.scenario.registrars,
            providers: &sim.providers,
            current_calls: self.current_calls.clone(),
        }
    }
}

/// Runs `scenario` with `options`.
pub fn run(scenario: Scenario, options: RunOptions) -> Report {
    Sim::new(scenario, options).run()
}

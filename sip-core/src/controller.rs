//! The controller: owns every registration, the timers, the transactions and the backend
//! work, and implements the drive loop described in the crate docs.

use crate::backend::destination::{Answer, Destinations, Lookup, NoRoute, Route, RouteSource};
use crate::backend::outbox::{Outbox, OutboxStep};
use crate::backend::API_KEY_RETRY;
use crate::config::Config;
use crate::dns::Dns;
use crate::io::{
    BackendOp, BackendReply, BackendRequest, BindingIdentity, Command, Event, Input, Output,
    RegisterOutcome, RegisterStatus, RegistrationView, RequestId, SentRegister, StatusReport,
    Transmit,
};
use crate::message::{self, Message, Request};
use crate::provider::ProviderSpec;
use crate::rate::Pacer;
use crate::registration::Registration;
use crate::rng::IdGen;
use crate::stats::Stats;
use crate::time::{Backoff, TimerKey, TimerTable};
use crate::transaction::{Owner, Transactions, TxnAction};
use crate::wallclock::WallClock;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// A backend request the core is waiting for.
#[derive(Debug, Clone)]
enum PendingRequest {
    Fetch,
    Report { outbox_idx: u32, sent_at: Instant },
    Config,
    Destination { did: String },
}

/// Everything a registration needs to act, apart from the registrations themselves.
#[derive(Debug)]
pub struct Ctx {
    pub cfg: Config,
    pub ids: IdGen,
    pub timers: TimerTable,
    pub txns: Transactions,
    pub pacer: Pacer,
    pub dns: Dns,
    pub clock: WallClock,
    pub out: VecDeque<Output>,
    pub next_query: u64,
    pub stats: Stats,
    outbox: Outbox,
    pending: BTreeMap<RequestId, PendingRequest>,
    next_request: u64,
    /// Status reports in flight, and outbox entries waiting for a free slot: a burst of
    /// ten thousand status changes must not become ten thousand concurrent requests.
    reports_in_flight: usize,
    report_wait: VecDeque<u32>,
    /// The last report failed: the next success means the backend is back.
    backend_failing: bool,
    /// How long delivered reports took lately (a decaying maximum): what the final
    /// reports of a shutdown need, so the rest of the grace can go to un-REGISTERs.
    report_latency: Duration,
    /// Slots whose registration stopped during the current step.
    stopped: Vec<u32>,
    /// Registrations not yet [`Phase::Stopped`].
    active: usize,
    /// Set once a shutdown is complete: nothing more is emitted.
    finished: bool,
}

impl Ctx {
    /// Queues a datagram.
    pub fn transmit(&mut self, remote: SocketAddr, payload: Vec<u8>) {
        self.stats.sip_out += 1;
        self.out
            .push_back(Output::Transmit(Transmit { remote, payload }));
    }

    /// Counts and announces the outcome of a REGISTER transaction.
    pub fn outcome(&mut self, provider_id: &str, outcome: RegisterOutcome, sent: SentRegister) {
        *self
            .stats
            .register_outcomes
            .entry(outcome.as_str())
            .or_default() += 1;
        self.out.push_back(Output::Event(Event::RegisterOutcome {
            provider_id: provider_id.to_owned(),
            outcome,
            sent,
        }));
    }

    /// Announces a registration's status and queues its report to the backend.
    pub fn report(&mut self, now: Instant, reg: &Registration) {
        let view = reg.view(self);
        self.out
            .push_back(Output::Event(Event::RegistrationChanged(Box::new(view))));
        let report = StatusReport {
            register_status: reg.status,
            register_error: reg.error.clone(),
            last_register_at: reg.last_register_at.clone(),
        };
        self.push_report(now, &reg.provider.id, report);
    }

    fn push_report(&mut self, now: Instant, provider_id: &str, report: StatusReport) {
        let (idx, step) = self.outbox.push(provider_id, report);
        self.outbox_step(now, idx, step);
    }

    fn outbox_step(&mut self, now: Instant, idx: u32, step: OutboxStep) {
        match step {
            OutboxStep::Send(_) if self.reports_in_flight >= self.cfg.max_reports_in_flight => {
                self.outbox.defer(idx);
                self.report_wait.push_back(idx);
            }
            OutboxStep::Send(report) => {
                let Some(provider_id) = self.outbox.provider_id(idx).map(str::to_owned) else {
                    return;
                };
                self.backend_request(
                    now,
                    BackendOp::ReportStatus {
                        provider_id,
                        report,
                    },
                    PendingRequest::Report {
                        outbox_idx: idx,
                        sent_at: now,
                    },
                );
                self.reports_in_flight += 1;
            }
            OutboxStep::RetryAt(at) => self.timers.set(TimerKey::OutboxRetry(idx), at),
            OutboxStep::Idle => {}
        }
    }

    fn backend_request(
        &mut self,
        now: Instant,
        op: BackendOp,
        pending: PendingRequest,
    ) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.pending.insert(id, pending);
        // The core owns the deadline; the driver's own timeout is only a safety net.
        self.timers.set(
            TimerKey::BackendDeadline(id.0),
            now + self.cfg.backend_timeout + Duration::from_secs(1),
        );
        self.out
            .push_back(Output::Backend(BackendRequest { id, op }));
        id
    }

    /// A report finished: let a waiting entry use the slot.
    fn report_done(&mut self, now: Instant) {
        self.reports_in_flight = self.reports_in_flight.saturating_sub(1);
        while let Some(idx) = self.report_wait.pop_front() {
            let step = self.outbox.resume(idx);
            if step != OutboxStep::Idle {
                self.outbox_step(now, idx, step);
                break;
            }
        }
    }

    /// Announces a binding identity to persist.
    pub fn persist(&mut self, identity: BindingIdentity) {
        self.out
            .push_back(Output::Event(Event::BindingIdentity(identity)));
    }

    /// A registration reached [`Phase::Stopped`] (each does so once).
    pub fn stopped(&mut self, slot: u32) {
        self.active = self.active.saturating_sub(1);
        self.stopped.push(slot);
    }
}

/// A provider that is known but not running: invalid, or disabled.
#[derive(Debug, Clone)]
struct Inactive {
    spec: ProviderSpec,
    view: RegistrationView,
}

#[derive(Debug)]
struct SyncState {
    in_flight: bool,
    backoff: Backoff,
    applied_once: bool,
    /// `GET /api/sip/config` in flight; it is fetched with every provider sync and
    /// retried on its own when it fails.
    config_in_flight: bool,
    config_backoff: Backoff,
}

/// trunkline's sans-IO core. See the crate docs for the drive loop.
#[derive(Debug)]
pub struct Controller {
    ctx: Ctx,
    /// Boxed so the table grows by pointers: 100k registrations must not double a
    /// 70 MB array.
    regs: Vec<Option<Box<Registration>>>,
    free: Vec<u32>,
    /// Running registrations by provider id (a slot that is un-registering after the
    /// provider was removed or changed is no longer in here).
    by_id: BTreeMap<String, u32>,
    inactive: BTreeMap<String, Inactive>,
    sync: SyncState,
    shutdown_deadline: Option<Instant>,
    /// Binding identities of a previous run, by provider id, until their provider shows up.
    restored: BTreeMap<String, BindingIdentity>,
    /// Call destinations; the waiters are [`Command::LookupDestination`] tickets.
    routes: Destinations<u64>,
    /// The destination lookup in flight per DID.
    route_requests: BTreeMap<String, RequestId>,
}

impl Controller {
    /// A controller that starts by fetching the provider list. `seed` feeds every random
    /// choice; `now`/`wall_now` anchor wall time (for `lastRegisterAt`).
    pub fn new(cfg: Config, seed: u64, now: Instant, wall_now: SystemTime) -> Self {
        let pacer = Pacer::new(cfg.register_rate);
        let outbox = Outbox::new(cfg.backend_retry_initial, cfg.backend_retry_cap);
        let sync_backoff = Backoff::new(cfg.backend_retry_initial, cfg.backend_retry_cap);
        let config_backoff = Backoff::new(cfg.backend_retry_initial, cfg.backend_retry_cap);
        let routes = Destinations::new(
            cfg.default_domain.clone(),
            cfg.fixed_routes.clone(),
            cfg.routes_from_backend,
        );
        let mut ctl = Self {
            ctx: Ctx {
                cfg,
                ids: IdGen::new(seed),
                timers: TimerTable::default(),
                txns: Transactions::default(),
                pacer,
                dns: Dns::default(),
                clock: WallClock::new(now, wall_now),
                out: VecDeque::new(),
                next_query: 0,
                stats: Stats::default(),
                outbox,
                pending: BTreeMap::new(),
                next_request: 0,
                reports_in_flight: 0,
                report_wait: VecDeque::new(),
                backend_failing: false,
                report_latency: Duration::ZERO,
                stopped: Vec::new(),
                active: 0,
                finished: false,
            },
            regs: Vec::new(),
            free: Vec::new(),
            by_id: BTreeMap::new(),
            inactive: BTreeMap::new(),
            sync: SyncState {
                in_flight: false,
                backoff: sync_backoff,
                applied_once: false,
                config_in_flight: false,
                config_backoff,
            },
            shutdown_deadline: None,
            restored: BTreeMap::new(),
            routes,
            route_requests: BTreeMap::new(),
        };
        ctl.start_fetch(now);
        ctl
    }

    /// Hands back the binding identities a previous run persisted (from
    /// [`Event::BindingIdentity`]), so that its bindings are refreshed rather than
    /// duplicated. Call before the first provider list arrives.
    pub fn restore(&mut self, identities: impl IntoIterator<Item = BindingIdentity>) {
        for id in identities {
            self.restored.insert(id.provider_id.clone(), id);
        }
    }

    /// The next output. Drain until [`Output::Timeout`] after every `handle_*` call.
    pub fn poll_output(&mut self) -> Output {
        match self.ctx.out.pop_front() {
            Some(o) => o,
            // A provider list of 100k entries queues as many outputs once; do not keep
            // that capacity for the rest of the process.
            None if self.ctx.out.capacity() > 4096 => {
                self.ctx.out.shrink_to(256);
                self.poll_output()
            }
            None if self.ctx.finished => Output::Timeout(None),
            None => Output::Timeout(self.ctx.timers.next_deadline()),
        }
    }

    /// The next deadline, if any (the same value [`Output::Timeout`] carries).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ctx.finished {
            return None;
        }
        self.ctx.timers.next_deadline()
    }

    /// Feeds one input. Peer garbage is counted and dropped, never an error.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        if self.ctx.finished {
            return;
        }
        match input {
            Input::Datagram {
                local: _,
                remote,
                payload,
            } => self.on_datagram(now, remote, &payload),
            Input::Backend { id, reply } => self.on_backend(now, id, reply),
            Input::Resolved { id, result } => {
                for (slot, res) in self.ctx.dns.answer(id, result, now) {
                    if let Some(reg) = self.reg_mut(slot) {
                        let (reg, ctx) = reg;
                        reg.on_resolved(now, ctx, res);
                    }
                }
            }
            Input::Command(cmd) => self.on_command(now, cmd),
        }
        self.settle(now);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ctx.finished {
            return;
        }
        while let Some(key) = self.ctx.timers.pop_expired(now) {
            if self.ctx.finished {
                // ShutdownComplete is the last output (found by the controller fuzzer).
                return;
            }
            match key {
                TimerKey::Registration(slot) => {
                    if let Some((reg, ctx)) = self.reg_mut(slot) {
                        reg.on_timer(now, ctx);
                    }
                }
                TimerKey::Transaction(id, timer) => {
                    let cfg_timers = self.ctx.cfg.timers;
                    let actions =
                        self.ctx
                            .txns
                            .on_timer(id, timer, now, &cfg_timers, &mut self.ctx.timers);
                    self.on_txn_actions(now, actions);
                }
                TimerKey::RouteWait(id) => self.release_route_waiters(RequestId(id)),
                TimerKey::BackendDeadline(id) => {
                    let secs = self.ctx.cfg.backend_timeout.as_secs_f64();
                    self.on_backend(
                        now,
                        RequestId(id),
                        BackendReply::Failed(format!("backend did not answer within {secs}s")),
                    );
                }
                TimerKey::OutboxRetry(idx) => {
                    let step = self.ctx.outbox.retry_due(idx);
                    self.ctx.outbox_step(now, idx, step);
                }
                TimerKey::Sync => self.start_fetch(now),
                TimerKey::ConfigRetry => self.start_config_fetch(now),
                TimerKey::RateLimit => {}
                TimerKey::ShutdownUnregisterDeadline => {
                    let slots: Vec<u32> = self.by_id.values().copied().collect();
                    for slot in slots {
                        if let Some((reg, ctx)) = self.reg_mut(slot) {
                            reg.give_up_unregister(now, ctx);
                        }
                    }
                }
                TimerKey::Shutdown => self.finish_shutdown(),
            }
            if self.ctx.finished {
                return;
            }
            self.settle(now);
        }
        self.settle(now);
    }

    /// Every provider's registration, invalid and disabled ones included, by id.
    pub fn registrations(&self) -> Vec<RegistrationView> {
        let mut all: Vec<RegistrationView> = self
            .by_id
            .values()
            .filter_map(|&s| self.regs.get(s as usize).and_then(Option::as_deref))
            .map(|r| r.view(&self.ctx))
            .chain(self.inactive.values().map(|i| i.view.clone()))
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// Whether the first provider list has been applied.
    pub fn synced(&self) -> bool {
        self.sync.applied_once
    }

    /// Whether a shutdown has begun (the process is no longer ready for calls).
    pub fn shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// The domain of default destinations now, if any.
    pub fn default_domain(&self) -> Option<&str> {
        self.routes.default_domain()
    }

    /// Armed timers (bounded by registrations + transactions + requests in flight).
    pub fn timer_count(&self) -> usize {
        self.ctx.timers.len()
    }

    fn reg_mut(&mut self, slot: u32) -> Option<(&mut Registration, &mut Ctx)> {
        let reg = self.regs.get_mut(slot as usize)?.as_deref_mut()?;
        Some((reg, &mut self.ctx))
    }

    /// After every mutation: release paced sends, free stopped slots, finish a shutdown.
    fn settle(&mut self, now: Instant) {
        if self.ctx.finished {
            return;
        }
        loop {
            // Each registrar's window counts what is in flight to it, as of now.
            for addr in self.ctx.txns.take_changed() {
                let n = self.ctx.txns.in_flight_to(addr);
                self.ctx.pacer.set_in_flight(addr, n);
            }
            let Some(slot) = self.ctx.pacer.pop_ready(now) else {
                break;
            };
            if let Some((reg, ctx)) = self.reg_mut(slot) {
                reg.send(now, ctx);
            }
        }
        match self.ctx.pacer.next_deadline(now) {
            Some(at) => self.ctx.timers.set(TimerKey::RateLimit, at),
            None => self.ctx.timers.cancel(TimerKey::RateLimit),
        }
        for slot in std::mem::take(&mut self.ctx.stopped) {
            let removed = self
                .regs
                .get(slot as usize)
                .and_then(Option::as_deref)
                .is_some_and(|r| self.by_id.get(&r.provider.id) != Some(&slot));
            if removed {
                self.free_slot(slot);
            }
        }
        // O(1) per step: a shutdown of 100k registrations takes 100k steps.
        if self.shutdown_deadline.is_some()
            && self.ctx.active == 0
            && self.ctx.pending.is_empty()
            && self.ctx.outbox.is_settled()
        {
            self.finish_shutdown();
        }
    }

    fn finish_shutdown(&mut self) {
        if self.ctx.finished {
            return;
        }
        let lost = self.ctx.outbox.undelivered_reports();
        if !lost.is_empty() {
            self.ctx
                .out
                .push_back(Output::Event(Event::FinalReportsLost { providers: lost }));
        }
        self.ctx
            .out
            .push_back(Output::Event(Event::ShutdownComplete));
        self.ctx.finished = true;
    }

    fn free_slot(&mut self, slot: u32) {
        if let Some(s) = self.regs.get_mut(slot as usize) {
            *s = None;
            self.ctx.timers.cancel(TimerKey::Registration(slot));
            // Only stopped registrations are freed: none has a send in the pacer.
            self.free.push(slot);
        }
    }

    /// The verdict on a datagram before it is handed in: see [`crate::triage`]. Pure
    /// and cheap (no allocation, no full parse), so a driver can ask it of every
    /// datagram it reads, feed [`Triage::Known`] ones first, bound the
    /// [`Triage::Unknown`] ones, and drop the rest unparsed.
    pub fn triage(&self, remote: SocketAddr, payload: &[u8]) -> crate::Triage {
        crate::triage::triage(&self.ctx.txns, remote, payload)
    }

    /// Counts `count` datagrams a driver read and dropped on the core's
    /// [`Controller::triage`] verdict (or over its budget): they are received
    /// messages too, and the counters must show them.
    pub fn count_dropped(&mut self, why: crate::Dropped, count: u64) {
        let stats = &mut self.ctx.stats;
        stats.sip_in += count;
        match why {
            crate::Dropped::KeepAlive => stats.keepalives += count,
            _ => *stats.dropped.entry(why.label()).or_default() += count,
        }
    }

    fn on_datagram(&mut self, now: Instant, remote: SocketAddr, payload: &[u8]) {
        self.ctx.stats.sip_in += 1;
        if message::is_keepalive(payload) {
            // RFC 5626 §3.5.1: a keep-alive, not a message (the pong is for streams).
            self.ctx.stats.keepalives += 1;
            return;
        }
        match message::parse(payload) {
            Err(e) => {
                self.ctx.stats.parse_errors += 1;
                self.ctx.out.push_back(Output::Event(Event::MessageDropped {
                    remote,
                    reason: e.to_string(),
                }));
            }
            Ok(Message::Response(resp)) if resp.headers.cseq_out_of_range() => {
                // RFC 3261 §8.1.1.5: no request of ours has such a CSeq.
                *self
                    .ctx
                    .stats
                    .dropped
                    .entry(crate::Dropped::InvalidCseq.label())
                    .or_default() += 1;
            }
            Ok(Message::Response(resp)) => {
                let timers = self.ctx.cfg.timers;
                match self
                    .ctx
                    .txns
                    .on_response(now, &timers, &mut self.ctx.timers, resp)
                {
                    Some(actions) => self.on_txn_actions(now, actions),
                    None => self.ctx.stats.stray_responses += 1,
                }
            }
            Ok(Message::Request(req)) => self.on_request(remote, &req, payload.len()),
        }
    }

    /// Requests to us. Calls are the B2BUA's (a later module); until then we answer what
    /// a registered UA must: OPTIONS keep-alives with 200, the rest as not available.
    ///
    /// The answer goes to a source address anyone can forge, so it is never larger
    /// than the `received` bytes: when it would be, it goes without the optional
    /// Allow/Accept/User-Agent, and when even that is larger it is dropped (counted).
    fn on_request(&mut self, remote: SocketAddr, req: &Request, received: usize) {
        let (status, reason) = match req.method.as_str() {
            "ACK" => return,
            _ if req.headers.cseq_out_of_range() => (400, "Bad CSeq: must be below 2^31"),
            "OPTIONS" => (200, "OK"),
            "INVITE" => (480, "Temporarily Unavailable"),
            "BYE" | "CANCEL" => (481, "Call/Transaction Does Not Exist"),
            _ => (501, "Not Implemented"),
        };
        let tag = self.ctx.ids.tag();
        let minimal = message::response_to(req, status, reason, Some(&tag));
        let mut full = minimal.clone();
        if status == 200 {
            full = full
                .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
                .header("Accept", "application/sdp");
        }
        let full = full
            .header("User-Agent", self.ctx.cfg.user_agent.clone())
            .to_bytes();
        let bytes = if full.len() <= received {
            full
        } else {
            minimal.to_bytes()
        };
        if bytes.len() > received {
            *self
                .ctx
                .stats
                .dropped
                .entry(crate::Dropped::Amplification.label())
                .or_default() += 1;
            return;
        }
        // Responses go back to the source address and port (RFC 3581 symmetric response).
        self.ctx.transmit(remote, bytes);
    }

    fn on_txn_actions(&mut self, now: Instant, actions: Vec<TxnAction>) {
        for action in actions {
            self.on_txn_action(now, action);
        }
    }

    fn on_txn_action(&mut self, now: Instant, action: TxnAction) {
        match action {
            TxnAction::Send {
                remote,
                payload,
                lost_since,
            } => {
                if let Some(sent_at) = lost_since {
                    self.ctx.pacer.on_loss(now, remote, sent_at);
                }
                self.ctx.transmit(remote, payload);
            }
            TxnAction::Notify {
                owner: Owner::Registration(slot),
                id,
                event,
                rtt,
            } => {
                if let Some(s) = rtt {
                    self.ctx.pacer.on_answer(now, s.remote, s.sent_at);
                }
                if let Some((reg, ctx)) = self.reg_mut(slot) {
                    reg.on_transaction(now, ctx, id, event);
                }
            }
            // Calls are a later module: no other owner yet.
            TxnAction::Notify { .. } => {}
        }
    }

    fn on_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Shutdown { grace } => self.start_shutdown(now, grace),
            Command::Resync => {
                if self.shutdown_deadline.is_none() {
                    self.start_fetch(now);
                }
            }
            Command::Reregister { id } => {
                if self.shutdown_deadline.is_some() {
                    return;
                }
                if let Some(&slot) = self.by_id.get(&id) {
                    if let Some((reg, ctx)) = self.reg_mut(slot) {
                        // Never a second transaction beside the running one (found by
                        // the simulator): coalesced by the registration.
                        reg.reregister(now, ctx);
                    }
                }
            }
            Command::LookupDestination { did, ticket } => {
                match self.routes.lookup(&did, now, ticket) {
                    Lookup::Ready(result) => self.answer_waiters(&did, &result, vec![ticket], None),
                    // Shutting down: no new request may hold up the end; the default.
                    Lookup::Ask { .. } if self.shutdown_deadline.is_some() => {
                        self.on_destination_reply(
                            now,
                            did,
                            BackendReply::Failed("trunkline is shutting down".to_owned()),
                        );
                    }
                    Lookup::Ask {
                        start_request: true,
                    } => {
                        let id = self.ctx.backend_request(
                            now,
                            BackendOp::LookupDestination { did: did.clone() },
                            PendingRequest::Destination { did: did.clone() },
                        );
                        self.route_requests.insert(did, id);
                        let wait = now + self.ctx.cfg.route_lookup_timeout;
                        self.ctx.timers.set(TimerKey::RouteWait(id.0), wait);
                    }
                    // Joins the request in flight; one that outlived its first callers'
                    // wait gets a wait again (never longer than the lookup timeout).
                    Lookup::Ask {
                        start_request: false,
                    } => {
                        if let Some(&id) = self.route_requests.get(&did) {
                            let key = TimerKey::RouteWait(id.0);
                            if self.ctx.timers.get(key).is_none() {
                                let wait = now + self.ctx.cfg.route_lookup_timeout;
                                self.ctx.timers.set(key, wait);
                            }
                        }
                    }
                }
            }
        }
    }

    fn start_shutdown(&mut self, now: Instant, grace: Duration) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(now + grace);
        self.ctx.timers.cancel(TimerKey::Sync);
        self.ctx.timers.cancel(TimerKey::ConfigRetry);
        // Lookups in flight are dropped: their callers take the default now, and their
        // answers must not hold up the end.
        for (did, id) in std::mem::take(&mut self.route_requests) {
            self.release_route_waiters(id);
            self.ctx.pending.remove(&id);
            self.ctx.timers.cancel(TimerKey::BackendDeadline(id.0));
            let _ = self.routes.answer(&did, Answer::Unavailable, now);
        }
        self.ctx.timers.set(TimerKey::Shutdown, now + grace);
        // Un-REGISTER answers may take the whole grace but what the final reports need
        // (see `final_report_reserve`): a registrar answering in 3 s of a 5 s grace is
        // confirmed.
        let reserve = final_report_reserve(self.ctx.report_latency, grace);
        self.ctx.timers.set(
            TimerKey::ShutdownUnregisterDeadline,
            now + grace.saturating_sub(reserve),
        );
        let slots: Vec<u32> = self.by_id.values().copied().collect();
        if let Ok(n) = u32::try_from(slots.len()) {
            if n > 0 {
                // Every un-REGISTER leaves within half the grace, so each has the
                // other half (less the reserve) for its answer.
                self.ctx.pacer.speed_up_to(grace / 2 / n);
            }
        }
        for slot in slots {
            if let Some((reg, ctx)) = self.reg_mut(slot) {
                reg.unregister(now, ctx, true);
            }
        }
    }

    fn start_fetch(&mut self, now: Instant) {
        if self.sync.in_flight || self.shutdown_deadline.is_some() {
            return;
        }
        self.sync.in_flight = true;
        self.ctx.timers.cancel(TimerKey::Sync);
        self.ctx
            .backend_request(now, BackendOp::FetchProviders, PendingRequest::Fetch);
        self.start_config_fetch(now);
    }

    fn start_config_fetch(&mut self, now: Instant) {
        if !self.ctx.cfg.routes_from_backend
            || self.sync.config_in_flight
            || self.shutdown_deadline.is_some()
        {
            return;
        }
        self.sync.config_in_flight = true;
        self.ctx.timers.cancel(TimerKey::ConfigRetry);
        self.ctx
            .backend_request(now, BackendOp::FetchConfig, PendingRequest::Config);
    }

    fn on_config_reply(&mut self, now: Instant, reply: BackendReply) {
        self.sync.config_in_flight = false;
        match reply {
            BackendReply::Config { livekit_domain } => {
                self.sync.config_backoff.reset();
                if let Some(domain) = livekit_domain {
                    if let Some(d) = self.routes.set_default_domain(&domain) {
                        let domain = d.to_owned();
                        self.ctx
                            .out
                            .push_back(Output::Event(Event::DefaultDomainChanged { domain }));
                    }
                }
            }
            // The endpoint is optional (CONTRACT.md §3): no settings, nothing to change.
            BackendReply::NotFound => self.sync.config_backoff.reset(),
            // A failure keeps the domain we have; an API-key problem is reported by
            // the provider fetch that goes with this one.
            other => {
                let rejected_key = matches!(other, BackendReply::Unauthorized { .. });
                let error = match other {
                    BackendReply::Failed(e) => e,
                    BackendReply::Unauthorized { status } => {
                        format!("backend rejected the API key (HTTP {status})")
                    }
                    _ => "unexpected reply to GET /api/sip/config".to_owned(),
                };
                let mut retry_in = self.sync.config_backoff.next_delay(self.ctx.ids.unit());
                if rejected_key {
                    retry_in = retry_in.max(API_KEY_RETRY);
                }
                self.ctx
                    .out
                    .push_back(Output::Event(Event::ConfigFetchFailed { error, retry_in }));
                if self.shutdown_deadline.is_none() {
                    self.ctx.timers.set(TimerKey::ConfigRetry, now + retry_in);
                }
            }
        }
    }

    /// The callers of lookup `id` take the default: the backend is slower than
    /// `route_lookup_timeout`. The request stays in flight to fill the cache.
    fn release_route_waiters(&mut self, id: RequestId) {
        self.ctx.timers.cancel(TimerKey::RouteWait(id.0));
        let Some(PendingRequest::Destination { did }) = self.ctx.pending.get(&id) else {
            return;
        };
        let did = did.clone();
        let (result, waiting) = self.routes.release(&did);
        let secs = self.ctx.cfg.route_lookup_timeout.as_secs_f64();
        let reason = format!("backend did not answer within {secs}s (ROUTE_LOOKUP_TIMEOUT)");
        self.answer_waiters(&did, &result, waiting, Some(reason));
    }

    /// Hands `result` to every waiting caller; `fallback` says why they got the default
    /// (only worth a warning when somebody was waiting).
    fn answer_waiters(
        &mut self,
        did: &str,
        result: &Result<Route, NoRoute>,
        waiting: Vec<u64>,
        fallback: Option<String>,
    ) {
        if waiting.is_empty() {
            return;
        }
        if let Some(reason) = fallback {
            self.ctx
                .out
                .push_back(Output::Event(Event::DestinationFallback {
                    did: did.to_owned(),
                    reason,
                }));
        }
        for ticket in waiting {
            self.ctx
                .out
                .push_back(Output::Event(Event::DestinationFound {
                    ticket,
                    did: did.to_owned(),
                    result: result.clone(),
                }));
        }
    }

    fn on_destination_reply(&mut self, now: Instant, did: String, reply: BackendReply) {
        let (answer, fallback) = match reply {
            BackendReply::Destination { uri } => (Answer::Route(uri), None),
            BackendReply::NotFound => (Answer::NoEntry, None),
            BackendReply::Unauthorized { status } => {
                self.ctx
                    .out
                    .push_back(Output::Event(Event::ApiKeyRejected { status }));
                let reason = format!("backend rejected the API key (HTTP {status})");
                (Answer::Unavailable, Some(reason))
            }
            BackendReply::Failed(e) => (Answer::Unavailable, Some(e)),
            BackendReply::Providers(_) | BackendReply::Delivered | BackendReply::Config { .. } => (
                Answer::Unavailable,
                Some("unexpected reply to a destination lookup".to_owned()),
            ),
        };
        let (result, waiting) = self.routes.answer(&did, answer, now);
        // A route the cache refused (its checks live there) also falls back.
        let refused = || {
            matches!(&result, Ok(r) if r.source == RouteSource::Fallback).then(|| {
                "the backend's destinationUri is not a usable sip: or sips: URI".to_owned()
            })
        };
        let fallback = fallback.or_else(refused);
        self.answer_waiters(&did, &result, waiting, fallback);
    }

    fn on_backend(&mut self, now: Instant, id: RequestId, reply: BackendReply) {
        let Some(pending) = self.ctx.pending.remove(&id) else {
            // Late reply after its deadline, or unknown: already handled as a timeout.
            return;
        };
        self.ctx.timers.cancel(TimerKey::BackendDeadline(id.0));
        let label = match &reply {
            BackendReply::Providers(_)
            | BackendReply::Delivered
            | BackendReply::Config { .. }
            | BackendReply::Destination { .. } => "ok",
            BackendReply::NotFound => "not_found",
            BackendReply::Unauthorized { .. } => "unauthorized",
            BackendReply::Failed(_) => "failed",
        };
        let op = match &pending {
            PendingRequest::Fetch => "fetch_providers",
            PendingRequest::Report { .. } => "report_status",
            PendingRequest::Config => "fetch_config",
            PendingRequest::Destination { .. } => "lookup_destination",
        };
        *self
            .ctx
            .stats
            .backend_requests
            .entry((op, label))
            .or_default() += 1;
        match pending {
            PendingRequest::Fetch => {
                self.sync.in_flight = false;
                self.on_fetch_reply(now, reply);
            }
            PendingRequest::Report {
                outbox_idx,
                sent_at,
            } => {
                if matches!(reply, BackendReply::Delivered) {
                    let took = now.saturating_duration_since(sent_at);
                    self.ctx.report_latency = took.max(self.ctx.report_latency * 3 / 4);
                }
                self.on_report_reply(now, outbox_idx, reply);
                self.ctx.report_done(now);
            }
            PendingRequest::Config => self.on_config_reply(now, reply),
            PendingRequest::Destination { did } => {
                self.ctx.timers.cancel(TimerKey::RouteWait(id.0));
                self.route_requests.remove(&did);
                self.on_destination_reply(now, did, reply);
            }
        }
    }

    fn on_fetch_reply(&mut self, now: Instant, reply: BackendReply) {
        let failure = match reply {
            BackendReply::Providers(list) => {
                self.sync.backoff.reset();
                self.apply_providers(now, list);
                if let Some(every) = self.ctx.cfg.sync_interval {
                    if self.shutdown_deadline.is_none() {
                        self.ctx.timers.set(TimerKey::Sync, now + every);
                    }
                }
                return;
            }
            BackendReply::Unauthorized { status } => {
                self.ctx
                    .out
                    .push_back(Output::Event(Event::ApiKeyRejected { status }));
                (
                    format!("backend rejected the API key (HTTP {status})"),
                    true,
                )
            }
            BackendReply::NotFound => (
                "backend answered 404 for the provider list: check BACKEND_URL".to_owned(),
                false,
            ),
            BackendReply::Delivered
            | BackendReply::Config { .. }
            | BackendReply::Destination { .. } => {
                ("unexpected reply to a provider fetch".to_owned(), false)
            }
            BackendReply::Failed(e) => (e, false),
        };
        let (error, slow) = failure;
        let mut retry_in = self.sync.backoff.next_delay(self.ctx.ids.unit());
        if slow {
            retry_in = retry_in.max(API_KEY_RETRY);
        }
        self.ctx
            .out
            .push_back(Output::Event(Event::ProvidersFetchFailed {
                error,
                retry_in,
            }));
        if self.shutdown_deadline.is_none() {
            self.ctx.timers.set(TimerKey::Sync, now + retry_in);
        }
    }

    fn on_report_reply(&mut self, now: Instant, idx: u32, reply: BackendReply) {
        match reply {
            BackendReply::Delivered
            | BackendReply::Providers(_)
            | BackendReply::Config { .. }
            | BackendReply::Destination { .. } => {
                let step = self.ctx.outbox.delivered(idx);
                self.ctx.outbox_step(now, idx, step);
                if std::mem::take(&mut self.ctx.backend_failing) {
                    // The backend is back: deliver what waited out the outage now
                    // (paced by the in-flight limit) instead of at each backoff's end.
                    for waiting in self.ctx.outbox.take_waiting_retries() {
                        self.ctx.timers.cancel(TimerKey::OutboxRetry(waiting));
                        let step = self.ctx.outbox.retry_due(waiting);
                        self.ctx.outbox_step(now, waiting, step);
                    }
                }
            }
            BackendReply::NotFound => {
                // The provider seems gone: resync. If the list drops it, its entry is
                // forgotten there; if it is still listed, the report is retried (a
                // 404 for a listed provider must not lose its status — found by the
                // simulator).
                let draw = self.ctx.ids.unit();
                if let Some(d) = self.ctx.outbox.failed(idx, now, draw) {
                    self.ctx.timers.set(TimerKey::OutboxRetry(idx), now + d);
                }
                self.start_fetch(now);
            }
            BackendReply::Unauthorized { status } => {
                self.ctx
                    .out
                    .push_back(Output::Event(Event::ApiKeyRejected { status }));
                let draw = self.ctx.ids.unit();
                if let Some(d) = self.ctx.outbox.failed_slowly(idx, now, API_KEY_RETRY, draw) {
                    self.ctx.timers.set(TimerKey::OutboxRetry(idx), now + d);
                }
            }
            BackendReply::Failed(error) => {
                self.ctx.backend_failing = true;
                let draw = self.ctx.ids.unit();
                if let Some(d) = self.ctx.outbox.failed(idx, now, draw) {
                    self.ctx.timers.set(TimerKey::OutboxRetry(idx), now + d);
                    let provider_id = self.ctx.outbox.provider_id(idx).unwrap_or("").to_owned();
                    self.ctx.out.push_back(Output::Event(Event::ReportFailed {
                        provider_id,
                        error,
                        retry_in: d,
                    }));
                }
            }
        }
    }

    /// Diffs a provider list against the running set by id: new → register; removed →
    /// un-register and forget; disabled → un-register; changed → un-register the old
    /// binding and register anew; unchanged → untouched (no REGISTER, no new timer).
    fn apply_providers(&mut self, now: Instant, list: Vec<ProviderSpec>) {
        let (mut added, mut removed, mut changed, mut invalid) = (0, 0, 0, 0);
        let mut seen = BTreeSet::new();
        let total = list.len();
        for spec in list {
            if !seen.insert(spec.id.clone()) {
                // A duplicate id: the first entry wins.
                invalid += 1;
                continue;
            }
            let validated = spec.validate();
            // Compare what registering depends on (the validated provider), so the core
            // keeps no second copy of every raw entry.
            let running_same = match (&validated, self.by_id.get(&spec.id)) {
                (Ok(p), Some(&slot)) => self
                    .regs
                    .get(slot as usize)
                    .and_then(Option::as_deref)
                    .is_some_and(|r| r.provider == *p),
                _ => false,
            };
            let inactive_same = self.inactive.get(&spec.id).is_some_and(|i| i.spec == spec);
            if running_same || inactive_same {
                continue;
            }
            let was_running = self.by_id.contains_key(&spec.id);
            if let (Ok(p), Some(&slot)) = (&validated, self.by_id.get(&spec.id)) {
                if let Some((reg, ctx)) = self.reg_mut(slot) {
                    if reg.same_binding(p) {
                        // Same binding, new password (or expiry, name…): refresh it in
                        // place. Un-registering it would need the old credentials,
                        // which a rotation may already have made useless.
                        reg.update(now, ctx, p.clone());
                        changed += 1;
                        continue;
                    }
                    reg.set_successor_credentials(p);
                }
            }
            if was_running {
                self.stop_running(now, &spec.id);
                changed += 1;
            }
            self.inactive.remove(&spec.id);
            match validated {
                Err(e) => {
                    invalid += 1;
                    self.set_inactive(now, spec, RegisterStatus::Failed, e.to_string());
                }
                Ok(p) if !p.enabled => {
                    self.set_inactive(
                        now,
                        spec,
                        RegisterStatus::Pending,
                        "disabled: not registered while `enabled` is false".to_owned(),
                    );
                }
                Ok(p) => {
                    if !was_running {
                        added += 1;
                    }
                    let slot = self.alloc_slot();
                    // A changed account gets a fresh identity: only the same account's
                    // previous binding may be refreshed.
                    let restored = self.restored.remove(&spec.id);
                    let mut reg = Registration::new(slot, p, &mut self.ctx, restored);
                    self.ctx.active += 1;
                    self.ctx.report(now, &reg);
                    reg.start(now, &mut self.ctx);
                    self.by_id.insert(spec.id.clone(), slot);
                    if let Some(s) = self.regs.get_mut(slot as usize) {
                        *s = Some(Box::new(reg));
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .by_id
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.stop_running(now, &id);
            self.ctx.outbox.forget_id(&id);
            self.ctx
                .out
                .push_back(Output::Event(Event::BindingForgotten { provider_id: id }));
            removed += 1;
        }
        self.inactive.retain(|id, _| seen.contains(id));
        self.sync.applied_once = true;
        self.ctx
            .out
            .push_back(Output::Event(Event::ProvidersApplied {
                total,
                added,
                removed,
                changed,
                invalid,
            }));
    }

    fn stop_running(&mut self, now: Instant, id: &str) {
        if let Some(slot) = self.by_id.remove(id) {
            if let Some((reg, ctx)) = self.reg_mut(slot) {
                reg.unregister(now, ctx, false);
            }
        }
    }

    fn set_inactive(
        &mut self,
        now: Instant,
        spec: ProviderSpec,
        status: RegisterStatus,
        error: String,
    ) {
        let view = RegistrationView {
            id: spec.id.clone(),
            name: spec.name.clone(),
            status,
            error: Some(error.clone()),
            last_register_at: None,
            expires_at: None,
            next_refresh_at: None,
            registrar: format!("{}:{}", spec.host, spec.port.unwrap_or(5060)),
        };
        self.ctx
            .out
            .push_back(Output::Event(Event::RegistrationChanged(Box::new(
                view.clone(),
            ))));
        self.ctx.push_report(
            now,
            &spec.id,
            StatusReport {
                register_status: status,
                register_error: Some(error),
                last_register_at: None,
            },
        );
        self.inactive
            .insert(spec.id.clone(), Inactive { spec, view });
    }

    fn alloc_slot(&mut self) -> u32 {
        if let Some(s) = self.free.pop() {
            return s;
        }
        self.regs.push(None);
        u32::try_from(self.regs.len() - 1).unwrap_or(u32::MAX)
    }
}

/// What the final status reports of a shutdown are left, out of `grace`: twice what
/// delivered reports took lately, at least 250 ms (a first report, a local file write)
/// and at most half the grace. The rest of the grace waits for un-REGISTER answers.
fn final_report_reserve(report_latency: Duration, grace: Duration) -> Duration {
    (report_latency * 2)
        .max(Duration::from_millis(250))
        .min(grace / 2)
}

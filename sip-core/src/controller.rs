//! The controller: owns the services ([`Ctx`]), the registrations, the provider sync
//! and the destination lookups, and dispatches each input and timer to the one that
//! owns it — the drive loop described in the crate docs. The rules live in those
//! modules; what is here is who gets what, and the order of a shutdown.

use crate::b2bua::calls::Calls;
use crate::backend::client::{AfterReport, PendingRequest};
use crate::config::Config;
use crate::connections::{ConnError, Due, Gone};
use crate::ctx::Ctx;
use crate::dns::Waiter;
use crate::inbound::{self, Dispatch};
use crate::io::{
    BackendReply, BindingIdentity, CallView, Command, Event, Input, Output, RegistrationView,
    RequestId,
};
use crate::keepalive::Keepalives;
use crate::message::Framed;
use crate::message::{self, Message};
use crate::registry::Registry;
use crate::routing::{self, RouteLookups};
use crate::stats::Stats;
use crate::sync::ProviderSync;
use crate::time::TimerKey;
use crate::transaction::{Owner, TxnAction};
use crate::transport::{ConnId, Link, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// trunkline's sans-IO core. See the crate docs for the drive loop.
#[derive(Debug)]
pub struct Controller {
    ctx: Ctx,
    registry: Registry,
    sync: ProviderSync,
    routing: RouteLookups,
    calls: Calls,
    keepalives: Keepalives,
}

impl Controller {
    /// A controller that starts by fetching the provider list. `seed` feeds every random
    /// choice; `now`/`wall_now` anchor wall time (for `lastRegisterAt`).
    pub fn new(cfg: Config, seed: u64, now: Instant, wall_now: SystemTime) -> Self {
        let ctx = Ctx::new(cfg, seed, now, wall_now);
        let mut ctl = Self {
            registry: Registry::default(),
            sync: ProviderSync::new(&ctx),
            routing: RouteLookups::new(&ctx),
            calls: Calls::default(),
            keepalives: Keepalives::default(),
            ctx,
        };
        ctl.sync.start_fetch(now, &mut ctl.ctx);
        let every = ctl.ctx.cfg.streams.keepalive;
        Keepalives::start(now, &mut ctl.ctx, every);
        ctl
    }

    /// Hands back the binding identities a previous run persisted (from
    /// [`Event::BindingIdentity`]), so that its bindings are refreshed rather than
    /// duplicated. Call before the first provider list arrives.
    pub fn restore(&mut self, identities: impl IntoIterator<Item = BindingIdentity>) {
        self.registry.restore(identities);
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
                local,
                remote,
                payload,
            } => self.on_datagram(now, local, remote, &payload),
            Input::Received { conn, bytes } => self.on_received(now, conn, &bytes),
            Input::Connected { conn, local } => {
                let ctx = &mut self.ctx;
                let held = ctx.conns.on_connected(now, &mut ctx.timers, conn, local);
                if let Some(link) = ctx.conns.link(conn) {
                    ctx.count_conn("opened");
                    for payload in held {
                        ctx.write(link, payload);
                    }
                }
            }
            Input::Closed { conn, error } => {
                if let Some(gone) = self.ctx.conns.remove(&mut self.ctx.timers, conn) {
                    let label = if error.is_some() {
                        "failed"
                    } else {
                        "closed_by_peer"
                    };
                    self.ctx.count_conn(label);
                    let reason = error.unwrap_or_else(|| "closed by the peer".to_owned());
                    self.on_conn_gone(now, gone, &reason);
                }
            }
            Input::Backend { id, reply } => self.on_backend(now, id, reply),
            Input::Resolved { id, result } => {
                for waiter in self.ctx.dns.answer(id, result, now) {
                    match waiter {
                        Waiter::Registration(slot) => {
                            if let Some(reg) = self.registry.get_mut(slot) {
                                reg.on_resolved(now, &mut self.ctx);
                            }
                        }
                        Waiter::Call(call) => self.calls.on_resolved(now, &mut self.ctx, call),
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
            self.on_timer(now, key);
            if self.ctx.finished {
                return;
            }
            self.settle(now);
        }
        self.settle(now);
    }

    fn on_timer(&mut self, now: Instant, key: TimerKey) {
        let ctx = &mut self.ctx;
        match key {
            TimerKey::Registration(slot) => {
                if let Some(reg) = self.registry.get_mut(slot) {
                    reg.on_timer(now, ctx);
                }
            }
            TimerKey::Cleanup(slot) => {
                if let Some(reg) = self.registry.get_mut(slot) {
                    reg.run_cleanups(now, ctx);
                }
            }
            TimerKey::Transaction(id, timer) => {
                let cfg_timers = ctx.cfg.timers;
                let actions = ctx
                    .txns
                    .on_timer(id, timer, now, &cfg_timers, &mut ctx.timers);
                self.on_txn_actions(now, actions);
            }
            TimerKey::RouteWait(id) => self.routing.release_waiters(ctx, RequestId(id)),
            TimerKey::Call(id, timer) => self.calls.on_timer(now, ctx, id, timer),
            TimerKey::CallDrain => self.calls.on_drain_expired(now, ctx),
            TimerKey::Conn(conn, timer) => {
                match ctx.conns.on_timer(now, &mut ctx.timers, conn, timer) {
                    Due::Nothing => {}
                    Due::Ping => {
                        if let Some(link) = ctx.conns.link(conn) {
                            ctx.stats.keepalives_sent += 1;
                            ctx.write(link, b"\r\n\r\n".to_vec());
                        }
                    }
                    Due::Close(why) => self.close_conn(now, conn, why),
                }
            }
            TimerKey::BackendDeadline(id) => {
                let secs = ctx.cfg.backend_timeout.as_secs_f64();
                let reply = BackendReply::Failed(format!("backend did not answer within {secs}s"));
                self.on_backend(now, RequestId(id), reply);
            }
            TimerKey::OutboxRetry(idx) => {
                ctx.backend
                    .retry_due(now, idx, &mut ctx.timers, &mut ctx.out);
            }
            TimerKey::Sync => self.sync.start_fetch(now, ctx),
            TimerKey::Keepalive => {
                let Some(every) = ctx.cfg.streams.keepalive else {
                    return;
                };
                let targets = self.registry.keepalive_targets(ctx);
                self.keepalives.round(now, ctx, every, targets);
            }
            TimerKey::ConfigRetry => self.sync.start_config_fetch(now, ctx),
            TimerKey::RateLimit => {}
            TimerKey::ShutdownUnregisterDeadline => {
                for slot in self.registry.running_slots() {
                    if let Some(reg) = self.registry.get_mut(slot) {
                        reg.give_up_unregister(now, &mut self.ctx);
                    }
                }
            }
            TimerKey::Shutdown => self.finish_shutdown(now),
        }
    }

    /// Every provider's registration, invalid and disabled ones included, by id.
    pub fn registrations(&self) -> Vec<RegistrationView> {
        self.registry.views(&self.ctx)
    }

    /// The calls in progress, by id.
    pub fn calls(&self) -> Vec<CallView> {
        self.calls.views(&self.ctx)
    }

    /// How many calls are in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// Whether the first provider list has been applied.
    pub fn synced(&self) -> bool {
        self.sync.applied_once()
    }

    /// Whether a shutdown has begun (the process is no longer ready for calls).
    pub fn shutting_down(&self) -> bool {
        self.ctx.shutting_down()
    }

    /// When a shutdown that has begun will end at the latest: its grace, or longer while
    /// calls drain (`CALL_DRAIN`). A driver's own hard stop goes a little after it.
    pub fn shutdown_ends_at(&self) -> Option<Instant> {
        self.ctx.timers.get(TimerKey::Shutdown)
    }

    /// The domain of default destinations now, if any.
    pub fn default_domain(&self) -> Option<&str> {
        self.routing.default_domain()
    }

    /// Live SIP transactions of calls, client and server (zero once every call is over
    /// and its transactions have absorbed their stragglers).
    pub fn call_transactions(&self) -> usize {
        self.ctx.txns.of_calls()
    }

    /// Armed timers (bounded by registrations + transactions + requests in flight).
    pub fn timer_count(&self) -> usize {
        self.ctx.timers.len()
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
            if let Some(reg) = self.registry.get_mut(slot) {
                reg.send(now, &mut self.ctx);
            }
        }
        match self.ctx.pacer.next_deadline(now) {
            Some(at) => self.ctx.timers.set(TimerKey::RateLimit, at),
            None => self.ctx.timers.cancel(TimerKey::RateLimit),
        }
        for (slot, addrs) in self.ctx.take_addressed() {
            self.registry.set_addresses(slot, &addrs);
        }
        for slot in self.ctx.take_stopped() {
            self.registry.free_if_removed(slot, &mut self.ctx);
        }
        for (call, route) in self.routing.take_ready() {
            self.calls.on_route(now, &mut self.ctx, call, route);
        }
        // O(1) per step: a shutdown of 100k registrations takes 100k steps.
        if self.ctx.shutting_down()
            && self.ctx.active() == 0
            && self.ctx.backend.is_settled()
            && self.calls.is_empty()
        {
            self.finish_shutdown(now);
        }
    }

    /// The verdict on a datagram before it is handed in: see [`crate::triage`]. Pure
    /// and cheap (no allocation, no full parse), so a driver can ask it of every
    /// datagram it reads, feed [`crate::Triage::Known`] ones first, bound the
    /// [`crate::Triage::Unknown`] ones, and drop the rest unparsed.
    pub fn triage(&self, remote: SocketAddr, payload: &[u8]) -> crate::Triage {
        let ip = remote.ip();
        let caller_source =
            self.registry.is_provider_address(ip) || self.ctx.cfg.calls.allows_source(ip);
        crate::triage::triage(&self.ctx.txns, remote, payload, caller_source)
    }

    /// The registrar addresses, for a driver that reads their answers on sockets of
    /// their own: see [`crate::registrars`].
    pub fn registrars(&self) -> crate::Registrars<'_> {
        crate::Registrars::new(&self.ctx.pacer)
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

    fn on_datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, payload: &[u8]) {
        self.ctx.stats.sip_in += 1;
        if message::is_keepalive(payload) {
            // RFC 5626 §3.5.1: a keep-alive, not a message (the pong is for streams).
            self.ctx.stats.keepalives += 1;
            return;
        }
        self.on_message(now, local, Link::udp(remote), payload);
    }

    /// A listener accepted a connection from `remote` to our `local`: the id the
    /// driver names it by from now on, or `None` when a limit refuses it (the driver
    /// closes it at once; counted).
    pub fn accept(
        &mut self,
        now: Instant,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<ConnId> {
        if transport == Transport::Udp {
            return None; // a datagram socket accepts nothing
        }
        let ctx = &mut self.ctx;
        match ctx
            .conns
            .accept(now, &mut ctx.timers, transport, local, remote)
        {
            Ok(conn) => {
                ctx.count_conn("accepted");
                Some(conn)
            }
            Err(why) => {
                ctx.count_conn(why.label());
                ctx.emit(Event::MessageDropped {
                    remote,
                    reason: format!("connection refused: {why}"),
                });
                None
            }
        }
    }

    /// Bytes on a connection: each whole message goes where a datagram's would, a
    /// keep-alive ping is answered (RFC 5626 §4.4.1), a framing error closes it.
    fn on_received(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let ctx = &mut self.ctx;
        let arrived = ctx.conns.on_received(now, &mut ctx.timers, conn, bytes);
        let Some(link) = ctx.conns.link(conn) else {
            return;
        };
        let local = arrived.local.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        for frame in arrived.frames {
            match frame {
                Framed::Message(payload) => {
                    self.ctx.stats.sip_in += 1;
                    self.on_message(now, local, link, &payload);
                }
                Framed::Ping => {
                    self.ctx.stats.keepalives += 1;
                    self.ctx.transmit(link, b"\r\n".to_vec());
                }
                Framed::Pong => self.ctx.stats.keepalives += 1,
            }
        }
        if let Some(why) = arrived.error {
            self.close_conn(now, conn, why);
        }
    }

    /// A connection is gone: what was waiting on it fails now, and registrations whose
    /// binding it carried register again.
    fn on_conn_gone(&mut self, now: Instant, gone: Gone, reason: &str) {
        let ctx = &mut self.ctx;
        let actions = ctx.txns.on_flow_closed(gone.conn, reason, &mut ctx.timers);
        self.on_txn_actions(now, actions);
        if gone.ours {
            for slot in self.registry.running_slots() {
                if let Some(reg) = self.registry.get_mut(slot) {
                    if reg.uses(gone.link) {
                        reg.on_flow_lost(now, &mut self.ctx, reason);
                    }
                }
            }
        }
    }

    /// Closes `conn` because it broke a limit: counted, logged (at a bounded rate),
    /// and the driver told to close it.
    fn close_conn(&mut self, now: Instant, conn: ConnId, why: ConnError) {
        let ctx = &mut self.ctx;
        let Some(gone) = ctx.conns.remove(&mut ctx.timers, conn) else {
            return;
        };
        ctx.count_conn(why.label());
        ctx.emit(Event::MessageDropped {
            remote: gone.link.remote,
            reason: format!("connection closed: {why}"),
        });
        ctx.out.push_back(Output::Close { conn });
        self.on_conn_gone(now, gone, &why.to_string());
    }

    /// A message from `from` (to our `local`), whatever carried it.
    fn on_message(&mut self, now: Instant, local: SocketAddr, from: Link, payload: &[u8]) {
        let remote = from.remote;
        match message::parse(payload) {
            Err(e) => {
                self.ctx.stats.parse_errors += 1;
                self.ctx.emit(Event::MessageDropped {
                    remote,
                    reason: e.to_string(),
                });
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
                let ctx = &mut self.ctx;
                let timers = ctx.cfg.timers;
                match ctx.txns.on_response(now, &timers, &mut ctx.timers, resp) {
                    Some(actions) => self.on_txn_actions(now, actions),
                    None => ctx.stats.stray_responses += 1,
                }
            }
            Ok(Message::Request(req)) => {
                let to = Dispatch {
                    providers: &self.registry,
                    calls: &mut self.calls,
                    routing: &mut self.routing,
                };
                inbound::answer(now, &mut self.ctx, to, from, local, &req, payload.len());
            }
        }
    }

    fn on_txn_actions(&mut self, now: Instant, actions: Vec<TxnAction>) {
        for action in actions {
            self.on_txn_action(now, action);
        }
    }

    fn on_txn_action(&mut self, now: Instant, action: TxnAction) {
        match action {
            TxnAction::Send {
                to,
                payload,
                lost_since,
            } => {
                if let Some(sent_at) = lost_since {
                    self.ctx.pacer.on_loss(now, to.remote, sent_at);
                }
                self.ctx.transmit(to, payload);
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
                if let Some(reg) = self.registry.get_mut(slot) {
                    reg.on_transaction(now, &mut self.ctx, id, event);
                }
                for target in self.ctx.silent.take_fresh() {
                    for slot in self.ctx.txns.registrations_waiting_on(target) {
                        if let Some(reg) = self.registry.get_mut(slot) {
                            reg.on_target_silent(now, &mut self.ctx, target);
                        }
                    }
                }
            }
            TxnAction::Notify {
                owner: Owner::Cleanup(slot),
                id,
                event,
                ..
            } => {
                if let Some(reg) = self.registry.get_mut(slot) {
                    reg.on_cleanup_transaction(now, &mut self.ctx, id, event);
                }
            }
            TxnAction::Notify {
                owner: Owner::Leg { call, leg },
                id,
                event,
                ..
            } => self.calls.on_txn(now, &mut self.ctx, call, leg, id, event),
            // The core's own answers outside calls, and requests nobody waits for,
            // need no notice.
            TxnAction::Notify {
                owner: Owner::Keepalive,
                id,
                event,
                ..
            } => self.keepalives.on_txn(&mut self.ctx, id, &event),
            TxnAction::Notify {
                owner: Owner::Inbound | Owner::Detached,
                ..
            } => {}
        }
    }

    fn on_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Shutdown { grace } => self.start_shutdown(now, grace),
            Command::Resync => self.sync.start_fetch(now, &mut self.ctx),
            Command::Reregister { id } => {
                if self.ctx.shutting_down() {
                    return;
                }
                let slot = self.registry.running_slot(&id);
                if let Some(reg) = slot.and_then(|s| self.registry.get_mut(s)) {
                    // Never a second transaction beside the running one (found by the
                    // simulator): coalesced by the registration.
                    reg.reregister(now, &mut self.ctx);
                }
            }
            Command::LookupDestination { did, ticket } => {
                let waiter = routing::Waiter::Ticket(ticket);
                self.routing.lookup(now, &mut self.ctx, did, waiter);
            }
            Command::HangUp { id } => {
                self.calls.hang_up(now, &mut self.ctx, id);
            }
        }
    }

    fn on_backend(&mut self, now: Instant, id: RequestId, reply: BackendReply) {
        let ctx = &mut self.ctx;
        let Some(pending) = ctx.backend.take(id, &mut ctx.timers) else {
            // Late reply after its deadline, or unknown: already handled as a timeout.
            return;
        };
        let label = match &reply {
            BackendReply::Providers(_)
            | BackendReply::Delivered
            | BackendReply::Config { .. }
            | BackendReply::Destination { .. } => "ok",
            BackendReply::NotFound => "not_found",
            BackendReply::Unauthorized { .. } => "unauthorized",
            BackendReply::Failed(_) => "failed",
        };
        *ctx.stats
            .backend_requests
            .entry((pending.label(), label))
            .or_default() += 1;
        match pending {
            PendingRequest::Fetch => {
                self.sync
                    .on_fetch_reply(now, ctx, &mut self.registry, reply);
            }
            PendingRequest::Report {
                outbox_idx,
                sent_at,
            } => {
                let after = ctx.backend.on_report_reply(
                    now,
                    outbox_idx,
                    sent_at,
                    reply,
                    &mut ctx.ids,
                    &mut ctx.timers,
                    &mut ctx.out,
                );
                if after == AfterReport::Resync {
                    self.sync.start_fetch(now, ctx);
                }
                ctx.backend.report_done(now, &mut ctx.timers, &mut ctx.out);
            }
            PendingRequest::Config => {
                if let Some(domain) = self.sync.on_config_reply(now, ctx, reply) {
                    self.routing.set_default_domain(ctx, &domain);
                }
            }
            PendingRequest::Destination { did } => {
                self.routing.on_backend_reply(now, ctx, id, did, reply);
            }
        }
    }

    /// A shutdown: no more fetches or lookups; every running registration un-REGISTERs,
    /// paced to leave within half the grace; their answers are awaited until the grace
    /// less what the final status reports need.
    fn start_shutdown(&mut self, now: Instant, grace: Duration) {
        let ctx = &mut self.ctx;
        if ctx.shutting_down() {
            return;
        }
        ctx.shutdown_deadline = Some(now + grace);
        ctx.timers.cancel(TimerKey::Sync);
        ctx.timers.cancel(TimerKey::ConfigRetry);
        ctx.timers.cancel(TimerKey::Keepalive);
        self.routing.on_shutdown(now, ctx);
        // Calls in progress go on until CALL_DRAIN runs out; the end waits for them
        // (and for their BYEs, a few round trips) when that is later than the grace.
        let drained = self.calls.on_shutdown(now, ctx);
        let end = (now + grace).max(drained + CALL_HANGUP_ALLOWANCE);
        ctx.timers.set(TimerKey::Shutdown, end);
        // Un-REGISTER answers may take the whole grace but what the final reports need
        // (see `final_report_reserve`): a registrar answering in 3 s of a 5 s grace is
        // confirmed.
        let reserve = final_report_reserve(ctx.backend.report_latency(), grace);
        ctx.timers.set(
            TimerKey::ShutdownUnregisterDeadline,
            now + grace.saturating_sub(reserve),
        );
        let slots = self.registry.running_slots();
        if let Ok(n) = u32::try_from(slots.len()) {
            if n > 0 {
                // Every un-REGISTER leaves within half the grace, so each has the
                // other half (less the reserve) for its answer.
                ctx.pacer.speed_up_to(grace / 2 / n);
            }
        }
        for slot in slots {
            if let Some(reg) = self.registry.get_mut(slot) {
                reg.unregister(now, &mut self.ctx, true);
            }
        }
    }

    fn finish_shutdown(&mut self, now: Instant) {
        if self.ctx.finished {
            return;
        }
        // Calls whose legs did not finish in the drain's allowance end here, each
        // with its "call ended" record: nothing is left behind a ShutdownComplete.
        self.calls.abandon_all(now, &mut self.ctx);
        let lost = self.ctx.backend.undelivered_reports();
        if !lost.is_empty() {
            self.ctx.emit(Event::FinalReportsLost { providers: lost });
        }
        self.ctx.emit(Event::ShutdownComplete);
        self.ctx.finished = true;
        // Nothing runs after ShutdownComplete: the transactions of given-up calls (a
        // BYE, a CANCEL) and of registrations still in flight keep no timer armed.
        self.ctx.timers.clear();
    }
}

/// How long after `CALL_DRAIN` a shutdown waits for the BYEs of the calls it hung up.
pub const CALL_HANGUP_ALLOWANCE: Duration = Duration::from_secs(2);

/// What the final status reports of a shutdown are left, out of `grace`: twice what
/// delivered reports took lately, at least 250 ms (a first report, a local file write)
/// and at most half the grace. The rest of the grace waits for un-REGISTER answers.
fn final_report_reserve(report_latency: Duration, grace: Duration) -> Duration {
    (report_latency * 2)
        .max(Duration::from_millis(250))
        .min(grace / 2)
}

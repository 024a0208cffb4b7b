//! The services every machine of the core uses to act: ids and randomness, timers,
//! transactions, the pacer, DNS, the output queue, counters and the backend client.
//!
//! It imports no machine (no registration, no call), so every machine can take a
//! `&mut Ctx` without an import cycle; the controller owns one and lends it out.

use crate::backend::client::{BackendClient, PendingRequest};
use crate::config::Config;
use crate::connections::{Connections, Opened, Sent};
use crate::dns::Dns;
use crate::io::{
    BackendOp, BindingIdentity, Connect, Event, Output, RegisterOutcome, RegistrationView,
    RequestId, SentRegister, StatusReport, Transmit,
};
use crate::rate::Pacer;
use crate::rng::IdGen;
use crate::stats::Stats;
use crate::time::TimerTable;
use crate::transaction::{Transactions, TxnAction};
use crate::transport::{Flow, Link, Transport};
use crate::wallclock::WallClock;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

/// Everything a machine needs to act, apart from the machines themselves.
#[derive(Debug)]
pub struct Ctx {
    /// The configuration the core was built with.
    pub cfg: Config,
    /// The seeded source of Call-IDs, tags, branches and jitter.
    pub ids: IdGen,
    /// Every deadline of the core.
    pub timers: TimerTable,
    /// SIP transactions in flight.
    pub txns: Transactions,
    /// When queued REGISTERs may leave.
    pub pacer: Pacer,
    /// Name resolution shared by everything that resolves a host.
    pub dns: Dns,
    /// TCP/TLS connections open or opening.
    pub conns: Connections,
    /// Registrar addresses that stopped answering (RFC 3263 failover of one
    /// registration tells the others).
    pub silent: crate::silent_targets::SilentTargets,
    /// Wall time from the anchor given at construction.
    pub clock: WallClock,
    /// Outputs not yet polled by the driver.
    pub out: VecDeque<Output>,
    /// The id of the last DNS query.
    pub next_query: u64,
    /// Counters since start.
    pub stats: Stats,
    /// Backend requests in flight and the status outbox.
    pub backend: BackendClient,
    /// When the shutdown's grace runs out, once one has begun.
    pub shutdown_deadline: Option<Instant>,
    /// Set once a shutdown is complete: nothing more is emitted.
    pub finished: bool,
    /// Registrations not yet stopped.
    active: usize,
    /// Slots whose registration stopped during the current step.
    stopped: Vec<u32>,
    /// Registrations whose next hop resolved to new addresses during the current step.
    addressed: Vec<(u32, Vec<IpAddr>)>,
}

impl Ctx {
    /// The services for a core built with `cfg`, randomness from `seed`, wall time
    /// anchored at `now` = `wall_now`.
    pub fn new(cfg: Config, seed: u64, now: Instant, wall_now: SystemTime) -> Self {
        let backend = BackendClient::new(
            cfg.backend_timeout,
            cfg.max_reports_in_flight,
            cfg.backend_retry_initial,
            cfg.backend_retry_cap,
        );
        let server_cap = cfg.max_server_transactions;
        let conns = Connections::new(cfg.streams.clone());
        Self {
            pacer: Pacer::new(cfg.register_rate),
            cfg,
            ids: IdGen::new(seed),
            timers: TimerTable::default(),
            txns: Transactions::with_server_cap(server_cap),
            dns: Dns::default(),
            silent: Default::default(),
            conns,
            clock: WallClock::new(now, wall_now),
            out: VecDeque::new(),
            next_query: 0,
            stats: Stats::default(),
            backend,
            shutdown_deadline: None,
            finished: false,
            active: 0,
            stopped: Vec::new(),
            addressed: Vec::new(),
        }
    }

    /// Whether a shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// Announces an event.
    pub fn emit(&mut self, event: Event) {
        self.out.push_back(Output::Event(event));
    }

    /// Queues a message to send on `to`: on a connection still opening it is held
    /// until the connection is up; on one that is gone it is dropped (counted).
    pub fn transmit(&mut self, to: Link, payload: Vec<u8>) {
        let payload = match to.flow.conn() {
            None => payload,
            Some(conn) => match self.conns.send(conn, payload) {
                Sent::Now(payload) => payload,
                Sent::Queued => return,
                Sent::Dropped(why) => {
                    *self.stats.connections.entry(why).or_default() += 1;
                    return;
                }
            },
        };
        self.write(to, payload);
    }

    /// The link to `remote` over `transport`: a datagram link, or a connection of
    /// ours, reused when one to that peer (and TLS name) is open or opening, else asked
    /// of the driver ([`Output::Connect`]). `None` at the connection limit.
    pub fn link_to(
        &mut self,
        now: Instant,
        transport: Transport,
        remote: SocketAddr,
        server_name: Option<&str>,
    ) -> Option<Link> {
        if transport == Transport::Udp {
            return Some(Link::udp(remote));
        }
        let opened = self
            .conns
            .connect(now, &mut self.timers, transport, remote, server_name);
        let Some(opened) = opened else {
            self.count_conn("refused_total_limit");
            return None;
        };
        if let Opened::New(conn) = opened {
            self.out.push_back(Output::Connect(Connect {
                conn,
                transport,
                remote,
                server_name: server_name.map(str::to_owned),
            }));
        }
        Some(Link {
            remote,
            flow: Flow::stream(transport, opened.conn()),
        })
    }

    /// Hands `payload` to the driver for `to`, now.
    pub fn write(&mut self, to: Link, payload: Vec<u8>) {
        self.stats.sip_out += 1;
        self.out.push_back(Output::Transmit(Transmit {
            remote: to.remote,
            flow: to.flow,
            payload,
        }));
    }

    /// Counts a connection event (see [`Stats::connections`]).
    pub fn count_conn(&mut self, label: &'static str) {
        *self.stats.connections.entry(label).or_default() += 1;
    }

    /// Sends what a transaction asks to send; its notices are not for this caller
    /// (a server transaction's response, whose owner is the one answering).
    pub fn send_all(&mut self, actions: Vec<TxnAction>) {
        for action in actions {
            if let TxnAction::Send { to, payload, .. } = action {
                self.transmit(to, payload);
            }
        }
    }

    /// Sends `bytes` (a response with `status`) in server transaction `txn`, which keeps
    /// it for retransmitted requests.
    pub fn respond(&mut self, now: Instant, txn: u64, status: u16, bytes: Vec<u8>) {
        let timers = self.cfg.timers;
        let actions = self
            .txns
            .respond(now, &timers, &mut self.timers, txn, status, bytes);
        self.send_all(actions);
    }

    /// Counts and announces the outcome of a REGISTER transaction.
    pub fn outcome(&mut self, provider_id: &str, outcome: RegisterOutcome, sent: SentRegister) {
        *self
            .stats
            .register_outcomes
            .entry(outcome.as_str())
            .or_default() += 1;
        self.emit(Event::RegisterOutcome {
            provider_id: provider_id.to_owned(),
            outcome,
            sent,
        });
    }

    /// Announces a provider's status (`view`) and queues `report` for the backend.
    pub fn report(&mut self, now: Instant, view: RegistrationView, report: StatusReport) {
        let provider_id = view.id.clone();
        self.emit(Event::RegistrationChanged(Box::new(view)));
        self.backend
            .push_report(now, &provider_id, report, &mut self.timers, &mut self.out);
    }

    /// Starts a backend request; its reply comes back with the id.
    pub fn backend_request(
        &mut self,
        now: Instant,
        op: BackendOp,
        pending: PendingRequest,
    ) -> RequestId {
        self.backend
            .request(now, op, pending, &mut self.timers, &mut self.out)
    }

    /// Announces a binding identity to persist.
    pub fn persist(&mut self, identity: BindingIdentity) {
        self.emit(Event::BindingIdentity(identity));
    }

    /// A registration started (each reaches [`Ctx::stopped`] once).
    pub fn started(&mut self) {
        self.active += 1;
    }

    /// A registration stopped (each does so once).
    pub fn stopped(&mut self, slot: u32) {
        self.active = self.active.saturating_sub(1);
        self.stopped.push(slot);
    }

    /// The slots whose registration stopped since the last call.
    pub fn take_stopped(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.stopped)
    }

    /// Registration `slot`'s next hop (registrar or outbound proxy) resolved to `addrs`:
    /// the addresses its provider's calls come from.
    pub fn provider_addresses(&mut self, slot: u32, addrs: &[IpAddr]) {
        self.addressed.push((slot, addrs.to_vec()));
    }

    /// The address changes since the last call.
    pub fn take_addressed(&mut self) -> Vec<(u32, Vec<IpAddr>)> {
        std::mem::take(&mut self.addressed)
    }

    /// Registrations started and not yet stopped.
    pub fn active(&self) -> usize {
        self.active
    }
}

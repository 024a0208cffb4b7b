//! The four transaction machines of RFC 3261 §17 (with RFC 6026's Accepted states), in
//! one table, [`Transactions`], which is all the rest of the core talks to.
//!
//! * [`non_invite_client`]: REGISTER today (Timers E, F). A transaction is forgotten as
//!   soon as its final response has been passed up: the Completed state of §17.1.2.2
//!   only absorbs retransmissions of that response until Timer K, and a response that
//!   matches no transaction is dropped just the same (counted as stray), so keeping ten
//!   thousand completed transactions for T4 after a burst would cost megabytes and
//!   change nothing on the wire. It also feeds the REGISTER pacer (round trips, losses).
//! * [`invite_client`]: Timers A, B, D, M; the ACK for a non-2xx final; every 2xx
//!   (retransmission or fork) passed to the owner, which ACKs it.
//! * [`invite_server`]: `100 Trying` at once, Timers G, H, I, L.
//! * [`non_invite_server`]: Timer J; the last response resent on a retransmission.
//!
//! An event may cause several actions (a non-2xx final to an INVITE both sends the ACK
//! and tells the owner), so every entry point returns a `Vec` of [`TxnAction`]s, to be
//! carried out in order. Every transaction ends by a timer of its own.

mod invite_client;
mod invite_server;
mod matching;
mod non_invite_client;
mod non_invite_server;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]
mod tests;

use crate::config::SipTimers;
use crate::keyed::OwnKeyMap;
use crate::message::{Request, Response};
use crate::time::{TimerKey, TimerTable, TxnTimer};
use crate::transport::{ConnId, Link};
use invite_client::InviteClient;
use invite_server::InviteServer;
use matching::{ClientKey, ServerKey};
use non_invite_client::NonInviteClient;
use non_invite_server::NonInviteServer;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub use matching::MAGIC_COOKIE;

/// Which side of a call a leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Leg {
    /// The provider's side: we are its UAS.
    Caller,
    /// The destination's side (LiveKit): we are its UAC.
    Callee,
}

/// Who a transaction works for, so its outcome reaches the right machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The registration in this slot.
    Registration(u32),
    /// An un-REGISTER of the registration in this slot, at a target it left.
    Cleanup(u32),
    /// One leg of a call (the B2BUA's).
    Leg {
        /// The call's id.
        call: u64,
        /// Which leg.
        leg: Leg,
    },
    /// The core's own answer to a request outside any call (the default owner of a
    /// new server transaction until [`Transactions::set_owner`]).
    Inbound,
    /// A request whose outcome nobody waits for: the BYE that hangs up a forked or
    /// late dialog the call does not use (`b2bua::fork`).
    Detached,
    /// An OPTIONS keep-alive to a UDP registrar ([`crate::keepalive`]).
    Keepalive,
}

/// What a transaction reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnEvent {
    /// A provisional response (100–199) to our request.
    Provisional(Box<Response>),
    /// A final response (status >= 200). For an INVITE: the non-2xx final (already
    /// ACKed by the transaction), and every 2xx, each retransmission and fork (the owner
    /// ACKs a 2xx; RFC 6026).
    Final(Box<Response>),
    /// No final response in time: Timer B or F (client), or Timer C; for a server
    /// transaction, the owner never answered (Timer C or [`TxnTimer::Unanswered`]).
    Timeout,
    /// INVITE server: Timer H fired, the non-2xx final was never ACKed.
    NoAck,
    /// The connection the request went on failed or closed before a final response
    /// (RFC 3261 §8.1.3.1: a transport error; the text says what happened).
    TransportError(String),
}

/// What the transaction layer asks of the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnAction {
    /// Send (or resend) these bytes.
    Send {
        /// Where to, and on which flow.
        to: Link,
        /// The message.
        payload: Vec<u8>,
        /// On the first retransmission of a non-INVITE request: when it first left (a
        /// loss for the REGISTER pacer's congestion window).
        lost_since: Option<Instant>,
    },
    /// Tell the owner what happened to transaction `id`.
    Notify {
        /// Whose transaction.
        owner: Owner,
        /// Which one.
        id: u64,
        /// What happened.
        event: TxnEvent,
        /// For a final response to a non-INVITE request never retransmitted: the round
        /// trip.
        rtt: Option<RttSample>,
    },
}

/// A round trip measured by a transaction (for the REGISTER pacer's window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttSample {
    /// Where the request went.
    pub remote: SocketAddr,
    /// When it left.
    pub sent_at: Instant,
}

/// What [`Transactions::on_request`] made of an inbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// A new request: server transaction `id` was created (owner [`Owner::Inbound`]);
    /// the owner answers with [`Transactions::respond`]. `actions` holds an INVITE's
    /// `100 Trying`.
    New {
        /// The new transaction.
        id: u64,
        /// For a CANCEL: the INVITE server transaction it cancels, if still known.
        cancels: Option<u64>,
        /// To carry out.
        actions: Vec<TxnAction>,
    },
    /// A retransmission, handled by its transaction (the last response resent, or
    /// nothing); an ACK for a non-2xx final is absorbed here too.
    Absorbed(Vec<TxnAction>),
    /// An ACK that is the owner's: for a 2xx (its own transaction, RFC 3261 §17), with
    /// the INVITE server transaction when the ACK reused its branch (RFC 6026 §8.7).
    Ack {
        /// The Accepted INVITE server transaction, if the ACK matched one.
        invite: Option<u64>,
    },
    /// No readable top Via or no magic-cookie branch (RFC 2543): no transaction; the
    /// caller answers `400` (except to an ACK, which gets no response).
    NotRfc3261,
    /// A new request while its cap of server transactions is held ([`Room`]): no
    /// transaction is kept; the caller answers it statelessly (RFC 3261 §8.2.7 allows a
    /// stateless UAS).
    Stateless,
}

/// Where a request came from, and which cap a server transaction for it counts
/// against ([`Transactions::on_request`]).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Where it came from, and so where answers go (on a stream: its connection). A
    /// reliable flow needs no timers to absorb retransmissions.
    pub from: Link,
    /// The cap its transaction counts against.
    pub room: Room,
}

/// Which cap a new server transaction counts against.
///
/// The cap ([`MAX_SERVER_TRANSACTIONS`]) exists so that a flood of distinct requests
/// cannot grow memory without bound; it must not also cut calls in progress off their
/// peers. Past it, a BYE, re-INVITE or CANCEL for a call we hold would otherwise be
/// answered statelessly with `481` and never reach the call, which then lingers until
/// its timers end it while the caller believes it hung up. So a request for a held call
/// may use a reserve of an eighth of the cap above it (50,000 transactions by default).
/// The reserve stays bounded because only peers in a live dialog — admitted providers
/// and our destinations — can claim it, and calls are capped by `MAX_CALLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// A request for no call we hold: within the cap.
    Shared,
    /// A request for a call in progress (inside its dialog, or a CANCEL of its INVITE):
    /// within the cap plus its reserve.
    Call,
}

impl Room {
    /// The most server transactions held at once for a request of this kind, given the
    /// configured cap.
    fn cap(self, cap: usize) -> usize {
        match self {
            Room::Shared => cap,
            Room::Call => cap.saturating_add(cap / 8),
        }
    }
}

/// The most server transactions held at once by default ([`crate::Config`]'s
/// `max_server_transactions`). Each keeps its last response for 32 s (Timers H, J and
/// RFC 6026's L), so a flood of distinct requests, even the few triage lets through,
/// would otherwise grow memory without bound; past the cap new requests for no call
/// are answered statelessly (those for a call in progress have a reserve: [`Room`]) (a retransmission of one then gets a fresh answer — a To-tag of its own
/// — which is harmless for the error answers such requests get).
///
/// Legitimate load must never reach it: every call holds two (its INVITE and the
/// caller's BYE) for 32 s after they end, so 400,000 carries 6,000 calls/s — the rate
/// this B2BUA is built for — at about 1 KiB each, 400 MiB at the very worst. (The
/// first cap, 20,000, refused every new call for 21 s of each 32 s beyond 310 calls/s;
/// scripts/bench-calls.sh found it.)
pub const MAX_SERVER_TRANSACTIONS: usize = 400_000;

/// Arms and disarms the timers of one transaction.
pub(super) struct Clock<'a> {
    pub id: u64,
    pub now: Instant,
    pub cfg: &'a SipTimers,
    table: &'a mut TimerTable,
}

impl Clock<'_> {
    /// Arms `timer` to fire `after` from now.
    pub fn set(&mut self, timer: TxnTimer, after: Duration) {
        self.table
            .set(TimerKey::Transaction(self.id, timer), self.now + after);
    }

    /// Disarms `timer`.
    pub fn cancel(&mut self, timer: TxnTimer) {
        self.table.cancel(TimerKey::Transaction(self.id, timer));
    }

    /// A notification from this transaction.
    pub fn notify(&self, owner: Owner, event: TxnEvent) -> TxnAction {
        TxnAction::Notify {
            owner,
            id: self.id,
            event,
            rtt: None,
        }
    }
}

/// Builds a [`TxnAction::Send`] without a loss mark.
pub(super) fn send(to: Link, payload: Vec<u8>) -> TxnAction {
    TxnAction::Send {
        to,
        payload,
        lost_since: None,
    }
}

/// What a machine did with an event.
#[derive(Debug, Default)]
pub(super) struct Step {
    pub actions: Vec<TxnAction>,
    /// The transaction is Terminated and leaves the table.
    pub done: bool,
}

impl Step {
    pub fn live(actions: Vec<TxnAction>) -> Self {
        Self {
            actions,
            done: false,
        }
    }
    pub fn done(actions: Vec<TxnAction>) -> Self {
        Self {
            actions,
            done: true,
        }
    }
}

/// Every transaction timer (to check [`Machine::timers`] in debug builds).
const ALL_TIMERS: [TxnTimer; 13] = [
    TxnTimer::A,
    TxnTimer::B,
    TxnTimer::C,
    TxnTimer::D,
    TxnTimer::E,
    TxnTimer::F,
    TxnTimer::G,
    TxnTimer::H,
    TxnTimer::I,
    TxnTimer::J,
    TxnTimer::L,
    TxnTimer::M,
    TxnTimer::Unanswered,
];

#[derive(Debug)]
enum Machine {
    NonInviteClient(NonInviteClient),
    InviteClient(Box<InviteClient>),
    InviteServer(InviteServer),
    NonInviteServer(NonInviteServer),
}

impl Machine {
    /// The timers this kind of machine may arm, all disarmed when it ends: four or five
    /// look-ups instead of all thirteen for every transaction (at 2,375 calls/s the
    /// thirteen were the core's single largest cost in `benches/calls.rs`).
    fn timers(&self) -> &'static [TxnTimer] {
        use TxnTimer::*;
        match self {
            Machine::NonInviteClient(_) => &[E, F],
            Machine::InviteClient(_) => &[A, B, C, D, M],
            Machine::InviteServer(_) => &[C, G, H, I, L],
            Machine::NonInviteServer(_) => &[J, Unanswered],
        }
    }
}

#[derive(Debug)]
enum Key {
    Client(ClientKey),
    Server(ServerKey),
}

#[derive(Debug)]
struct Entry {
    key: Key,
    machine: Machine,
}

/// All transactions, client and server, by id and by matching key.
#[derive(Debug, Default)]
pub struct Transactions {
    by_id: BTreeMap<u64, Entry>,
    clients: OwnKeyMap<ClientKey, u64>,
    servers: BTreeMap<ServerKey, u64>,
    /// Live client transactions per remote IP: answers are expected only from these
    /// (the port is left out, since some registrars answer from another port).
    by_remote: BTreeMap<IpAddr, u32>,
    next_id: u64,
    /// Non-INVITE client transactions neither answered nor retransmitted yet, per remote
    /// address (one entry per registrar in use: the pacer's windows are per registrar;
    /// calls are not paced, so INVITEs are not counted).
    in_flight: BTreeMap<SocketAddr, usize>,
    /// Remotes whose count changed since the pacer last heard (see [`Self::take_changed`]).
    changed: Vec<SocketAddr>,
    /// The most server transactions held at once.
    server_cap: ServerCap,
}

/// The server-transaction cap, [`MAX_SERVER_TRANSACTIONS`] unless configured.
#[derive(Debug, Clone, Copy)]
struct ServerCap(usize);

impl Default for ServerCap {
    fn default() -> Self {
        Self(MAX_SERVER_TRANSACTIONS)
    }
}

impl Transactions {
    /// A table that holds at most `cap` server transactions (see
    /// [`MAX_SERVER_TRANSACTIONS`]).
    pub fn with_server_cap(cap: usize) -> Self {
        Self {
            server_cap: ServerCap(cap),
            ..Self::default()
        }
    }

    fn clock<'a>(
        id: u64,
        now: Instant,
        cfg: &'a SipTimers,
        table: &'a mut TimerTable,
    ) -> Clock<'a> {
        Clock {
            id,
            now,
            cfg,
            table,
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Starts a non-INVITE client transaction over UDP: the caller sends `request` right
    /// away (this returns its id and arms Timers E and F). Only a registration's
    /// requests count towards the REGISTER pacer's windows.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
        owner: Owner,
        branch: String,
        method: &str,
        to: Link,
        request: Vec<u8>,
    ) -> u64 {
        let key = ClientKey {
            branch,
            method: method.to_owned(),
        };
        self.replace(&key, table);
        let id = self.new_id();
        let mut clock = Self::clock(id, now, timers, table);
        let mut txn = NonInviteClient::start(&mut clock, owner, to, request);
        if matches!(owner, Owner::Registration(_)) {
            *self.in_flight.entry(to.remote).or_default() += 1;
            self.changed.push(to.remote);
        } else {
            // A call's BYE or CANCEL is not paced: it must not open a pacer window (and
            // so a registrar socket) towards the call's peer.
            txn.lost = true;
        }
        self.add_client(id, key, to.remote, Machine::NonInviteClient(txn));
        id
    }

    /// Starts an INVITE client transaction: the caller sends `payload` (the bytes of
    /// `invite`, whose top Via carries `branch`) right away. On a reliable flow (TCP,
    /// TLS) there is no Timer A and no Timer D.
    #[allow(clippy::too_many_arguments)]
    pub fn start_invite(
        &mut self,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
        owner: Owner,
        branch: String,
        invite: Request,
        to: Link,
        payload: Vec<u8>,
    ) -> u64 {
        let key = ClientKey {
            branch,
            method: "INVITE".to_owned(),
        };
        self.replace(&key, table);
        let id = self.new_id();
        let mut clock = Self::clock(id, now, timers, table);
        let txn = InviteClient::start(&mut clock, owner, to, invite, payload);
        self.add_client(id, key, to.remote, Machine::InviteClient(Box::new(txn)));
        id
    }

    /// A branch reused by the caller would orphan the older transaction: end it
    /// instead, so that the table stays consistent (our branches are never reused).
    fn replace(&mut self, key: &ClientKey, table: &mut TimerTable) {
        if let Some(&old) = self.clients.get(key) {
            self.abandon(old, table);
        }
    }

    fn add_client(&mut self, id: u64, key: ClientKey, remote: SocketAddr, machine: Machine) {
        self.clients.insert(key.clone(), id);
        *self.by_remote.entry(remote.ip()).or_default() += 1;
        self.by_id.insert(
            id,
            Entry {
                key: Key::Client(key),
                machine,
            },
        );
    }

    /// Whether new requests for no call are past the cap (answered statelessly).
    pub fn servers_full(&self) -> bool {
        self.servers.len() >= self.server_cap.0
    }

    /// Matches an inbound request to its server transaction (§17.2.3), creating one for
    /// a new request, within the cap that `arrival.room` names.
    pub fn on_request(
        &mut self,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
        request: &Request,
        arrival: Arrival,
    ) -> ServerStep {
        let Arrival { from, room } = arrival;
        let Ok(key) = ServerKey::of_request(request) else {
            return ServerStep::NotRfc3261;
        };
        if let Some(&id) = self.servers.get(&key) {
            let mut clock = Self::clock(id, now, timers, table);
            let Some(entry) = self.by_id.get_mut(&id) else {
                return ServerStep::Absorbed(Vec::new());
            };
            let is_ack = request.method == "ACK";
            let step = match &mut entry.machine {
                Machine::InviteServer(m) if is_ack => {
                    if m.is_accepted() {
                        return ServerStep::Ack { invite: Some(id) };
                    }
                    m.on_ack(&mut clock)
                }
                Machine::InviteServer(m) => m.on_retransmission(),
                Machine::NonInviteServer(m) => m.on_retransmission(),
                Machine::NonInviteClient(_) | Machine::InviteClient(_) => Step::default(),
            };
            return ServerStep::Absorbed(self.finish_step(id, step, table));
        }
        if request.method == "ACK" {
            return ServerStep::Ack { invite: None };
        }
        if self.servers.len() >= room.cap(self.server_cap.0) {
            return ServerStep::Stateless;
        }
        let id = self.new_id();
        let mut clock = Self::clock(id, now, timers, table);
        let (machine, actions) = if request.method == "INVITE" {
            let (m, actions) = InviteServer::start(&mut clock, request, from);
            (Machine::InviteServer(m), actions)
        } else {
            let m = NonInviteServer::start(&mut clock, from);
            (Machine::NonInviteServer(m), Vec::new())
        };
        let cancels = (request.method == "CANCEL")
            .then(|| self.servers.get(&key.cancelled()).copied())
            .flatten();
        self.servers.insert(key.clone(), id);
        self.by_id.insert(
            id,
            Entry {
                key: Key::Server(key),
                machine,
            },
        );
        ServerStep::New {
            id,
            cancels,
            actions,
        }
    }

    /// The owner's response to server transaction `id` (already built, with its
    /// To-tag): sent by the transaction and kept for retransmitted requests. Responses
    /// the state does not allow (a second final) are not sent. Returns what to do.
    pub fn respond(
        &mut self,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
        id: u64,
        status: u16,
        payload: Vec<u8>,
    ) -> Vec<TxnAction> {
        let mut clock = Self::clock(id, now, timers, table);
        let Some(entry) = self.by_id.get_mut(&id) else {
            return Vec::new();
        };
        let step = match &mut entry.machine {
            Machine::InviteServer(m) => m.respond(&mut clock, status, payload),
            Machine::NonInviteServer(m) => m.respond(&mut clock, status, payload),
            Machine::NonInviteClient(_) | Machine::InviteClient(_) => Step::default(),
        };
        self.finish_step(id, step, table)
    }

    /// Hands server transaction `id` to `owner` (e.g. the call leg an INVITE became).
    pub fn set_owner(&mut self, id: u64, owner: Owner) {
        match self.by_id.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::InviteServer(m)) => m.owner = owner,
            Some(Machine::NonInviteServer(m)) => m.owner = owner,
            _ => {}
        }
    }

    /// Forgets a transaction whose owner lost interest (e.g. the provider was removed);
    /// late responses to it are then dropped as strays.
    pub fn abandon(&mut self, id: u64, table: &mut TimerTable) {
        let Some(entry) = self.by_id.remove(&id) else {
            return;
        };
        for &timer in entry.machine.timers() {
            table.cancel(TimerKey::Transaction(id, timer));
        }
        // A timer armed outside its machine's list would be left behind (and fire for
        // nothing); every test and simulation in debug builds checks the lists.
        debug_assert!(
            ALL_TIMERS
                .iter()
                .all(|&t| table.get(TimerKey::Transaction(id, t)).is_none()),
            "transaction {id} armed a timer that Machine::timers does not list"
        );
        let remote = match &entry.machine {
            Machine::NonInviteClient(m) => {
                if !m.lost {
                    self.left_flight(m.to.remote);
                }
                Some(m.to.remote)
            }
            Machine::InviteClient(m) => Some(m.to.remote),
            Machine::InviteServer(_) | Machine::NonInviteServer(_) => None,
        };
        if let Some(remote) = remote {
            if let Some(n) = self.by_remote.get_mut(&remote.ip()) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.by_remote.remove(&remote.ip());
                }
            }
        }
        match entry.key {
            Key::Client(k) => {
                if self.clients.get(&k) == Some(&id) {
                    self.clients.remove(&k);
                }
            }
            Key::Server(k) => {
                if self.servers.get(&k) == Some(&id) {
                    self.servers.remove(&k);
                }
            }
        }
    }

    /// Keeps a non-INVITE client transaction open for its final response until Timer F,
    /// but sends the request no more (a shutdown gives up on a registrar that never
    /// answered, while a late answer must still be heard).
    pub fn stop_retransmitting(&mut self, id: u64, table: &mut TimerTable) {
        if let Some(Machine::NonInviteClient(txn)) = self.by_id.get_mut(&id).map(|e| &mut e.machine)
        {
            table.cancel(TimerKey::Transaction(id, TxnTimer::E));
            // No longer on the path: it must not hold a place in the pacer's window.
            if !txn.lost {
                txn.lost = true;
                let remote = txn.to.remote;
                self.left_flight(remote);
            }
        }
    }

    /// Connection `conn` is gone (`reason`): its client transactions end now with
    /// [`TxnEvent::TransportError`] rather than at Timer B/F, and its server
    /// transactions, which can no longer answer, end silently. Walks every transaction:
    /// a connection closes rarely.
    pub fn on_flow_closed(
        &mut self,
        conn: ConnId,
        reason: &str,
        table: &mut TimerTable,
    ) -> Vec<TxnAction> {
        let on_it: Vec<(u64, Option<Owner>)> = self
            .by_id
            .iter()
            .filter_map(|(&id, e)| {
                let (to, owner) = match &e.machine {
                    Machine::NonInviteClient(m) => (m.to, Some(m.owner())),
                    Machine::InviteClient(m) => (m.to, Some(m.owner())),
                    Machine::InviteServer(m) => (m.to, None),
                    Machine::NonInviteServer(m) => (m.to, None),
                };
                (to.flow.conn() == Some(conn)).then_some((id, owner))
            })
            .collect();
        let mut actions = Vec::new();
        for (id, owner) in on_it {
            self.abandon(id, table);
            if let Some(owner) = owner {
                actions.push(TxnAction::Notify {
                    owner,
                    id,
                    event: TxnEvent::TransportError(reason.to_owned()),
                    rtt: None,
                });
            }
        }
        actions
    }

    /// The slots of the registrations with a REGISTER in flight to `remote` (a walk
    /// over every transaction: once per registrar found silent, not per message).
    pub fn registrations_waiting_on(&self, remote: SocketAddr) -> Vec<u32> {
        self.by_id
            .values()
            .filter_map(|e| match &e.machine {
                Machine::NonInviteClient(m) if m.to.remote == remote => match m.owner() {
                    Owner::Registration(slot) => Some(slot),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Where client transaction `id` sends (its answers come from there), while it
    /// lives.
    pub fn link_of(&self, id: u64) -> Option<Link> {
        match &self.by_id.get(&id)?.machine {
            Machine::NonInviteClient(m) => Some(m.to),
            Machine::InviteClient(m) => Some(m.to),
            Machine::InviteServer(_) | Machine::NonInviteServer(_) => None,
        }
    }

    /// Whether a live client transaction waits for an answer from `ip`.
    pub fn awaits(&self, ip: IpAddr) -> bool {
        self.by_remote.contains_key(&ip)
    }

    /// Number of live transactions, client and server.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Live transactions of call legs (walks them all: for checks, not for hot paths).
    pub fn of_calls(&self) -> usize {
        self.by_id
            .values()
            .filter(|e| {
                let owner = match &e.machine {
                    Machine::NonInviteClient(m) => m.owner(),
                    Machine::InviteClient(m) => m.owner(),
                    Machine::InviteServer(m) => m.owner,
                    Machine::NonInviteServer(m) => m.owner,
                };
                matches!(owner, Owner::Leg { .. })
            })
            .count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Non-INVITE client transactions neither answered nor retransmitted: what the
    /// pacer's windows count.
    pub fn in_flight(&self) -> usize {
        self.in_flight.values().sum()
    }

    /// Those of them sent to `remote`.
    pub fn in_flight_to(&self, remote: SocketAddr) -> usize {
        self.in_flight.get(&remote).copied().unwrap_or(0)
    }

    /// The remotes whose count in flight changed since the last call (possibly
    /// repeated), for the pacer to re-read with [`Self::in_flight_to`].
    pub fn take_changed(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.changed)
    }

    fn left_flight(&mut self, remote: SocketAddr) {
        if let Some(n) = self.in_flight.get_mut(&remote) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&remote);
            }
        }
        self.changed.push(remote);
    }

    /// Matches a response by top Via branch and CSeq method (RFC 3261 §17.1.3).
    /// Returns `None` when it belongs to no transaction (a stray, to be dropped);
    /// `Some` (possibly empty: an absorbed retransmission) otherwise.
    pub fn on_response(
        &mut self,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
        response: Response,
    ) -> Option<Vec<TxnAction>> {
        let key = ClientKey::of_response(&response)?;
        let &id = self.clients.get(&key)?;
        let mut clock = Self::clock(id, now, timers, table);
        let step = match &mut self.by_id.get_mut(&id)?.machine {
            Machine::NonInviteClient(m) => m.on_response(&mut clock, response),
            Machine::InviteClient(m) => m.on_response(&mut clock, response),
            Machine::InviteServer(_) | Machine::NonInviteServer(_) => return None,
        };
        Some(self.finish_step(id, step, table))
    }

    /// Fires `timer` of transaction `id`.
    pub fn on_timer(
        &mut self,
        id: u64,
        timer: TxnTimer,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
    ) -> Vec<TxnAction> {
        let mut clock = Self::clock(id, now, timers, table);
        let Some(entry) = self.by_id.get_mut(&id) else {
            return Vec::new();
        };
        let step = match &mut entry.machine {
            Machine::NonInviteClient(m) => m.on_timer(&mut clock, timer),
            Machine::InviteClient(m) => m.on_timer(&mut clock, timer),
            Machine::InviteServer(m) => m.on_timer(&mut clock, timer),
            Machine::NonInviteServer(m) => m.on_timer(&mut clock, timer),
        };
        self.finish_step(id, step, table)
    }

    /// Applies what a machine did: the pacer's loss bookkeeping, and the end of the
    /// transaction.
    fn finish_step(&mut self, id: u64, step: Step, table: &mut TimerTable) -> Vec<TxnAction> {
        for action in &step.actions {
            if let TxnAction::Send {
                to,
                lost_since: Some(_),
                ..
            } = action
            {
                self.left_flight(to.remote);
            }
        }
        if step.done {
            self.abandon(id, table);
        }
        step.actions
    }
}

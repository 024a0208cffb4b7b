//! Stream-link invariants (issue 10's TCP and TLS): the core opens at most one
//! connection per (transport, registrar address) and no more in all than there are
//! stream targets; it writes only on connections that are up and never on one that is
//! gone for it; what it writes frames cleanly (RFC 3261 §18.3); every REGISTER goes
//! the way its provider's transport says — on a stream with `SIP/2.0/TCP` (`TLS`) and
//! `;transport=tcp` (`tls`), or as a datagram with `SIP/2.0/UDP` and no `;transport=`;
//! a registration whose connection dropped is registered again within
//! [`REREGISTER_BOUND`] when its registrar accepts connections throughout; and
//! connections to a registrar are not opened at a constant pace ([`CHURN_WINDOW`]).

use super::wire::{self, Scanned};
use super::{Findings, Invariant};
use crate::scenario::SipTransport;
use sip_core::Transport;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How soon a registration registered over a connection that dropped must be
/// registered again on a new one, when the registrar, its link and its listener stay
/// healthy: the core re-registers at once, and a connection and a challenge take a
/// few round trips (at most a few hundred milliseconds on the modelled links).
pub const REREGISTER_BOUND: Duration = Duration::from_secs(10);

/// The window over which connection churn is bounded.
pub const CHURN_WINDOW: Duration = Duration::from_secs(600);

/// Connections one stream (TCP or TLS) account may cause its registrar's target in a
/// [`CHURN_WINDOW`]: its failures back off from 5 s doubling (a fresh run of failures
/// has 8 attempts in 10 minutes, at most one connection each), so a core that retried
/// at a constant pace would exceed it many times over.
pub const CHURN_PER_ACCOUNT: usize = 12;

/// The core's view of one of its connections, as the checks follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreView {
    /// Asked for (`Output::Connect`), `Connected` not yet delivered.
    Opening,
    /// `Connected` delivered.
    Up,
    /// `Closed` delivered, or the core closed it (`Output::Close`).
    Gone,
}

#[derive(Debug, Clone)]
struct Tracked {
    key: (Transport, SocketAddr),
    view: CoreView,
}

/// A registration that must be registered again after its connection dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reregister {
    /// The provider.
    pub provider: String,
    /// Its registrar (by index).
    pub registrar: usize,
    /// When the connection dropped.
    pub dropped_at: Instant,
}

/// The stream checker.
#[derive(Debug, Clone, Default)]
pub struct StreamChecks {
    /// `(registrar index, SIP user)` → the transport of that account's provider.
    transports: BTreeMap<(usize, String), SipTransport>,
    /// Connections the core may hold at once.
    bound: usize,
    conns: BTreeMap<u64, Tracked>,
    /// Connections open or opening for the core, per target (the latest asked for).
    live: BTreeMap<(Transport, SocketAddr), u64>,
    /// Connections open or opening for the core, in all.
    open: usize,
    /// Obligations by index (checked when due).
    obligations: Vec<Reregister>,
    /// Registrar index → stream accounts it serves at some point of the run.
    accounts_at: BTreeMap<usize, usize>,
    /// Registrar index → when the core asked for connections to it (in the window).
    connects: BTreeMap<usize, VecDeque<Instant>>,
    /// Registrar index → when its connections were dropped or timed out under the
    /// core, or the workload changed (each may cost a connection at once).
    disturbed: BTreeMap<usize, VecDeque<Instant>>,
    /// When the provider list changed or an operator command came.
    workload: VecDeque<Instant>,
}

/// Forgets the instants of `q` older than the churn window.
fn trim(q: &mut VecDeque<Instant>, now: Instant) {
    while q
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) > CHURN_WINDOW)
    {
        q.pop_front();
    }
}

impl StreamChecks {
    /// A checker: `transports` maps each account to its provider's transport, and
    /// `bound` is how many connections the core may hold at once (one per TCP
    /// registrar target; the simulator accepts none from outside).
    pub fn new(transports: BTreeMap<(usize, String), SipTransport>, bound: usize) -> Self {
        let mut accounts_at = BTreeMap::new();
        for ((registrar, _), t) in &transports {
            if t.is_stream() {
                *accounts_at.entry(*registrar).or_default() += 1;
            }
        }
        Self {
            transports,
            bound,
            accounts_at,
            ..Self::default()
        }
    }

    /// Registrar `registrar`'s connections dropped or timed out under the core.
    pub fn on_disturbed(&mut self, registrar: usize, now: Instant) {
        self.disturbed.entry(registrar).or_default().push_back(now);
    }

    /// The provider list changed, or an operator command came.
    pub fn on_workload(&mut self, now: Instant) {
        self.workload.push_back(now);
    }

    /// Connection churn towards registrar `registrar`: within any [`CHURN_WINDOW`] at
    /// most [`CHURN_PER_ACCOUNT`] connections per stream account there, plus two per drop
    /// and per workload change in the window, plus a few.
    fn check_churn(&mut self, f: &mut Findings, registrar: usize, now: Instant) {
        let q = self.connects.entry(registrar).or_default();
        q.push_back(now);
        trim(q, now);
        let asked = q.len();
        let d = self.disturbed.entry(registrar).or_default();
        trim(d, now);
        trim(&mut self.workload, now);
        let accounts = self.accounts_at.get(&registrar).copied().unwrap_or(0);
        let allowed = CHURN_PER_ACCOUNT * accounts + 2 * (d.len() + self.workload.len()) + 4;
        if asked > allowed {
            f.push(
                Invariant::ConnectionChurn,
                format!(
                    "{asked} connections to registrar {registrar} within {}s, allowed {allowed} ({accounts} stream account(s), {} drop(s), {} workload change(s))",
                    CHURN_WINDOW.as_secs(),
                    d.len(),
                    self.workload.len()
                ),
            );
            // Once per window, not at every connection after.
            q.clear();
        }
    }

    /// Connections open or opening for the core.
    pub fn live(&self) -> usize {
        self.open
    }

    /// The core's view of `conn` (`None`: it never asked for it).
    pub fn view(&self, conn: u64) -> Option<CoreView> {
        self.conns.get(&conn).map(|t| t.view)
    }

    /// The core asked at `now` for connection `conn` to `remote` (registrar
    /// `registrar`'s, when one listens there).
    pub fn on_connect(
        &mut self,
        f: &mut Findings,
        now: Instant,
        conn: u64,
        transport: Transport,
        remote: SocketAddr,
        registrar: Option<usize>,
    ) {
        if let Some(r) = registrar {
            self.check_churn(f, r, now);
        }
        let key = (transport, remote);
        if self.conns.contains_key(&conn) {
            f.push(
                Invariant::StreamConnections,
                format!("connection number {conn} asked for twice"),
            );
        }
        if let Some(other) = self.live.get(&key) {
            f.push(
                Invariant::StreamConnections,
                format!(
                    "a second {} connection (#{conn}) to {remote} while #{other} is open or opening",
                    transport.as_str()
                ),
            );
        }
        self.conns.insert(
            conn,
            Tracked {
                key,
                view: CoreView::Opening,
            },
        );
        self.live.insert(key, conn);
        self.open += 1;
        if self.open > self.bound {
            f.push(
                Invariant::StreamConnections,
                format!(
                    "{} connections open or opening, bound {} (stream targets)",
                    self.open, self.bound
                ),
            );
        }
    }

    /// `Connected` was delivered for `conn`.
    pub fn on_connected(&mut self, conn: u64) {
        if let Some(t) = self.conns.get_mut(&conn) {
            t.view = CoreView::Up;
        }
    }

    /// `conn` is gone for the core (`Closed` delivered, or `Output::Close`).
    pub fn on_gone(&mut self, conn: u64) {
        let Some(t) = self.conns.get_mut(&conn) else {
            return;
        };
        if t.view == CoreView::Gone {
            return;
        }
        t.view = CoreView::Gone;
        self.open = self.open.saturating_sub(1);
        if self.live.get(&t.key) == Some(&conn) {
            self.live.remove(&t.key);
        }
    }

    /// The core wrote on `conn`: only an up connection may be written to (the core
    /// holds messages until `Connected`, and a connection gone for it is gone).
    pub fn on_write(&mut self, f: &mut Findings, conn: u64) {
        match self.view(conn) {
            Some(CoreView::Up) => {}
            Some(CoreView::Opening) => f.push(
                Invariant::StreamWrite,
                format!("a write on conn#{conn} before Connected"),
            ),
            Some(CoreView::Gone) => f.push(
                Invariant::StreamWrite,
                format!("a write on conn#{conn}, which is closed for the core"),
            ),
            None => f.push(
                Invariant::StreamWrite,
                format!("a write on conn#{conn}, which the core never asked for"),
            ),
        }
    }

    /// What the core wrote on a connection cannot be framed.
    pub fn on_unframed(&mut self, f: &mut Findings, conn: u64, why: &str) {
        f.push(
            Invariant::StreamFraming,
            format!("the core's bytes on conn#{conn} cannot be framed: {why}"),
        );
    }

    /// A message the core sent to registrar `registrar`, on a stream (`on_stream`) or
    /// as a datagram: a REGISTER must take its provider's transport and say so.
    pub fn on_message(
        &mut self,
        f: &mut Findings,
        registrar: usize,
        m: &Scanned<'_>,
        on_stream: bool,
    ) {
        if m.method() != Some("REGISTER") {
            return;
        }
        let Some(user) = m.to_user() else {
            return;
        };
        let Some(transport) = self.transports.get(&(registrar, user.to_owned())).copied() else {
            return;
        };
        let token = transport.core().as_str();
        let mut wrong = Vec::new();
        if on_stream != transport.is_stream() {
            wrong.push(if on_stream {
                "sent on a connection"
            } else {
                "sent as a datagram"
            });
        }
        let via = m.header("Via").unwrap_or_default();
        if !via.starts_with(&format!("SIP/2.0/{token} ")) {
            wrong.push("its Via names another transport");
        }
        // Every binding of ours it names (the NAT replacement names two).
        for c in m.contacts() {
            let uri = wire::contact_uri(c);
            if wire::param(uri, "line").is_none() {
                continue;
            }
            // UDP is the default: said by no `;transport=` at all.
            let said = wire::param(uri, "transport").unwrap_or("udp");
            if !said.eq_ignore_ascii_case(token) {
                wrong.push("its Contact names another transport");
                break;
            }
        }
        if !wrong.is_empty() {
            let cseq = m.cseq().map_or(0, |(n, _)| n);
            f.push(
                Invariant::RegisterTransport,
                format!(
                    "REGISTER CSeq {cseq} of {user} (a {token} account at registrar {registrar}): {}",
                    wrong.join(", ")
                ),
            );
        }
    }

    /// Records an obligation; returns its index.
    pub fn expect_reregister(&mut self, obligation: Reregister) -> usize {
        self.obligations.push(obligation);
        self.obligations.len() - 1
    }

    /// Obligation `index`.
    pub fn obligation(&self, index: usize) -> Option<&Reregister> {
        self.obligations.get(index)
    }
}

/// Checks obligation `o` when due: `registered_again` says whether the core reports the
/// provider registered and its registrar holds the current registration's binding made
/// after the drop; `void` says why the obligation lapsed (the registrar, its link or
/// its listener broke down meanwhile, or the workload changed), if it did.
pub fn check_reregister(f: &mut Findings, o: &Reregister, registered_again: bool, void: bool) {
    if void || registered_again {
        return;
    }
    f.push_for(
        Invariant::TcpReregistered,
        &o.provider,
        format!(
            "{}: its connection to registrar {} dropped and it was not registered again within {}s, the registrar accepting connections throughout",
            o.provider,
            o.registrar,
            REREGISTER_BOUND.as_secs()
        ),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
// The checks take instants; the tests anchor virtual time once.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn checker() -> StreamChecks {
        let transports = BTreeMap::from([
            ((0, "t".to_owned()), SipTransport::Tcp),
            ((0, "u".to_owned()), SipTransport::Udp),
        ]);
        StreamChecks::new(transports, 1)
    }

    fn names(f: &Findings) -> Vec<&'static str> {
        f.list().iter().map(|v| v.invariant.name()).collect()
    }

    #[test]
    fn a_second_connection_to_one_target_and_writes_out_of_turn_are_found() {
        let now = Instant::now();
        let mut c = checker();
        let mut f = Findings::default();
        let reg = addr("10.0.0.1:5060");
        c.on_connect(&mut f, now, 1, Transport::Tcp, reg, Some(0));
        c.on_write(&mut f, 1);
        assert_eq!(names(&f), ["write-only-when-connected"], "before Connected");
        c.on_connected(1);
        c.on_write(&mut f, 1);
        c.on_connect(&mut f, now, 2, Transport::Tcp, reg, Some(0));
        assert_eq!(
            names(&f)[1..],
            ["one-connection-per-target", "one-connection-per-target"],
            "a second one while the first is up, and more than the bound"
        );
        c.on_gone(1);
        c.on_gone(2);
        c.on_write(&mut f, 1);
        assert_eq!(names(&f).last(), Some(&"write-only-when-connected"));
        let before = f.list().len();
        c.on_connect(&mut f, now, 3, Transport::Tcp, reg, Some(0));
        assert_eq!(f.list().len(), before, "a new one once the old is gone");
    }

    fn register(via: &str, contact: &str, user: &str) -> String {
        format!(
            "REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/{via} 192.0.2.1:5060;branch=z9hG4bKa\r\n\
             To: <sip:{user}@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
             Contact: <sip:{user}@192.0.2.1:5060{contact};line=x>\r\nContent-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn a_register_off_its_providers_transport_is_found() {
        let mut c = checker();
        let mut f = Findings::default();
        let ok_tcp = register("TCP", ";transport=tcp", "t");
        let ok_udp = register("UDP", "", "u");
        c.on_message(&mut f, 0, &wire::scan(ok_tcp.as_bytes()).unwrap(), true);
        c.on_message(&mut f, 0, &wire::scan(ok_udp.as_bytes()).unwrap(), false);
        assert!(f.is_empty(), "{:?}", f.list());
        c.on_message(&mut f, 0, &wire::scan(ok_tcp.as_bytes()).unwrap(), false);
        let udp_via = register("UDP", ";transport=tcp", "t");
        c.on_message(&mut f, 0, &wire::scan(udp_via.as_bytes()).unwrap(), true);
        let no_param = register("TCP", "", "t");
        c.on_message(&mut f, 0, &wire::scan(no_param.as_bytes()).unwrap(), true);
        c.on_message(&mut f, 0, &wire::scan(ok_udp.as_bytes()).unwrap(), true);
        assert_eq!(names(&f), ["register-on-its-transport"; 4]);
        assert!(f.list()[0].detail.contains("sent as a datagram"));
        assert!(f.list()[1].detail.contains("Via"));
        assert!(f.list()[2].detail.contains("Contact"));
        assert!(f.list()[3].detail.contains("sent on a connection"));
    }

    #[test]
    fn connections_at_a_constant_pace_are_churn() {
        let t0 = Instant::now();
        let mut c = checker();
        let mut f = Findings::default();
        let reg = addr("10.0.0.1:5060");
        // One TCP account: 12 + 4 connections in the window are allowed.
        for i in 0..17u64 {
            c.on_connect(
                &mut f,
                t0 + Duration::from_secs(4 * i),
                i,
                Transport::Tcp,
                reg,
                Some(0),
            );
            c.on_gone(i);
        }
        assert_eq!(names(&f), ["connection-churn-bounded"]);
        // Backed off (doubling), as many attempts are fine.
        let mut c = checker();
        let mut f = Findings::default();
        let mut t = t0;
        for i in 0..17u64 {
            t += Duration::from_secs(5 << i.min(6));
            c.on_connect(&mut f, t, i, Transport::Tcp, reg, Some(0));
            c.on_gone(i);
        }
        assert!(f.is_empty(), "{:?}", f.list());
    }
}

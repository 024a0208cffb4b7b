//! Stream connections (TCP, TLS): the table of those open or opening, each one's
//! framing (RFC 3261 §18.3, [`Framer`]), and the limits that keep one peer from
//! holding more than its share. The core decides everything here; a driver only opens
//! ([`Output::Connect`](crate::Output::Connect)), writes (a [`Transmit`](crate::Transmit)
//! on a stream [`Flow`]), reads ([`Input::Received`](crate::Input::Received)) and closes
//! ([`Output::Close`](crate::Output::Close)), and says when a connection is up or gone
//! ([`Input::Connected`](crate::Input::Connected), [`Input::Closed`](crate::Input::Closed)).
//!
//! Limits, each closing only the connection that broke it (counted in
//! [`Stats::connections`](crate::stats::Stats::connections)): connections in total
//! and per source address of accepted ones ([`StreamLimits`]); a message must complete
//! within [`StreamLimits::message_timeout`] of its first byte, and an accepted
//! connection must deliver its first frame within it too (the TLS handshake included,
//! so a client that never finishes one is closed: slowloris); an accepted connection
//! on which nothing arrives for [`StreamLimits::idle_timeout`] is closed; a message
//! larger than [`MAX_MESSAGE_SIZE`](crate::message::MAX_MESSAGE_SIZE) or badly framed
//! closes its connection (no resynchronisation, see [`Framer`]). Connections we open
//! must be up within the message timeout too (a registrar that drops SYNs).

use crate::keyed::OwnKeyMap;
use crate::message::{FrameError, Framed, Framer};
use crate::time::{ConnTimer, TimerKey, TimerTable};
use crate::transport::{ConnId, Flow, Link, Transport};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The limits on stream connections (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimits {
    /// Connections open or opening at once, ours and accepted ones (default 10,000:
    /// registrations share one per registrar, so this is for providers' and callers'
    /// connections, far above what a deployment sees).
    pub max_connections: usize,
    /// Accepted connections from one IP address at once (default 64: a provider's
    /// edge opens a few, a flood from one host is cut off).
    pub max_per_source: u32,
    /// An accepted connection on which nothing arrives for this long is closed
    /// (default 10 min; providers send keep-alives well within it).
    pub idle_timeout: Duration,
    /// A message must complete within this long of its first byte, an accepted
    /// connection must deliver its first frame within it, and a connection we open
    /// must be up within it (default 32 s, 64·T1: what a client waits for an answer).
    pub message_timeout: Duration,
    /// How often a connection of ours is pinged (`CRLFCRLF`, RFC 5626 §4.4.1), and a
    /// UDP registrar sent an OPTIONS ([`crate::keepalive`]), to keep NATs' bindings
    /// and tell a dead peer early (`SIP_KEEPALIVE_INTERVAL`: 30 s in `trunkline run`);
    /// `None` (the core's default, so a bare core sends nothing it was not asked to):
    /// never.
    pub keepalive: Option<Duration>,
    /// How long a ping waits for its pong, or any byte, before the connection counts
    /// as failed (10 s, RFC 5626 §4.4.1).
    pub pong_timeout: Duration,
    /// Messages held for a connection still opening (default 1,024: a start's burst of
    /// paced REGISTERs to one registrar fits while its connection comes up); more are
    /// dropped (their transactions end by Timer F).
    pub max_queued: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_per_source: 64,
            idle_timeout: Duration::from_secs(600),
            message_timeout: Duration::from_secs(32),
            keepalive: None,
            pong_timeout: Duration::from_secs(10),
            max_queued: 1024,
        }
    }
}

/// Why a connection was refused or closed by the core (labels for the counters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// Accepting it would exceed [`StreamLimits::max_connections`].
    #[error("too many connections ({0} open)")]
    TooMany(usize),
    /// Its source already holds [`StreamLimits::max_per_source`] connections.
    #[error("too many connections from {0}")]
    TooManyFromSource(IpAddr),
    /// A message (or the first frame, or our connection's setup) took too long.
    #[error("no complete message within {0:?}")]
    Slow(Duration),
    /// Nothing arrived for the idle timeout.
    #[error("idle for {0:?}")]
    Idle(Duration),
    /// A keep-alive ping got no answer in time.
    #[error("no answer to a keep-alive ping within {0:?}")]
    NoPong(Duration),
    /// The stream could not be framed.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl ConnError {
    /// The counter label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooMany(_) => "refused_total_limit",
            Self::TooManyFromSource(_) => "refused_source_limit",
            Self::Slow(_) => "closed_slow",
            Self::Idle(_) => "closed_idle",
            Self::NoPong(_) => "closed_no_pong",
            Self::Frame(_) => "closed_framing",
        }
    }
}

/// Every label of [`Stats::connections`](crate::stats::Stats::connections), for a
/// metrics page that shows each (zeros included).
pub const EVENT_LABELS: [&str; 12] = [
    "accepted",
    "opened",
    "failed",
    "closed_by_peer",
    "refused_total_limit",
    "refused_source_limit",
    "closed_slow",
    "closed_idle",
    "closed_framing",
    "closed_no_pong",
    "connection_gone",
    "connection_queue_full",
];

/// Who opened a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    /// We did, towards this TLS name (for reuse: two names on one address are two
    /// connections, each with its own certificate check).
    Ours { server_name: Option<Box<str>> },
    /// A listener accepted it.
    Accepted,
}

#[derive(Debug)]
struct Conn {
    transport: Transport,
    remote: SocketAddr,
    /// Our end, once known (accepted: at once; ours: when connected).
    local: Option<SocketAddr>,
    side: Side,
    /// Messages waiting for the connection to come up (ours only); `None` once up.
    queued: Option<Vec<Vec<u8>>>,
    framer: Framer,
    /// The last time bytes arrived.
    last_arrival: Instant,
    /// Whether a frame has arrived yet (an accepted connection's first deadline).
    heard: bool,
}

impl Conn {
    /// A connection to or from `remote` at `now`: nothing known of our end, nothing
    /// held, nothing heard yet.
    fn new(now: Instant, transport: Transport, remote: SocketAddr, side: Side) -> Self {
        Self {
            transport,
            remote,
            local: None,
            side,
            queued: None,
            framer: Framer::new(),
            last_arrival: now,
            heard: false,
        }
    }
}

/// What a connection's timer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Nothing (re-armed, or for a connection gone).
    Nothing,
    /// Write a keep-alive ping (`CRLFCRLF`) on it.
    Ping,
    /// Close it: it broke this limit.
    Close(ConnError),
}

/// What became of a message sent on a stream flow.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The connection is up: write these bytes now.
    Now(Vec<u8>),
    /// Held until the connection is up.
    Queued,
    /// The connection is gone (or its queue full): the message is dropped.
    Dropped(&'static str),
}

/// What arrived on a connection, framed.
#[derive(Debug, Default)]
pub struct Arrived {
    /// Whole frames, in order.
    pub frames: Vec<Framed>,
    /// The connection is to be closed after these frames (framing failed).
    pub error: Option<ConnError>,
    /// Our end of the connection.
    pub local: Option<SocketAddr>,
}

/// A connection that has just gone, for its owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// Which.
    pub conn: ConnId,
    /// Its flow and far end.
    pub link: Link,
    /// Whether we opened it.
    pub ours: bool,
}

/// The stream connections of the core.
#[derive(Debug, Default)]
pub struct Connections {
    limits: StreamLimits,
    next: u64,
    table: OwnKeyMap<ConnId, Conn>,
    /// Our connections by what they reach, for reuse.
    ours: OwnKeyMap<(Transport, SocketAddr, Option<Box<str>>), ConnId>,
    /// Accepted connections per source address.
    per_source: OwnKeyMap<IpAddr, u32>,
}

/// What [`Connections::connect`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A connection to that peer (open or opening) is reused.
    Reused(ConnId),
    /// A new one: the driver must be asked to open it.
    New(ConnId),
}

impl Opened {
    /// The connection, new or reused.
    pub fn conn(&self) -> ConnId {
        match self {
            Self::Reused(c) | Self::New(c) => *c,
        }
    }
}

impl Connections {
    /// No connections yet, with these limits.
    pub fn new(limits: StreamLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Connections open or opening.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The link of connection `conn`, while it exists.
    pub fn link(&self, conn: ConnId) -> Option<Link> {
        self.table.get(&conn).map(|c| Link {
            remote: c.remote,
            flow: Flow::stream(c.transport, conn),
        })
    }

    fn new_id(&mut self) -> ConnId {
        self.next += 1;
        ConnId(self.next)
    }

    /// A listener accepted a connection from `remote` to our `local`: its id, or the
    /// limit it would break (the driver then closes it at once).
    pub fn accept(
        &mut self,
        now: Instant,
        timers: &mut TimerTable,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<ConnId, ConnError> {
        if self.table.len() >= self.limits.max_connections {
            return Err(ConnError::TooMany(self.table.len()));
        }
        let from = self.per_source.get(&remote.ip()).copied().unwrap_or(0);
        if from >= self.limits.max_per_source {
            return Err(ConnError::TooManyFromSource(remote.ip()));
        }
        self.per_source.insert(remote.ip(), from + 1);
        let id = self.new_id();
        let conn = Conn::new(now, transport, remote, Side::Accepted);
        self.table.insert(
            id,
            Conn {
                local: Some(local),
                ..conn
            },
        );
        timers.set(
            TimerKey::Conn(id, ConnTimer::Deadline),
            now + self.limits.message_timeout,
        );
        timers.set(
            TimerKey::Conn(id, ConnTimer::Idle),
            now + self.limits.idle_timeout,
        );
        Ok(id)
    }

    /// A connection of ours to `remote` over `transport` (TLS: checked against
    /// `server_name`): one already open or opening is reused, else a new one, which
    /// the caller asks the driver to open. `None` at the connection limit.
    pub fn connect(
        &mut self,
        now: Instant,
        timers: &mut TimerTable,
        transport: Transport,
        remote: SocketAddr,
        server_name: Option<&str>,
    ) -> Option<Opened> {
        let key = (transport, remote, server_name.map(Box::from));
        if let Some(&id) = self.ours.get(&key) {
            return Some(Opened::Reused(id));
        }
        if self.table.len() >= self.limits.max_connections {
            return None;
        }
        let id = self.new_id();
        let side = Side::Ours {
            server_name: key.2.clone(),
        };
        let conn = Conn::new(now, transport, remote, side);
        self.table.insert(
            id,
            Conn {
                queued: Some(Vec::new()),
                ..conn
            },
        );
        self.ours.insert(key, id);
        timers.set(
            TimerKey::Conn(id, ConnTimer::Deadline),
            now + self.limits.message_timeout,
        );
        Some(Opened::New(id))
    }

    /// A message to write on `conn`.
    pub fn send(&mut self, conn: ConnId, payload: Vec<u8>) -> Sent {
        let Some(c) = self.table.get_mut(&conn) else {
            return Sent::Dropped("connection_gone");
        };
        match &mut c.queued {
            None => Sent::Now(payload),
            Some(q) if q.len() >= self.limits.max_queued => Sent::Dropped("connection_queue_full"),
            Some(q) => {
                q.push(payload);
                Sent::Queued
            }
        }
    }

    /// Our connection `conn` is up, from our `local`: the messages held for it, to
    /// write now in order. Its keep-alives start.
    pub fn on_connected(
        &mut self,
        now: Instant,
        timers: &mut TimerTable,
        conn: ConnId,
        local: SocketAddr,
    ) -> Vec<Vec<u8>> {
        let Some(c) = self.table.get_mut(&conn) else {
            return Vec::new();
        };
        c.local = Some(local);
        timers.cancel(TimerKey::Conn(conn, ConnTimer::Deadline));
        if let Some(every) = self.limits.keepalive {
            timers.set(TimerKey::Conn(conn, ConnTimer::Keepalive), now + every);
        }
        c.queued.take().unwrap_or_default()
    }

    /// Bytes arrived on `conn`: the frames they complete. A framing error closes the
    /// connection (the caller sends [`Output::Close`](crate::Output::Close)).
    pub fn on_received(
        &mut self,
        now: Instant,
        timers: &mut TimerTable,
        conn: ConnId,
        bytes: &[u8],
    ) -> Arrived {
        let Some(c) = self.table.get_mut(&conn) else {
            return Arrived::default();
        };
        c.last_arrival = now;
        // Anything at all answers a keep-alive ping: the peer is there.
        timers.cancel(TimerKey::Conn(conn, ConnTimer::Pong));
        c.framer.push(bytes);
        let mut arrived = Arrived {
            local: c.local,
            ..Arrived::default()
        };
        loop {
            match c.framer.pop() {
                Ok(Some(frame)) => arrived.frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    arrived.error = Some(e.into());
                    break;
                }
            }
        }
        if !arrived.frames.is_empty() {
            c.heard = true;
        }
        if arrived.error.is_some() || c.queued.is_some() {
            // Closing anyway; or ours, still opening: its setup deadline stands.
            return arrived;
        }
        if c.side == Side::Accepted && !c.heard {
            // Its first frame is still due by the deadline set when it was accepted.
            return arrived;
        }
        let deadline = TimerKey::Conn(conn, ConnTimer::Deadline);
        if c.framer.has_partial() {
            // A message has begun: it must end in time. Armed when it begins (frames
            // completed in this read, or none armed), so that a byte a second does not
            // keep pushing it back.
            if !arrived.frames.is_empty() || timers.get(deadline).is_none() {
                timers.set(deadline, now + self.limits.message_timeout);
            }
        } else {
            timers.cancel(deadline);
        }
        arrived
    }

    /// A timer of `conn` fired: what to do now.
    pub fn on_timer(
        &mut self,
        now: Instant,
        timers: &mut TimerTable,
        conn: ConnId,
        timer: ConnTimer,
    ) -> Due {
        let Some(c) = self.table.get(&conn) else {
            return Due::Nothing;
        };
        match timer {
            ConnTimer::Deadline => Due::Close(ConnError::Slow(self.limits.message_timeout)),
            ConnTimer::Idle => {
                let due = c.last_arrival + self.limits.idle_timeout;
                if due > now {
                    timers.set(TimerKey::Conn(conn, ConnTimer::Idle), due);
                    return Due::Nothing;
                }
                Due::Close(ConnError::Idle(self.limits.idle_timeout))
            }
            ConnTimer::Keepalive => {
                let Some(every) = self.limits.keepalive else {
                    return Due::Nothing;
                };
                timers.set(TimerKey::Conn(conn, ConnTimer::Keepalive), now + every);
                // One pong wait at a time: a ping still unanswered keeps its deadline.
                let pong = TimerKey::Conn(conn, ConnTimer::Pong);
                if timers.get(pong).is_none() {
                    timers.set(pong, now + self.limits.pong_timeout);
                }
                Due::Ping
            }
            ConnTimer::Pong => Due::Close(ConnError::NoPong(self.limits.pong_timeout)),
        }
    }

    /// Forgets `conn` (closed by us or by the peer): what it was, for its owners;
    /// `None` when it was already gone.
    pub fn remove(&mut self, timers: &mut TimerTable, conn: ConnId) -> Option<Gone> {
        let c = self.table.remove(&conn)?;
        for timer in ConnTimer::ALL {
            timers.cancel(TimerKey::Conn(conn, timer));
        }
        let ours = match c.side {
            Side::Ours { server_name } => {
                let key = (c.transport, c.remote, server_name);
                if self.ours.get(&key) == Some(&conn) {
                    self.ours.remove(&key);
                }
                true
            }
            Side::Accepted => {
                let ip = c.remote.ip();
                match self.per_source.get(&ip).copied() {
                    Some(n) if n > 1 => {
                        self.per_source.insert(ip, n - 1);
                    }
                    _ => {
                        self.per_source.remove(&ip);
                    }
                }
                false
            }
        };
        Some(Gone {
            conn,
            link: Link {
                remote: c.remote,
                flow: Flow::stream(c.transport, conn),
            },
            ours,
        })
    }
}

#[cfg(test)]
// Tests anchor virtual time once; their inputs are built here, lengths known.
#[allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
        Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Default limits, one connection accepted from 127.0.0.2 at `now`.
    fn one_accepted() -> (Instant, TimerTable, Connections, ConnId) {
        let now = Instant::now();
        let mut t = TimerTable::default();
        let mut c = Connections::new(StreamLimits::default());
        let id = c
            .accept(
                now,
                &mut t,
                Transport::Tcp,
                addr("127.0.0.1:5060"),
                addr("127.0.0.2:1"),
            )
            .unwrap();
        (now, t, c, id)
    }

    fn limits() -> StreamLimits {
        StreamLimits {
            max_connections: 3,
            max_per_source: 2,
            ..StreamLimits::default()
        }
    }

    #[test]
    fn accepted_connections_are_capped_in_total_and_per_source() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        let mut c = Connections::new(limits());
        let local = addr("127.0.0.1:5060");
        let a = addr("127.0.0.2:4000");
        let first = c.accept(now, &mut t, Transport::Tcp, local, a).unwrap();
        c.accept(now, &mut t, Transport::Tcp, local, a).unwrap();
        assert_eq!(
            c.accept(now, &mut t, Transport::Tcp, local, a),
            Err(ConnError::TooManyFromSource(a.ip()))
        );
        c.accept(now, &mut t, Transport::Tcp, local, addr("127.0.0.3:1"))
            .unwrap();
        assert_eq!(
            c.accept(now, &mut t, Transport::Tcp, local, addr("127.0.0.4:1")),
            Err(ConnError::TooMany(3))
        );
        // One gone: its source may connect again.
        assert!(c.remove(&mut t, first).is_some_and(|g| !g.ours));
        c.accept(now, &mut t, Transport::Tcp, local, a).unwrap();
        assert!(c.remove(&mut t, first).is_none(), "removed once");
    }

    #[test]
    fn a_message_that_trickles_in_is_cut_off_at_its_deadline() {
        let (now, mut t, mut c, id) = one_accepted();
        let deadline = t.get(TimerKey::Conn(id, ConnTimer::Deadline)).unwrap();
        assert_eq!(deadline, now + Duration::from_secs(32), "the first frame's");
        // A byte a second: the deadline does not move.
        for (i, b) in OPTIONS.iter().take(20).enumerate() {
            let at = now + Duration::from_secs(i as u64);
            let got = c.on_received(at, &mut t, id, &[*b]);
            assert!(got.frames.is_empty() && got.error.is_none());
            assert_eq!(
                t.get(TimerKey::Conn(id, ConnTimer::Deadline)),
                Some(deadline)
            );
        }
        assert_eq!(
            c.on_timer(deadline, &mut t, id, ConnTimer::Deadline),
            Due::Close(ConnError::Slow(Duration::from_secs(32)))
        );
    }

    #[test]
    fn whole_messages_clear_the_deadline_and_the_next_one_arms_its_own() {
        let (now, mut t, mut c, id) = one_accepted();
        let mut two = OPTIONS.to_vec();
        two.extend_from_slice(OPTIONS);
        two.extend_from_slice(&OPTIONS[..10]);
        let later = now + Duration::from_secs(5);
        let got = c.on_received(later, &mut t, id, &two);
        assert_eq!(got.frames.len(), 2);
        assert_eq!(
            t.get(TimerKey::Conn(id, ConnTimer::Deadline)),
            Some(later + Duration::from_secs(32)),
            "the third message's own deadline"
        );
        let got = c.on_received(later, &mut t, id, &OPTIONS[10..]);
        assert_eq!(got.frames.len(), 1);
        assert_eq!(t.get(TimerKey::Conn(id, ConnTimer::Deadline)), None);
    }

    #[test]
    fn idle_is_measured_from_the_last_arrival() {
        let (now, mut t, mut c, id) = one_accepted();
        let idle = Duration::from_secs(600);
        c.on_received(now + idle / 2, &mut t, id, b"\r\n\r\n");
        assert_eq!(
            c.on_timer(now + idle, &mut t, id, ConnTimer::Idle),
            Due::Nothing
        );
        let due = t.get(TimerKey::Conn(id, ConnTimer::Idle)).unwrap();
        assert_eq!(due, now + idle / 2 + idle);
        assert_eq!(
            c.on_timer(due, &mut t, id, ConnTimer::Idle),
            Due::Close(ConnError::Idle(idle))
        );
        c.remove(&mut t, id);
        assert!(t.is_empty(), "no timer left behind");
    }

    #[test]
    fn a_framing_error_is_reported_with_the_frames_before_it() {
        let (now, mut t, mut c, id) = one_accepted();
        let mut bytes = OPTIONS.to_vec();
        bytes.extend_from_slice(b"OPTIONS sip:a@h SIP/2.0\r\nCall-ID: x\r\n\r\n");
        let got = c.on_received(now, &mut t, id, &bytes);
        assert_eq!(got.frames.len(), 1);
        assert!(matches!(
            got.error,
            Some(ConnError::Frame(FrameError::NoContentLength))
        ));
    }

    #[test]
    fn our_connections_are_reused_held_until_up_and_bounded() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        let mut c = Connections::new(StreamLimits {
            max_queued: 2,
            ..StreamLimits::default()
        });
        let registrar = addr("127.0.0.9:5061");
        let first = c
            .connect(now, &mut t, Transport::Tls, registrar, Some("sip.example"))
            .unwrap();
        let Opened::New(id) = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            c.connect(now, &mut t, Transport::Tls, registrar, Some("sip.example")),
            Some(Opened::Reused(id))
        );
        let other = c.connect(
            now,
            &mut t,
            Transport::Tls,
            registrar,
            Some("other.example"),
        );
        assert!(
            matches!(other, Some(Opened::New(o)) if o != id),
            "another name, another connection"
        );
        assert_eq!(c.send(id, b"one".to_vec()), Sent::Queued);
        assert_eq!(c.send(id, b"two".to_vec()), Sent::Queued);
        assert_eq!(
            c.send(id, b"three".to_vec()),
            Sent::Dropped("connection_queue_full")
        );
        let held = c.on_connected(now, &mut t, id, addr("127.0.0.1:40000"));
        assert_eq!(held, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(
            t.get(TimerKey::Conn(id, ConnTimer::Deadline)),
            None,
            "up in time"
        );
        assert_eq!(c.send(id, b"four".to_vec()), Sent::Now(b"four".to_vec()));
        let gone = c.remove(&mut t, id).unwrap();
        assert!(gone.ours);
        assert_eq!(gone.link.flow, Flow::Tls(id));
        assert_eq!(
            c.send(id, b"five".to_vec()),
            Sent::Dropped("connection_gone")
        );
        // Gone, so the next connect opens a new one.
        assert!(matches!(
            c.connect(now, &mut t, Transport::Tls, registrar, Some("sip.example")),
            Some(Opened::New(n)) if n != id
        ));
    }

    #[test]
    fn our_connection_that_never_comes_up_hits_its_deadline() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        let mut c = Connections::new(StreamLimits::default());
        let id = c
            .connect(now, &mut t, Transport::Tcp, addr("127.0.0.9:5060"), None)
            .unwrap()
            .conn();
        let due = t.get(TimerKey::Conn(id, ConnTimer::Deadline)).unwrap();
        assert_eq!(
            c.on_timer(due, &mut t, id, ConnTimer::Deadline),
            Due::Close(ConnError::Slow(Duration::from_secs(32)))
        );
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)]
mod keepalive_tests {
    use super::*;

    #[test]
    fn ours_are_pinged_every_interval_and_closed_without_an_answer() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        let mut c = Connections::new(StreamLimits {
            keepalive: Some(Duration::from_secs(30)),
            ..StreamLimits::default()
        });
        let remote: SocketAddr = "127.0.0.9:5060".parse().unwrap();
        let id = c
            .connect(now, &mut t, Transport::Tcp, remote, None)
            .unwrap()
            .conn();
        c.on_connected(now, &mut t, id, "127.0.0.1:40000".parse().unwrap());
        let ping_at = t.get(TimerKey::Conn(id, ConnTimer::Keepalive)).unwrap();
        assert_eq!(ping_at, now + Duration::from_secs(30));
        assert_eq!(
            c.on_timer(ping_at, &mut t, id, ConnTimer::Keepalive),
            Due::Ping
        );
        // Its pong: the wait ends, the next ping is due 30 s on.
        c.on_received(ping_at, &mut t, id, b"\r\n");
        assert_eq!(t.get(TimerKey::Conn(id, ConnTimer::Pong)), None);
        let next = t.get(TimerKey::Conn(id, ConnTimer::Keepalive)).unwrap();
        assert_eq!(next, ping_at + Duration::from_secs(30));
        // Unanswered: closed 10 s after the ping.
        assert_eq!(
            c.on_timer(next, &mut t, id, ConnTimer::Keepalive),
            Due::Ping
        );
        let deadline = t.get(TimerKey::Conn(id, ConnTimer::Pong)).unwrap();
        assert_eq!(deadline, next + Duration::from_secs(10));
        assert_eq!(
            c.on_timer(deadline, &mut t, id, ConnTimer::Pong),
            Due::Close(ConnError::NoPong(Duration::from_secs(10)))
        );
        c.remove(&mut t, id);
        assert!(t.is_empty(), "no timer of a removed connection left");
    }

    #[test]
    fn without_an_interval_nothing_is_pinged() {
        let now = Instant::now();
        let mut t = TimerTable::default();
        let mut c = Connections::new(StreamLimits {
            keepalive: None,
            ..StreamLimits::default()
        });
        let id = c
            .connect(
                now,
                &mut t,
                Transport::Tcp,
                "127.0.0.9:5060".parse().unwrap(),
                None,
            )
            .unwrap()
            .conn();
        c.on_connected(now, &mut t, id, "127.0.0.1:40000".parse().unwrap());
        assert!(t.is_empty());
    }
}

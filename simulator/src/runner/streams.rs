//! Stream links (issue 10's TCP) between the core and the registrar models.
//!
//! The core asks for a connection (`Output::Connect`); its handshake crosses the
//! registrar's link like a packet, and the registrar's listener accepts it, refuses
//! it, or accepts and closes after each answer ([`StreamMode`]). Bytes then cross the
//! link in order (TCP): a lost segment is retransmitted (a delay, never a loss or a
//! duplicate), a partition holds what is sent until it heals — or, after
//! [`GIVE_UP`], times the connection out. The core's writes are framed by the
//! simulator's own reader and handed to the registrar model message by message; what
//! the registrar writes reaches the core's end and is read in random chunks (a message
//! cut anywhere, several in one read), so the core's framer sees every chunking.
//!
//! Every draw comes from a stream of its own (seeded from the scenario's seed), so a
//! world without TCP providers draws exactly what it drew before streams existed.

use super::{Pending, Sim};
use crate::check::streams::{check_reregister, CoreView, Reregister, REREGISTER_BOUND};
use crate::check::wire::{self, Piece, StreamReader};
use crate::net::{Direction, Fate};
use crate::rng::SimRng;
use crate::scenario::{registrar_name, StreamMode, CORE_ADDR};
use crate::trace::{StreamLine, TraceEvent};
use sip_core::{Connect, Input, RegisterStatus, Transmit, Transport};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a partition may hold a connection's bytes before the connection times
/// out (as `TCP_USER_TIMEOUT` would; Linux's own default is ~15 minutes, which no
/// fault phase would ever reach).
pub const GIVE_UP: Duration = Duration::from_secs(120);

/// The first retransmission timeout of a lost segment (Linux's minimum RTO is 200 ms);
/// it doubles per loss of the same segment.
const FIRST_RTO: Duration = Duration::from_millis(200);

/// Mixed into the seed for the streams' own random stream.
const STREAMS_STREAM: u64 = 0x5743_0000_0000_0010;

/// The first local port of the core's connections (their source ports).
const FIRST_PORT: u16 = 40_000;

/// What crosses towards a registrar on a connection, in order.
#[derive(Debug)]
pub(super) enum ToPeer {
    /// The handshake (its SYN).
    Syn,
    /// One whole message the core wrote.
    Message(Vec<u8>),
    /// A CRLFCRLF keep-alive ping (RFC 5626 §4.4.1): the registrar answers CRLF.
    Ping,
}

/// What crosses towards the core on a connection, in order.
#[derive(Debug)]
pub(super) enum ToCore {
    /// The handshake's answer: the connection is up.
    Connected,
    /// A message the registrar wrote.
    Bytes(Vec<u8>),
    /// The registrar's end is gone: a FIN (`error: None`), or an RST — a refusal or a
    /// reset, which discards what the core had not read yet.
    End { error: Option<String>, reset: bool },
}

/// One connection, both ends.
#[derive(Debug)]
struct SimConn {
    /// The registrar it reaches (`None`: no registrar listens there).
    registrar: Option<usize>,
    /// The core's end, as the registrar model sees it (answers are addressed to it).
    local: SocketAddr,
    /// When the core asked for it, and when `Connected` reached the core.
    asked_at: Instant,
    connected_at: Option<Instant>,
    /// The registrar's end still reads (it closed, reset or timed out: no more).
    peer_open: bool,
    /// The latest arrival scheduled each way (TCP delivers in order).
    to_peer_at: Instant,
    to_core_at: Instant,
    /// Held while a partition blocks that way.
    stalled_to_peer: Vec<ToPeer>,
    stalled_to_core: Vec<ToCore>,
    stalled_since: Option<Instant>,
    /// Frames what the core writes.
    writes: StreamReader,
    /// Frames what the core has read, for the checks.
    reads: StreamReader,
    /// Arrived at the core's end, not read yet.
    inbound: Vec<u8>,
    read_due: bool,
    /// A FIN that arrived behind unread bytes: delivered once they are read.
    end: Option<Option<String>>,
}

/// The stream side of the world.
#[derive(Debug)]
pub(super) struct Streams {
    conns: BTreeMap<u64, SimConn>,
    by_local: BTreeMap<SocketAddr, u64>,
    /// Each registrar's listener.
    modes: Vec<StreamMode>,
    /// Since when each registrar's listener has accepted connections without dropping
    /// one (`None`: not accepting now).
    pub(super) ok_since: Vec<Option<Instant>>,
    rng: SimRng,
    opened: u64,
}

impl Streams {
    /// Every listener accepting from `now`.
    pub(super) fn new(registrars: usize, seed: u64, now: Instant) -> Self {
        Self {
            conns: BTreeMap::new(),
            by_local: BTreeMap::new(),
            modes: vec![StreamMode::Accept; registrars],
            ok_since: vec![Some(now); registrars],
            rng: SimRng::new(seed ^ STREAMS_STREAM),
            opened: 0,
        }
    }

    /// Whether registrar `i` accepts connections now, and has since `at` without a drop.
    pub(super) fn accepting_since(&self, i: usize, at: Instant) -> bool {
        self.ok_since
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|t| t <= at)
    }
}

/// Where a chunk of what arrived is cut: all of it, anywhere, a sliver (to cut a
/// header line or the blank line), or most of it.
fn chunk_len(rng: &mut SimRng, len: usize) -> usize {
    let len64 = len as u64;
    let n = match rng.below(20) {
        0..=9 => len64,
        10..=14 => rng.range(1, len64),
        15..=17 => rng.range(1, len64.min(24)),
        _ => rng.range(len64.div_ceil(2), len64),
    };
    usize::try_from(n).unwrap_or(len).clamp(1, len.max(1))
}

impl Sim {
    fn stream_trace(&mut self, conn: u64, line: StreamLine<'_>) {
        if self.trace.is_on() {
            self.traced(TraceEvent::Stream { conn, line });
        }
    }

    /// The core asked for a connection.
    pub(super) fn core_connect(&mut self, c: Connect) {
        let now = self.clock.now();
        let conn = c.conn.0;
        self.stats.stream_connects += 1;
        // The registrar models listen for TCP and TLS on their SIP address (the TLS
        // handshake is the driver's: to the core it is a stream like TCP's).
        let registrar = match c.transport {
            Transport::Tcp | Transport::Tls => self.by_addr.get(&c.remote).copied(),
            Transport::Udp => None,
        };
        self.stream_checks.on_connect(
            &mut self.findings,
            now,
            conn,
            c.transport,
            c.remote,
            registrar,
        );
        self.streams.opened += 1;
        let port = FIRST_PORT + u16::try_from(self.streams.opened % 20_000).unwrap_or(0);
        let local = SocketAddr::new(CORE_ADDR.ip(), port);
        self.streams.by_local.insert(local, conn);
        self.streams.conns.insert(
            conn,
            SimConn {
                registrar,
                local,
                asked_at: now,
                connected_at: None,
                peer_open: true,
                to_peer_at: now,
                to_core_at: now,
                stalled_to_peer: Vec::new(),
                stalled_to_core: Vec::new(),
                stalled_since: None,
                writes: StreamReader::default(),
                reads: StreamReader::default(),
                inbound: Vec::new(),
                read_due: false,
                end: None,
            },
        );
        if self.trace.is_on() {
            let peer = registrar.map_or_else(|| c.remote.to_string(), registrar_name);
            let transport = c.transport.as_str().to_ascii_lowercase();
            self.stream_trace(
                conn,
                StreamLine::Connect {
                    peer: &peer,
                    transport: &transport,
                },
            );
        }
        match registrar {
            Some(_) => {
                self.stream_to_peer(conn, ToPeer::Syn);
            }
            None => {
                self.stream_to_core(
                    conn,
                    ToCore::End {
                        error: Some("connection refused".to_owned()),
                        reset: true,
                    },
                );
            }
        }
    }

    /// How long a segment of registrar `i`'s link takes `dir`, retransmissions
    /// included (`None`: a partition blocks it), and whether it was retransmitted.
    fn segment_delay(&mut self, i: usize, dir: Direction) -> Option<(Duration, bool)> {
        let Some(link) = self.links.get(i) else {
            return Some((Duration::from_millis(1), false));
        };
        let mut extra = Duration::ZERO;
        let mut rto = FIRST_RTO;
        for _ in 0..6 {
            match link.send(dir, &mut self.streams.rng) {
                Fate::Blocked => return None,
                Fate::Lost => {
                    extra += rto;
                    rto *= 2;
                }
                // A duplicated segment is one delivery: TCP discards the copy.
                Fate::Arrives(d) => {
                    let first = d.first().copied().unwrap_or_default();
                    return Some((extra + first, !extra.is_zero()));
                }
            }
        }
        Some((extra + link.config.latency_min, true))
    }

    /// Sends `item` towards the registrar end of `conn`; returns a trace note.
    fn stream_to_peer(&mut self, conn: u64, item: ToPeer) -> &'static str {
        let now = self.clock.now();
        let Some(i) = self.streams.conns.get(&conn).and_then(|c| c.registrar) else {
            return "  [nowhere]";
        };
        let behind = self
            .streams
            .conns
            .get(&conn)
            .is_some_and(|c| !c.stalled_to_peer.is_empty());
        let delay = if behind {
            None
        } else {
            self.segment_delay(i, Direction::ToPeer)
        };
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return "";
        };
        match delay {
            None => {
                c.stalled_to_peer.push(item);
                if c.stalled_since.is_none() {
                    c.stalled_since = Some(now);
                    self.queue
                        .push(now + GIVE_UP, Pending::StreamGiveUp { conn });
                }
                "  [stalled]"
            }
            Some((d, again)) => {
                let at = (now + d).max(c.to_peer_at);
                c.to_peer_at = at;
                self.queue
                    .push(at, Pending::StreamToRegistrar { conn, item });
                if again {
                    "  [retransmitted]"
                } else {
                    ""
                }
            }
        }
    }

    /// Sends `item` towards the core's end of `conn`; returns a trace note.
    fn stream_to_core(&mut self, conn: u64, item: ToCore) -> &'static str {
        let now = self.clock.now();
        let Some(c) = self.streams.conns.get(&conn) else {
            return "";
        };
        let behind = !c.stalled_to_core.is_empty();
        let delay = match c.registrar {
            None => Some((Duration::from_millis(1), false)),
            Some(_) if behind => None,
            Some(i) => self.segment_delay(i, Direction::FromPeer),
        };
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return "";
        };
        match delay {
            None => {
                c.stalled_to_core.push(item);
                if c.stalled_since.is_none() {
                    c.stalled_since = Some(now);
                    self.queue
                        .push(now + GIVE_UP, Pending::StreamGiveUp { conn });
                }
                "  [stalled]"
            }
            Some((d, again)) => {
                let at = (now + d).max(c.to_core_at);
                c.to_core_at = at;
                self.queue.push(at, Pending::StreamToCore { conn, item });
                if again {
                    "  [retransmitted]"
                } else {
                    ""
                }
            }
        }
    }

    /// Something reached the registrar end of `conn`.
    pub(super) fn stream_at_registrar(&mut self, conn: u64, item: ToPeer) {
        let now = self.clock.now();
        let Some((i, local, open)) = self
            .streams
            .conns
            .get(&conn)
            .and_then(|c| c.registrar.map(|i| (i, c.local, c.peer_open)))
        else {
            return;
        };
        if !open {
            return;
        }
        match item {
            ToPeer::Syn => {
                let mode = self.streams.modes.get(i).copied().unwrap_or_default();
                let answer = match mode {
                    StreamMode::Refuse => {
                        if let Some(c) = self.streams.conns.get_mut(&conn) {
                            c.peer_open = false;
                        }
                        ToCore::End {
                            error: Some("connection refused".to_owned()),
                            reset: true,
                        }
                    }
                    StreamMode::Accept | StreamMode::CloseAfterAnswer => ToCore::Connected,
                };
                self.stream_to_core(conn, answer);
            }
            ToPeer::Ping => {
                self.stream_to_core(conn, ToCore::Bytes(b"\r\n".to_vec()));
            }
            ToPeer::Message(bytes) => {
                let out = match self.registrars.get_mut(i) {
                    Some(r) => r.handle_datagram(now, local, &bytes),
                    None => Vec::new(),
                };
                self.after_registrar(i, out);
            }
        }
    }

    /// Whether `to` is the core's end of a connection (a registrar answers there).
    pub(super) fn stream_of(&self, to: SocketAddr) -> Option<u64> {
        self.streams.by_local.get(&to).copied()
    }

    /// Registrar `index` writes `bytes` on `conn` (and, when its listener closes after
    /// each answer, closes it).
    pub(super) fn stream_from_registrar(&mut self, index: usize, conn: u64, bytes: Vec<u8>) {
        let open = self.streams.conns.get(&conn).is_some_and(|c| c.peer_open);
        let name = registrar_name(index);
        if !open {
            // A slow answer after its connection went: the registrar cannot send it.
            self.stream_trace(
                conn,
                StreamLine::Message {
                    from: &name,
                    to: "trunkline",
                    bytes: &bytes,
                    note: "  [connection gone]",
                },
            );
            return;
        }
        if self.trace.is_on() {
            let copy = bytes.clone();
            let note = self.stream_to_core(conn, ToCore::Bytes(bytes));
            self.stream_trace(
                conn,
                StreamLine::Message {
                    from: &name,
                    to: "trunkline",
                    bytes: &copy,
                    note,
                },
            );
        } else {
            self.stream_to_core(conn, ToCore::Bytes(bytes));
        }
        if self.streams.modes.get(index) == Some(&StreamMode::CloseAfterAnswer) {
            self.registrar_closes(conn, false);
        }
    }

    /// The registrar end of `conn` closes (FIN) or resets it.
    fn registrar_closes(&mut self, conn: u64, reset: bool) {
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return;
        };
        if !c.peer_open {
            return;
        }
        c.peer_open = false;
        c.stalled_to_peer.clear();
        if reset {
            // An RST overtakes nothing on the wire, but its receiver discards what it
            // had not read yet (see `stream_at_core`).
            c.stalled_to_core
                .retain(|item| matches!(item, ToCore::End { .. }));
        }
        let error = reset.then(|| "connection reset by peer".to_owned());
        self.stream_to_core(conn, ToCore::End { error, reset });
    }

    /// Something reached the core's end of `conn`.
    pub(super) fn stream_at_core(&mut self, conn: u64, item: ToCore) {
        let now = self.clock.now();
        if self.stream_checks.view(conn) == Some(CoreView::Gone) {
            return;
        }
        match item {
            ToCore::Connected => {
                if self.stream_checks.view(conn) != Some(CoreView::Opening) {
                    return;
                }
                let Some(c) = self.streams.conns.get_mut(&conn) else {
                    return;
                };
                c.connected_at = Some(now);
                let local = c.local;
                self.stream_checks.on_connected(conn);
                self.stream_trace(conn, StreamLine::Connected);
                self.core.handle_input(
                    now,
                    Input::Connected {
                        conn: sip_core::ConnId(conn),
                        local,
                    },
                );
                self.drain();
            }
            ToCore::Bytes(bytes) => {
                let Some(c) = self.streams.conns.get_mut(&conn) else {
                    return;
                };
                c.inbound.extend_from_slice(&bytes);
                if !c.read_due {
                    c.read_due = true;
                    // The driver reads a moment later; what arrives meanwhile is read
                    // with it (several messages in one read). Now and then the driver
                    // is busy for longer.
                    let rng = &mut self.streams.rng;
                    let wait = if rng.chance(0.1) {
                        rng.duration(Duration::from_millis(5), Duration::from_millis(20))
                    } else {
                        rng.duration(Duration::ZERO, Duration::from_millis(3))
                    };
                    self.queue.push(now + wait, Pending::StreamRead { conn });
                }
            }
            ToCore::End { error, reset } => {
                let Some(c) = self.streams.conns.get_mut(&conn) else {
                    return;
                };
                if reset {
                    c.inbound.clear();
                    c.end = None;
                } else if c.read_due || !c.inbound.is_empty() {
                    c.end = Some(error);
                    return;
                }
                let by = c
                    .registrar
                    .map_or_else(|| "peer".to_owned(), registrar_name);
                let refused = reset && error.as_deref() == Some("connection refused");
                if refused {
                    self.stream_trace(conn, StreamLine::Refused);
                }
                self.deliver_closed(conn, error, &by, !refused);
            }
        }
    }

    /// The core reads a chunk of what arrived on `conn`.
    pub(super) fn stream_read(&mut self, conn: u64) {
        let now = self.clock.now();
        let gone = self.stream_checks.view(conn) == Some(CoreView::Gone);
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return;
        };
        c.read_due = false;
        if gone || c.inbound.is_empty() {
            c.inbound.clear();
            return;
        }
        let n = chunk_len(&mut self.streams.rng, c.inbound.len());
        let chunk: Vec<u8> = c.inbound.drain(..n).collect();
        c.reads.push(&chunk);
        let mut messages = Vec::new();
        // The registrar model writes whole messages; should it not, the core's own
        // framer is what judges them, so a piece this reader cannot frame is dropped
        // here without a finding.
        while let Ok(Some(piece)) = c.reads.pop() {
            if let Piece::Message(m) = piece {
                messages.push(m);
            }
        }
        let partial = c.reads.has_partial();
        self.stats.stream_reads += 1;
        if partial {
            self.stats.stream_reads_partial += 1;
        }
        if messages.len() > 1 {
            self.stats.stream_reads_several += 1;
        }
        for m in &messages {
            self.register.on_deliver(now, m);
        }
        self.stream_trace(
            conn,
            StreamLine::Read {
                bytes: chunk.len(),
                messages: messages.len(),
                partial,
            },
        );
        self.core.handle_input(
            now,
            Input::Received {
                conn: sip_core::ConnId(conn),
                bytes: chunk,
            },
        );
        self.drain();
        if self.stream_checks.view(conn) == Some(CoreView::Gone) {
            return;
        }
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return;
        };
        if !c.inbound.is_empty() {
            c.read_due = true;
            let wait = self
                .streams
                .rng
                .duration(Duration::ZERO, Duration::from_millis(1));
            self.queue.push(now + wait, Pending::StreamRead { conn });
        } else if let Some(error) = c.end.take() {
            let by = c
                .registrar
                .map_or_else(|| "peer".to_owned(), registrar_name);
            self.deliver_closed(conn, error, &by, true);
        }
    }

    /// `conn` is gone for the core: it reads `Closed`.
    fn deliver_closed(&mut self, conn: u64, error: Option<String>, by: &str, trace: bool) {
        if self.stream_checks.view(conn) == Some(CoreView::Gone) {
            return;
        }
        let now = self.clock.now();
        self.stream_checks.on_gone(conn);
        self.register.on_conn_gone(conn);
        self.stats.stream_ends += 1;
        if trace {
            self.stream_trace(
                conn,
                StreamLine::Closed {
                    by,
                    error: error.as_deref(),
                },
            );
        }
        self.core.handle_input(
            now,
            Input::Closed {
                conn: sip_core::ConnId(conn),
                error,
            },
        );
        self.drain();
    }

    /// The core wrote on a connection.
    pub(super) fn core_stream_transmit(&mut self, t: Transmit, conn: u64) {
        let now = self.clock.now();
        self.stats.sip_datagrams += 1;
        if self.secrets.leaks(&t.payload) {
            self.findings.push(
                crate::check::Invariant::PasswordLeak,
                "a password on a connection",
            );
        }
        self.stream_checks.on_write(&mut self.findings, conn);
        if self.stream_checks.view(conn) != Some(CoreView::Up) {
            return;
        }
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return;
        };
        let Some(index) = c.registrar else {
            return;
        };
        c.writes.push(&t.payload);
        let mut messages = Vec::new();
        let mut pings = 0;
        let mut broken = None;
        loop {
            match c.writes.pop() {
                Ok(Some(Piece::Message(m))) => messages.push(m),
                Ok(Some(Piece::KeepAlive { ping: true })) => pings += 1,
                Ok(Some(Piece::KeepAlive { ping: false })) => {}
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e);
                    c.writes = StreamReader::default();
                    break;
                }
            }
        }
        if let Some(why) = broken {
            self.stream_checks
                .on_unframed(&mut self.findings, conn, &why);
        }
        let peer_open = c.peer_open;
        if peer_open {
            for _ in 0..pings {
                self.stream_to_peer(conn, ToPeer::Ping);
            }
        }
        let Some(c) = self.streams.conns.get(&conn) else {
            return;
        };
        // What the core writes as the connection comes up it held since it asked for
        // the connection at the earliest: its transactions may be that old.
        let began = if c.connected_at == Some(now) {
            c.asked_at
        } else {
            now
        };
        for m in messages {
            self.register
                .on_transmit(&mut self.findings, now, began, index, &m, Some(conn));
            if let Some(scanned) = wire::scan(&m) {
                self.stream_checks
                    .on_message(&mut self.findings, index, &scanned, true);
            }
            if let Some(j) = self.journal.as_mut() {
                j.transmit(self.clock.offset_of(now), index, &m);
            }
            if m.starts_with(b"REGISTER ") {
                self.work.registers += 1;
            }
            let name = registrar_name(index);
            if !peer_open {
                // Written into a connection whose far end is gone (its FIN or RST
                // is still on the way): nobody reads it.
                self.stream_trace(
                    conn,
                    StreamLine::Message {
                        from: "trunkline",
                        to: &name,
                        bytes: &m,
                        note: "  [connection gone]",
                    },
                );
                continue;
            }
            if self.trace.is_on() {
                let copy = m.clone();
                let note = self.stream_to_peer(conn, ToPeer::Message(m));
                self.stream_trace(
                    conn,
                    StreamLine::Message {
                        from: "trunkline",
                        to: &name,
                        bytes: &copy,
                        note,
                    },
                );
            } else {
                self.stream_to_peer(conn, ToPeer::Message(m));
            }
        }
    }

    /// The core closed `conn` itself (a limit): no `Closed` follows.
    pub(super) fn core_close(&mut self, conn: u64) {
        if self.stream_checks.view(conn) == Some(CoreView::Gone) {
            return;
        }
        self.stream_checks.on_gone(conn);
        self.register.on_conn_gone(conn);
        if let Some(i) = self.streams.conns.get(&conn).and_then(|c| c.registrar) {
            // A limit (a setup deadline, a ping unanswered) costs a new connection.
            let now = self.clock.now();
            self.stream_checks.on_disturbed(i, now);
        }
        self.stream_trace(
            conn,
            StreamLine::Closed {
                by: "trunkline",
                error: None,
            },
        );
        // What it wrote before still reaches the registrar; what the registrar writes
        // back finds the core's end gone.
    }

    /// A partition held `conn`'s bytes for [`GIVE_UP`]: it times out at both ends.
    pub(super) fn stream_give_up(&mut self, conn: u64) {
        let now = self.clock.now();
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return;
        };
        if c.stalled_since.is_none_or(|t| t + GIVE_UP > now) {
            return;
        }
        c.peer_open = false;
        c.stalled_to_peer.clear();
        c.stalled_to_core.clear();
        c.stalled_since = None;
        c.inbound.clear();
        c.end = None;
        if let Some(i) = c.registrar {
            self.stream_checks.on_disturbed(i, now);
        }
        self.deliver_closed(
            conn,
            Some("connection timed out".to_owned()),
            "network",
            true,
        );
    }

    /// After a fault or the heal: what partitions held and no longer block moves on,
    /// in order.
    pub(super) fn streams_unstall(&mut self) {
        let stalled: Vec<u64> = self
            .streams
            .conns
            .iter()
            .filter(|(_, c)| c.stalled_since.is_some())
            .map(|(id, _)| *id)
            .collect();
        for conn in stalled {
            let Some(c) = self.streams.conns.get_mut(&conn) else {
                continue;
            };
            let Some(link) = c.registrar.and_then(|i| self.links.get(i)) else {
                continue;
            };
            let (to_peer, to_core) = (!link.blocked_to_peer, !link.blocked_from_peer);
            let peer_items = if to_peer {
                std::mem::take(&mut c.stalled_to_peer)
            } else {
                Vec::new()
            };
            let core_items = if to_core {
                std::mem::take(&mut c.stalled_to_core)
            } else {
                Vec::new()
            };
            if c.stalled_to_peer.is_empty() && c.stalled_to_core.is_empty() {
                c.stalled_since = None;
            }
            for item in peer_items {
                self.stream_to_peer(conn, item);
            }
            for item in core_items {
                self.stream_to_core(conn, item);
            }
        }
    }

    /// Applies a listener fault of registrar `i`.
    pub(super) fn set_stream_mode(&mut self, i: usize, mode: StreamMode) {
        let now = self.clock.now();
        let Some(slot) = self.streams.modes.get_mut(i) else {
            return;
        };
        let was = *slot;
        *slot = mode;
        if let Some(ok) = self.streams.ok_since.get_mut(i) {
            match mode {
                StreamMode::Accept if was != StreamMode::Accept => *ok = Some(now),
                StreamMode::Accept => {}
                StreamMode::Refuse | StreamMode::CloseAfterAnswer => *ok = None,
            }
        }
    }

    /// Every listener accepts again (the heal).
    pub(super) fn heal_streams(&mut self) {
        for i in 0..self.streams.modes.len() {
            self.set_stream_mode(i, StreamMode::Accept);
        }
        self.streams_unstall();
    }

    /// Every open connection to registrar `i` ends now (FIN or RST); the
    /// registrations registered over one are then owed a new registration.
    pub(super) fn drop_connections(&mut self, i: usize, reset: bool) {
        let now = self.clock.now();
        self.stream_checks.on_disturbed(i, now);
        self.owe_reregistrations(i, now);
        if let Some(Some(ok)) = self.streams.ok_since.get_mut(i) {
            // A drop breaks the listener's health: a binding that lapses because of
            // it is not a missing refresh.
            *ok = now;
        }
        let conns: Vec<u64> = self
            .streams
            .conns
            .iter()
            .filter(|(_, c)| c.registrar == Some(i) && c.peer_open)
            .map(|(id, _)| *id)
            .collect();
        for conn in conns {
            self.registrar_closes(conn, reset);
        }
    }

    /// Before registrar `i`'s connections drop at `now`: every TCP registration
    /// registered there for longer than 64·T1 (a younger one backs off, by design),
    /// with nothing in flight, on a healthy registrar that accepts connections, must
    /// be registered again within [`REREGISTER_BOUND`].
    fn owe_reregistrations(&mut self, i: usize, now: Instant) {
        let healthy = self
            .healthy_since
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|t| t <= now)
            && self.streams.accepting_since(i, now);
        if !healthy || self.shutdown_started.is_some() {
            return;
        }
        // 64·T1, and a margin for the 200's way back (the core counts from it).
        let old_enough = self.register_span + Duration::from_secs(2);
        let views = self.core.registrations();
        let mut owed = Vec::new();
        for (def, listed) in &self.providers {
            if !listed || !def.sip_transport().is_stream() || def.registrar != i {
                continue;
            }
            let registered = views
                .iter()
                .any(|v| v.id == def.id && v.status == RegisterStatus::Registered);
            let Some(call) = self.register.current_call(&def.id) else {
                continue;
            };
            let bound = self.registrars.get(i).is_some_and(|r| {
                r.bindings_of(&def.username)
                    .any(|b| b.call_id == call && b.refreshed_at + old_enough <= now)
            });
            if registered && bound && !self.register.in_flight(&def.id, now) {
                owed.push(def.id.clone());
            }
        }
        for provider in owed {
            let index = self.stream_checks.expect_reregister(Reregister {
                provider,
                registrar: i,
                dropped_at: now,
            });
            self.queue
                .push(now + REREGISTER_BOUND, Pending::CheckReregister(index));
        }
    }

    /// Obligation `index` is due.
    pub(super) fn check_reregister(&mut self, index: usize) {
        let Some(o) = self.stream_checks.obligation(index).cloned() else {
            return;
        };
        let i = o.registrar;
        let healthy_throughout = self
            .healthy_since
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|t| t <= o.dropped_at)
            && self.streams.accepting_since(i, o.dropped_at);
        let void = !healthy_throughout
            || self.last_workload_change.is_some_and(|t| t >= o.dropped_at)
            || self.shutdown_started.is_some();
        let registered = self
            .core
            .registrations()
            .iter()
            .any(|v| v.id == o.provider && v.status == RegisterStatus::Registered);
        let username = self
            .providers
            .iter()
            .find(|(d, _)| d.id == o.provider)
            .map(|(d, _)| d.username.clone())
            .unwrap_or_default();
        let call = self.register.current_call(&o.provider).map(str::to_owned);
        let bound_again = self.registrars.get(i).is_some_and(|r| {
            r.bindings_of(&username)
                .any(|b| Some(&b.call_id) == call.as_ref() && b.refreshed_at > o.dropped_at)
        });
        if !void {
            self.stats.reregistrations_checked += 1;
        }
        check_reregister(&mut self.findings, &o, registered && bound_again, void);
    }
}

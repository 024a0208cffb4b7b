//! The trace of a run: structured events rendered one per line with the time since the
//! start and symbolic ids, folded into a hash (the determinism self-check compares two
//! runs' hashes) and, when asked, kept for snapshots and failure reports.

pub mod names;
pub mod render;

use crate::net::Fate;
use names::Names;
use sip_core::{BackendOp, BackendReply, Event};
use std::time::Duration;

/// How much of the trace a run keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// Nothing rendered (benchmarks).
    Off,
    /// Rendered and hashed, not kept (seed sweeps).
    Hash,
    /// Rendered, hashed and kept (snapshots, failure reports).
    Full,
}

/// What happened, as data; [`Trace::record`] renders it.
#[derive(Debug, Clone, Copy)]
pub enum TraceEvent<'a> {
    /// A SIP datagram left `from` towards `to`.
    Sip {
        /// Sender.
        from: &'a str,
        /// Receiver.
        to: &'a str,
        /// The bytes.
        bytes: &'a [u8],
        /// What the network did with it.
        fate: &'a Fate,
    },
    /// trunkline sent a backend request.
    BackendRequest {
        /// The request.
        op: &'a BackendOp,
        /// What the network did with it.
        fate: &'a Fate,
    },
    /// The backend's answer left towards trunkline.
    BackendReply {
        /// The provider the request was about (`None`: the list).
        about: Option<&'a str>,
        /// The answer.
        reply: &'a BackendReply,
        /// What the network did with it.
        fate: &'a Fate,
    },
    /// The core emitted an event.
    Event(&'a Event),
    /// A fault or workload change was applied (already rendered by the scenario).
    Fault(&'a str),
    /// A registrar binding lapsed.
    Lapse {
        /// Registrar name.
        registrar: &'a str,
        /// AoR user.
        aor: &'a str,
        /// Call-ID of the lapsed binding.
        call_id: &'a str,
    },
    /// A phase of the run began, or a check ran.
    Phase(&'a str),
    /// Something happened on a stream connection (by the core's number for it).
    Stream {
        /// The core's connection number.
        conn: u64,
        /// What.
        line: StreamLine<'a>,
    },
}

/// What happened on a stream connection, for [`TraceEvent::Stream`].
#[derive(Debug, Clone, Copy)]
pub enum StreamLine<'a> {
    /// The core asked to open it towards `peer`.
    Connect {
        /// The registrar.
        peer: &'a str,
        /// `tcp` or `tls`.
        transport: &'a str,
    },
    /// The handshake was partitioned: no answer will reach the core.
    Unanswered,
    /// The peer refused it (the core reads `Closed` with the error).
    Refused,
    /// It is up: `Connected` delivered to the core.
    Connected,
    /// A whole message was written on it.
    Message {
        /// Writer.
        from: &'a str,
        /// Reader.
        to: &'a str,
        /// The message.
        bytes: &'a [u8],
        /// What the network did (empty: delivered in order).
        note: &'a str,
    },
    /// The core read a chunk of it.
    Read {
        /// The chunk's length.
        bytes: usize,
        /// Messages the chunk completed.
        messages: usize,
        /// Whether an unfinished message remains after it.
        partial: bool,
    },
    /// It ended.
    Closed {
        /// Who ended it (`trunkline`, a registrar, `network` for a timeout).
        by: &'a str,
        /// The error the core reads (`None`: a clean close).
        error: Option<&'a str>,
    },
}

/// FNV-1a, 64-bit: a stable hash that needs no dependency and is the same everywhere.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Folds bytes in.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The trace of one run.
#[derive(Debug, Clone)]
pub struct Trace {
    mode: TraceMode,
    names: Names,
    lines: Vec<String>,
    hash: Fnv,
    count: u64,
}

fn fate_note(fate: &Fate) -> &'static str {
    match fate {
        Fate::Lost => "  [lost]",
        Fate::Blocked => "  [partitioned]",
        Fate::Arrives(d) if d.len() > 1 => "  [duplicated]",
        Fate::Arrives(_) => "",
    }
}

impl Trace {
    /// An empty trace.
    pub fn new(mode: TraceMode) -> Self {
        Self {
            mode,
            names: Names::default(),
            lines: Vec::new(),
            hash: Fnv::default(),
            count: 0,
        }
    }

    /// Whether lines are rendered at all.
    pub fn is_on(&self) -> bool {
        self.mode != TraceMode::Off
    }

    /// Renders, hashes and (in full mode) keeps one event; returns the line so the
    /// caller can check it for leaks. `None` when the trace is off.
    pub fn record(&mut self, at: Duration, ev: TraceEvent<'_>) -> Option<&str> {
        if self.mode == TraceMode::Off {
            return None;
        }
        let body = match ev {
            TraceEvent::Sip {
                from,
                to,
                bytes,
                fate,
            } => format!(
                "{from} -> {to}  {}{}",
                render::sip(&mut self.names, bytes),
                fate_note(fate)
            ),
            TraceEvent::BackendRequest { op, fate } => format!(
                "trunkline -> backend  {}{}",
                render::backend_op(op),
                fate_note(fate)
            ),
            TraceEvent::BackendReply { about, reply, fate } => format!(
                "backend -> trunkline  {}{}{}",
                about.map(|a| format!("{a}: ")).unwrap_or_default(),
                render::backend_reply(reply),
                fate_note(fate)
            ),
            TraceEvent::Event(e) => format!("trunkline  event {}", render::event(e)),
            TraceEvent::Fault(f) => format!("fault  {f}"),
            TraceEvent::Lapse {
                registrar,
                aor,
                call_id,
            } => format!(
                "{registrar}  binding lapsed aor={aor} call={}",
                self.names.name("call", call_id)
            ),
            TraceEvent::Phase(p) => format!("phase  {p}"),
            TraceEvent::Stream { conn, line } => render::stream(&mut self.names, conn, line),
        };
        let line = format!("+{:>6}.{:03}s  {body}", at.as_secs(), at.subsec_millis());
        self.hash.write(line.as_bytes());
        self.hash.write(b"\n");
        self.count += 1;
        self.lines.push(line);
        let last = self.lines.len() - 1;
        if self.mode == TraceMode::Hash {
            // Keep only the newest line, for the caller's leak check.
            if last > 0 {
                self.lines.swap(0, last);
                self.lines.truncate(1);
            }
            return self.lines.first().map(String::as_str);
        }
        self.lines.last().map(String::as_str)
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// Lines recorded so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The kept lines (full mode).
    pub fn lines(&self) -> &[String] {
        if self.mode == TraceMode::Full {
            &self.lines
        } else {
            &[]
        }
    }

    /// The kept lines as one text.
    pub fn text(&self) -> String {
        let mut s = self.lines().join("\n");
        s.push('\n');
        s
    }
}

//! The steps of a controller run, as decoded from the tape — and encoded back, so that
//! seeds are written as readable step lists instead of hand-made bytes.
//!
//! Every field is one or two tape bytes and every byte value is valid (choices are taken
//! modulo the number of options), so the fuzzer never wastes an input on a decoding
//! error: a tape ends only when it runs out.

use crate::tape::{Tape, TapeWriter};

/// A byte at or above this starts a raw field: a length byte and that many tape bytes
/// instead of an entry of the field's pool of interesting values.
pub const RAW_MARK: u8 = 0xF0;

/// Longest raw field, in bytes.
pub const RAW_MAX: usize = 40;

/// A field value: an entry of the field's pool, or raw bytes from the tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The entry at this index (modulo the pool's length).
    Pool(u8),
    /// Bytes taken as they are (as lossy UTF-8 for text, little-endian for numbers).
    Raw(Vec<u8>),
}

impl Pick {
    fn decode(t: &mut Tape<'_>) -> Option<Self> {
        let b = t.u8()?;
        if b < RAW_MARK {
            return Some(Self::Pool(b));
        }
        let len = usize::from(t.u8()?) % (RAW_MAX + 1);
        Some(Self::Raw(t.bytes(len)?.to_vec()))
    }

    fn encode(&self, w: &mut TapeWriter) {
        match self {
            Self::Pool(i) => {
                w.u8(*i % RAW_MARK);
            }
            Self::Raw(bytes) => {
                let len = bytes.len().min(RAW_MAX);
                w.u8(RAW_MARK)
                    .u8(u8::try_from(len).unwrap_or(0))
                    .bytes(bytes.get(..len).unwrap_or_default());
            }
        }
    }
}

/// The core's configuration, chosen by the first bytes of the tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfigPick {
    /// Index into the REGISTER-rate pool.
    pub rate: u8,
    /// Index into the resync-interval pool.
    pub sync: u8,
    /// Index into the reports-in-flight pool (bits 0–1). At 0x80 and above it also
    /// turns call routing on (`routes_from_backend`): bit 2 adds a fixed route, bits
    /// 3–4 pick the lookup timeout (see `pools::routing`). Tapes from before routing
    /// keep it below 0x80. Bits 7 and 5 together turn call mode on (see
    /// `calls::CallWorld::new`).
    pub reports: u8,
    /// Index into the Contact-host pool (bits 0–1); with routing on, bits 2–4 pick the
    /// configured default domain.
    pub contact: u8,
    /// Index into the backend-timeout pool.
    pub backend_timeout: u8,
}

impl ConfigPick {
    /// Reads the five configuration bytes.
    pub fn decode(t: &mut Tape<'_>) -> Option<Self> {
        Some(Self {
            rate: t.u8()?,
            sync: t.u8()?,
            reports: t.u8()?,
            contact: t.u8()?,
            backend_timeout: t.u8()?,
        })
    }

    /// Writes the five configuration bytes.
    pub fn encode(&self, w: &mut TapeWriter) {
        w.u8(self.rate)
            .u8(self.sync)
            .u8(self.reports)
            .u8(self.contact)
            .u8(self.backend_timeout);
    }
}

/// One provider entry of a provider list; every field may be invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPick {
    /// `id`.
    pub id: Pick,
    /// `host`.
    pub host: Pick,
    /// `port`.
    pub port: Pick,
    /// `transport`.
    pub transport: Pick,
    /// `username`.
    pub username: Pick,
    /// `password`.
    pub password: Pick,
    /// `authUsername`.
    pub auth_username: Pick,
    /// `realm`.
    pub realm: Pick,
    /// `expiresIn`.
    pub expires: Pick,
    /// `outboundProxy`.
    pub outbound_proxy: Pick,
    /// `enabled`.
    pub enabled: Pick,
    /// A field the source could not read.
    pub problem: Pick,
}

impl ProviderPick {
    /// A valid provider: `id`, `user` and `password` are pool indexes.
    pub fn valid(id: u8, user: u8, password: u8) -> Self {
        let p = Pick::Pool;
        Self {
            id: p(id),
            host: p(0),
            port: p(0),
            transport: p(0),
            username: p(user),
            password: p(password),
            auth_username: p(0),
            realm: p(0),
            expires: p(0),
            outbound_proxy: p(0),
            enabled: p(0),
            problem: p(0),
        }
    }

    fn fields(&self) -> [&Pick; 12] {
        [
            &self.id,
            &self.host,
            &self.port,
            &self.transport,
            &self.username,
            &self.password,
            &self.auth_username,
            &self.realm,
            &self.expires,
            &self.outbound_proxy,
            &self.enabled,
            &self.problem,
        ]
    }

    fn decode(t: &mut Tape<'_>) -> Option<Self> {
        Some(Self {
            id: Pick::decode(t)?,
            host: Pick::decode(t)?,
            port: Pick::decode(t)?,
            transport: Pick::decode(t)?,
            username: Pick::decode(t)?,
            password: Pick::decode(t)?,
            auth_username: Pick::decode(t)?,
            realm: Pick::decode(t)?,
            expires: Pick::decode(t)?,
            outbound_proxy: Pick::decode(t)?,
            enabled: Pick::decode(t)?,
            problem: Pick::decode(t)?,
        })
    }

    fn encode(&self, w: &mut TapeWriter) {
        for f in self.fields() {
            f.encode(w);
        }
    }
}

/// A SIP response to one of the REGISTERs the core sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipReply {
    /// `100 Trying` or `180 Ringing`.
    Provisional {
        /// Which one.
        variant: u8,
    },
    /// `401` (or `407` when `proxy`) with challenges.
    Challenge {
        /// 407 instead of 401.
        proxy: bool,
        /// Index into the challenge-shape pool.
        variant: u8,
        /// Index into the realm pool.
        realm: u8,
        /// Index into the nonce pool (few: a repeated nonce means "wrong password").
        nonce: u8,
        /// `stale=true`.
        stale: bool,
    },
    /// `200 OK` granting a binding.
    Ok {
        /// Index into the 200-shape pool (Contact forms, compact headers, folding).
        variant: u8,
        /// Index into the granted-expiry pool.
        expires: u8,
    },
    /// `423 Interval Too Brief`.
    TooBrief {
        /// Index into the Min-Expires pool.
        min: u8,
    },
    /// A failure status with or without `Retry-After`.
    Failure {
        /// Index into the status pool.
        status: u8,
        /// Index into the Retry-After pool.
        retry_after: u8,
    },
}

impl SipReply {
    const KINDS: u8 = 5;

    fn decode(t: &mut Tape<'_>) -> Option<Self> {
        Some(match t.u8()? % Self::KINDS {
            0 => Self::Provisional { variant: t.u8()? },
            1 => {
                let flags = t.u8()?;
                Self::Challenge {
                    proxy: flags & 1 != 0,
                    stale: flags & 2 != 0,
                    variant: t.u8()?,
                    realm: t.u8()?,
                    nonce: t.u8()?,
                }
            }
            2 => Self::Ok {
                variant: t.u8()?,
                expires: t.u8()?,
            },
            3 => Self::TooBrief { min: t.u8()? },
            _ => Self::Failure {
                status: t.u8()?,
                retry_after: t.u8()?,
            },
        })
    }

    fn encode(&self, w: &mut TapeWriter) {
        match self {
            Self::Provisional { variant } => {
                w.u8(0).u8(*variant);
            }
            Self::Challenge {
                proxy,
                variant,
                realm,
                nonce,
                stale,
            } => {
                w.u8(1)
                    .u8(u8::from(*proxy) | (u8::from(*stale) << 1))
                    .u8(*variant)
                    .u8(*realm)
                    .u8(*nonce);
            }
            Self::Ok { variant, expires } => {
                w.u8(2).u8(*variant).u8(*expires);
            }
            Self::TooBrief { min } => {
                w.u8(3).u8(*min);
            }
            Self::Failure {
                status,
                retry_after,
            } => {
                w.u8(4).u8(*status).u8(*retry_after);
            }
        }
    }
}

/// One byte-level edit of a message before it is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mutation {
    /// Position (modulo the message length).
    pub at: u16,
    /// 0: overwrite, 1: insert, 2: delete, 3: truncate here.
    pub kind: u8,
    /// The byte written or inserted.
    pub byte: u8,
}

impl Mutation {
    fn decode(t: &mut Tape<'_>) -> Option<Self> {
        Some(Self {
            at: t.u16()?,
            kind: t.u8()?,
            byte: t.u8()?,
        })
    }

    fn encode(&self, w: &mut TapeWriter) {
        w.u16(self.at).u8(self.kind).u8(self.byte);
    }

    /// Applies the edit to `msg`.
    pub fn apply(&self, msg: &mut Vec<u8>) {
        if msg.is_empty() {
            msg.push(self.byte);
            return;
        }
        let at = usize::from(self.at) % msg.len();
        match self.kind % 4 {
            0 => {
                if let Some(b) = msg.get_mut(at) {
                    *b = self.byte;
                }
            }
            1 => msg.insert(at, self.byte),
            2 => {
                msg.remove(at);
            }
            _ => msg.truncate(at),
        }
    }
}

/// A reply to a pending backend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendPick {
    /// A provider list (also as the answer to a status report: the core must cope).
    Providers(Vec<ProviderPick>),
    /// The status report was stored.
    Delivered,
    /// 404.
    NotFound,
    /// 401/403: index into the status pool.
    Unauthorized(u8),
    /// A retryable failure.
    Failed,
}

impl BackendPick {
    /// Longest provider list a tape can give.
    pub const MAX_PROVIDERS: u8 = 6;

    fn decode(t: &mut Tape<'_>) -> Option<Self> {
        Some(match t.u8()? % 6 {
            0 => {
                let n = t.u8()? % (Self::MAX_PROVIDERS + 1);
                let mut list = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    list.push(ProviderPick::decode(t)?);
                }
                Self::Providers(list)
            }
            1 | 2 => Self::Delivered,
            3 => Self::NotFound,
            4 => Self::Unauthorized(t.u8()?),
            _ => Self::Failed,
        })
    }

    fn encode(&self, w: &mut TapeWriter) {
        match self {
            Self::Providers(list) => {
                let n = list.len().min(usize::from(Self::MAX_PROVIDERS));
                w.u8(0).u8(u8::try_from(n).unwrap_or(0));
                for p in list.iter().take(n) {
                    p.encode(w);
                }
            }
            Self::Delivered => {
                w.u8(1);
            }
            Self::NotFound => {
                w.u8(3);
            }
            Self::Unauthorized(s) => {
                w.u8(4).u8(*s);
            }
            Self::Failed => {
                w.u8(5);
            }
        }
    }
}

/// An operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandPick {
    /// Fetch the provider list now.
    Resync,
    /// Register this provider again (an id from the pool, or raw). With routing on,
    /// the same pick then asks where a call to a DID goes (`Command::LookupDestination`,
    /// the DID from its own pool or the raw bytes): no new tape byte, so tapes from
    /// before routing mean what they meant.
    Reregister(Pick),
    /// Shut down within `grace_centis` hundredths of a second.
    Shutdown {
        /// The grace in units of 10 ms.
        grace_centis: u16,
    },
}

impl CommandPick {
    fn decode(t: &mut Tape<'_>) -> Option<Self> {
        Some(match t.u8()? % 3 {
            0 => Self::Resync,
            1 => Self::Reregister(Pick::decode(t)?),
            _ => Self::Shutdown {
                grace_centis: t.u16()?,
            },
        })
    }

    fn encode(&self, w: &mut TapeWriter) {
        match self {
            Self::Resync => {
                w.u8(0);
            }
            Self::Reregister(id) => {
                w.u8(1);
                id.encode(w);
            }
            Self::Shutdown { grace_centis } => {
                w.u8(2).u16(*grace_centis);
            }
        }
    }
}

/// One step of a run: a single mutation of the core, then a full drain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Let `amount` units of time pass (unit: index into the scale pool: 1 ms, 1 s,
    /// 1 min) and fire the due timers.
    Advance {
        /// How many units.
        amount: u16,
        /// Index into the scale pool.
        scale: u8,
    },
    /// Jump to the core's own deadline, if it has one, and fire it.
    Deadline,
    /// Answer one of the recent REGISTERs (the `which`-th newest, modulo); in call
    /// mode, with `which`'s top bit set, one of the other requests the core sent.
    Respond {
        /// Which REGISTER (or, in call mode at 0x80 and above, which request).
        which: u8,
        /// What to answer.
        reply: SipReply,
        /// Edits applied to the answer first.
        mutations: Vec<Mutation>,
        /// Deliver it twice (a retransmitted response).
        twice: bool,
    },
    /// A datagram made of tape bytes.
    Raw(Vec<u8>),
    /// A request from a peer (OPTIONS, INVITE, an unknown method …); in call mode one
    /// of a call's requests (see `calls::CallWorld::request`).
    Request {
        /// Index into the request pool.
        kind: u8,
        /// Edits applied first.
        mutations: Vec<Mutation>,
        /// Deliver it twice (a retransmitted request; call mode only).
        twice: bool,
    },
    /// Answer a pending backend request (the `which`-th oldest, modulo). A config
    /// fetch or a destination lookup takes the pick as its own reply (see
    /// `pools::route_reply`).
    Backend {
        /// Which request.
        which: u8,
        /// The reply.
        reply: BackendPick,
    },
    /// Answer a pending DNS query (the `which`-th oldest, modulo).
    Resolve {
        /// Which query.
        which: u8,
        /// Index into the answer pool.
        answer: u8,
    },
    /// An operator command.
    Command(CommandPick),
}

/// Longest raw datagram, in bytes.
pub const RAW_DATAGRAM_MAX: u16 = 2048;

fn decode_mutations(t: &mut Tape<'_>, count: u8) -> Option<Vec<Mutation>> {
    (0..count).map(|_| Mutation::decode(t)).collect()
}

fn encode_mutations(w: &mut TapeWriter, mutations: &[Mutation]) {
    for m in mutations.iter().take(3) {
        m.encode(w);
    }
}

fn mutation_count(mutations: &[Mutation]) -> u8 {
    u8::try_from(mutations.len().min(3)).unwrap_or(0)
}

impl Op {
    /// Reads the next step; `None` when the tape runs out.
    ///
    /// The tag byte is weighted: steps that move a registration forward (answers,
    /// deadlines) come up more often than noise.
    pub fn decode(t: &mut Tape<'_>) -> Option<Self> {
        Some(match t.u8()? % 16 {
            0..=2 => Self::Deadline,
            3 | 4 => Self::Advance {
                amount: t.u16()?,
                scale: t.u8()?,
            },
            5..=8 => {
                let which = t.u8()?;
                let reply = SipReply::decode(t)?;
                let flags = t.u8()?;
                let mutations = decode_mutations(t, flags & 3)?;
                Self::Respond {
                    which,
                    reply,
                    mutations,
                    twice: flags & 4 != 0,
                }
            }
            9 => {
                let len = t.u16()? % (RAW_DATAGRAM_MAX + 1);
                Self::Raw(t.bytes(usize::from(len))?.to_vec())
            }
            10 => {
                let kind = t.u8()?;
                let flags = t.u8()?;
                Self::Request {
                    kind,
                    mutations: decode_mutations(t, flags & 3)?,
                    twice: flags & 4 != 0,
                }
            }
            11 | 12 => Self::Backend {
                which: t.u8()?,
                reply: BackendPick::decode(t)?,
            },
            13 => Self::Resolve {
                which: t.u8()?,
                answer: t.u8()?,
            },
            _ => Self::Command(CommandPick::decode(t)?),
        })
    }

    /// Writes the step so that [`Op::decode`] reads it back.
    pub fn encode(&self, w: &mut TapeWriter) {
        match self {
            Self::Deadline => {
                w.u8(0);
            }
            Self::Advance { amount, scale } => {
                w.u8(3).u16(*amount).u8(*scale);
            }
            Self::Respond {
                which,
                reply,
                mutations,
                twice,
            } => {
                w.u8(5).u8(*which);
                reply.encode(w);
                w.u8(mutation_count(mutations) | (u8::from(*twice) << 2));
                encode_mutations(w, mutations);
            }
            Self::Raw(bytes) => {
                let len = bytes.len().min(usize::from(RAW_DATAGRAM_MAX));
                w.u8(9)
                    .u16(u16::try_from(len).unwrap_or(0))
                    .bytes(bytes.get(..len).unwrap_or_default());
            }
            Self::Request {
                kind,
                mutations,
                twice,
            } => {
                w.u8(10)
                    .u8(*kind)
                    .u8(mutation_count(mutations) | (u8::from(*twice) << 2));
                encode_mutations(w, mutations);
            }
            Self::Backend { which, reply } => {
                w.u8(11).u8(*which);
                reply.encode(w);
            }
            Self::Resolve { which, answer } => {
                w.u8(13).u8(*which).u8(*answer);
            }
            Self::Command(c) => {
                w.u8(14);
                c.encode(w);
            }
        }
    }
}

/// A whole run: the configuration, then steps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// The core's configuration.
    pub config: ConfigPick,
    /// The steps, in order.
    pub ops: Vec<Op>,
}

impl Script {
    /// Decodes a whole tape (a trailing half-step is dropped, as a run would).
    pub fn decode(data: &[u8]) -> Self {
        let mut t = Tape::new(data);
        let Some(config) = ConfigPick::decode(&mut t) else {
            return Self::default();
        };
        let mut ops = Vec::new();
        while let Some(op) = Op::decode(&mut t) {
            ops.push(op);
        }
        Self { config, ops }
    }

    /// The tape that decodes to this script.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = TapeWriter::new();
        self.config.encode(&mut w);
        for op in &self.ops {
            op.encode(&mut w);
        }
        w.finish()
    }
}

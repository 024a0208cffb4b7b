//! What goes into the core and what comes out of it.

use crate::backend::destination::{NoRoute, Route};
use crate::provider::ProviderSpec;
use crate::transport::{ConnId, Flow, Link, Transport};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Correlates a backend request with its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Correlates a DNS query with its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryId(pub u64);

/// Something that happened outside the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A UDP datagram arrived on our SIP socket.
    Datagram {
        /// Where it arrived (our address).
        local: SocketAddr,
        /// Who sent it.
        remote: SocketAddr,
        /// Its bytes.
        payload: Vec<u8>,
    },
    /// Bytes arrived on a stream connection (as read: any chunking; the core frames
    /// them).
    Received {
        /// Which connection.
        conn: ConnId,
        /// What was read.
        bytes: Vec<u8>,
    },
    /// A connection we asked for ([`Output::Connect`]) is up (for TLS: the handshake
    /// is done and the certificate checked), from our address `local`.
    Connected { conn: ConnId, local: SocketAddr },
    /// A connection is gone: the peer closed it (`error: None`), or it failed to open,
    /// was reset, or its TLS handshake failed (`error` says what, e.g. the certificate
    /// problem). Not sent for a connection the core closed itself.
    Closed { conn: ConnId, error: Option<String> },
    /// The reply to an [`Output::Backend`] request.
    Backend { id: RequestId, reply: BackendReply },
    /// The answer to an [`Output::Resolve`] query: the records found (none when the
    /// name or the record type does not exist), or why the lookup failed (a timeout, a
    /// server failure: worth asking again soon).
    Resolved {
        id: QueryId,
        result: Result<Answer, String>,
    },
    /// An operator or the process asks for something.
    Command(Command),
}

/// Addresses found for a name, and the local address the OS would use towards them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// A/AAAA results in the resolver's order.
    pub addrs: Vec<IpAddr>,
    /// Our source address towards the first of `addrs`, used in Contact/Via when no
    /// public address is configured.
    pub local_ip: Option<IpAddr>,
}

/// The records a lookup found, and how long they may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Records of the kind the query asked for.
    pub records: Records,
    /// The smallest TTL among them (for an empty answer: the zone's negative-caching
    /// time), or `None` when the resolver cannot tell (IP literals, `/etc/hosts`): the
    /// core then uses its own default.
    pub ttl: Option<Duration>,
}

impl Answer {
    /// Addresses without a TTL.
    pub fn addresses(addrs: Vec<IpAddr>, local_ip: Option<IpAddr>) -> Answer {
        Answer::from(Resolution { addrs, local_ip })
    }
}

impl From<Resolution> for Answer {
    fn from(res: Resolution) -> Answer {
        Answer {
            records: Records::Addresses(res),
            ttl: None,
        }
    }
}

/// The records of an [`Answer`], by the [`QueryKind`] asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// A/AAAA.
    Addresses(Resolution),
    /// SRV (RFC 2782), in the order the server gave them.
    Services(Vec<SrvRecord>),
    /// NAPTR (RFC 3403), in the order the server gave them.
    Naptr(Vec<NaptrRecord>),
}

/// One SRV record: `target:port`, tried by `priority` (lowest first), spread by `weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// A host name (without the trailing dot); `.` alone means "no service here".
    pub target: String,
}

/// One NAPTR record as RFC 3263 §4.1 uses it: `services` such as `SIP+D2U`, `flags`
/// `s` (the replacement is an SRV name), `replacement` the SRV name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    /// A domain name without the trailing dot.
    pub replacement: String,
}

/// Operator and process commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Un-register everything, deliver final statuses, then emit
    /// [`Event::ShutdownComplete`] (at the latest when `grace` has passed).
    Shutdown { grace: Duration },
    /// Fetch the provider list now.
    Resync,
    /// Register this provider again now.
    Reregister { id: String },
    /// Where would a call to `did` go now? Answered by [`Event::DestinationFound`] with
    /// the same `ticket` (the admin API's routing check; calls use the same lookup).
    LookupDestination { did: String, ticket: u64 },
    /// Hang call `id` up on both legs (the admin API's `DELETE /api/calls/{id}`).
    HangUp { id: u64 },
}

/// Something the driver must do, or learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a datagram, or write on a connection.
    Transmit(Transmit),
    /// Open a connection; answer with [`Input::Connected`] or [`Input::Closed`].
    Connect(Connect),
    /// Close a connection (after writing what was handed over for it); no
    /// [`Input::Closed`] is expected, later inputs for it are ignored.
    Close { conn: ConnId },
    /// Start a backend request; reply with [`Input::Backend`] and the same id.
    Backend(BackendRequest),
    /// Resolve a host name; reply with [`Input::Resolved`] and the same id.
    Resolve(ResolveQuery),
    /// Something to log, count or show.
    Event(Event),
    /// Nothing more to do now: call `handle_timeout` at this instant (or never, when
    /// `None`), or earlier when an input arrives.
    Timeout(Option<Instant>),
}

/// A message to send: a datagram from our SIP socket to `remote`, or bytes to write on
/// a connection (`flow` names it; `remote` is then its far end, for logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    pub remote: SocketAddr,
    pub flow: Flow,
    pub payload: Vec<u8>,
}

impl Transmit {
    /// Where it goes, as a [`Link`].
    pub fn link(&self) -> Link {
        Link {
            remote: self.remote,
            flow: self.flow,
        }
    }
}

impl std::fmt::Debug for Transmit {
    // Payloads are long; show their first line only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self
            .payload
            .split(|b| *b == b'\r')
            .next()
            .unwrap_or_default();
        f.debug_struct("Transmit")
            .field("remote", &self.remote)
            .field("flow", &self.flow)
            .field("first_line", &String::from_utf8_lossy(first))
            .field("len", &self.payload.len())
            .finish()
    }
}

/// A connection for the driver to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Its id in later inputs and outputs.
    pub conn: ConnId,
    /// TCP or TLS.
    pub transport: Transport,
    /// Where to.
    pub remote: SocketAddr,
    /// For TLS: the name sent as SNI and checked against the certificate.
    pub server_name: Option<String>,
}

/// A DNS lookup: `host` is the name to ask for (for SRV e.g. `_sip._udp.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveQuery {
    pub id: QueryId,
    pub host: String,
    pub kind: QueryKind,
}

/// What to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueryKind {
    /// A and AAAA records (an IP literal is answered as itself); the answer also says
    /// our local address towards the first (see [`Resolution::local_ip`]).
    Address,
    /// SRV records.
    Srv,
    /// NAPTR records.
    Naptr,
}

/// A backend request, as meaning; [`crate::backend::http`] maps it onto HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRequest {
    pub id: RequestId,
    pub op: BackendOp,
}

/// What the core wants from the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendOp {
    /// The list of provider accounts.
    FetchProviders,
    /// Store the registration status of one provider.
    ReportStatus {
        provider_id: String,
        report: StatusReport,
    },
    /// The backend's SIP settings (`livekitDomain`).
    FetchConfig,
    /// The destination of calls to one DID.
    LookupDestination { did: String },
}

/// The body of a status report: exactly the three keys of CONTRACT.md §3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub register_status: RegisterStatus,
    pub register_error: Option<String>,
    pub last_register_at: Option<String>,
}

/// A registration's status as the backend knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisterStatus {
    Pending,
    Registered,
    Failed,
}

impl RegisterStatus {
    /// The contract's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Registered => "registered",
            Self::Failed => "failed",
        }
    }
}

/// The outcome of a backend request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendReply {
    /// The provider list.
    Providers(Vec<ProviderSpec>),
    /// The status report was stored.
    Delivered,
    /// The backend's SIP settings; `livekit_domain` when it names one.
    Config { livekit_domain: Option<String> },
    /// The destination URI the backend gives for a DID (not yet checked).
    Destination { uri: String },
    /// The backend does not know the provider (404).
    NotFound,
    /// The backend refused our API key (401/403).
    Unauthorized { status: u16 },
    /// A failure worth retrying: timeout, connection error, 5xx, unreadable body.
    Failed(String),
}

/// Something that happened inside the core, for logs, metrics and the admin view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A registration's status, error or expiry changed (boxed: it is the largest
    /// event, and ten thousand of them can be queued after one provider list).
    RegistrationChanged(Box<RegistrationView>),
    /// The provider list was applied.
    ProvidersApplied {
        total: usize,
        added: usize,
        removed: usize,
        changed: usize,
        invalid: usize,
    },
    /// A provider-list fetch failed; the running set is kept.
    ProvidersFetchFailed { error: String, retry_in: Duration },
    /// A status report could not be delivered yet.
    ReportFailed {
        provider_id: String,
        error: String,
        retry_in: Duration,
    },
    /// The backend refused our API key.
    ApiKeyRejected { status: u16 },
    /// A datagram was not usable SIP and was dropped.
    MessageDropped { remote: SocketAddr, reason: String },
    /// A REGISTER transaction ended.
    RegisterOutcome {
        provider_id: String,
        outcome: RegisterOutcome,
        /// What the request was.
        sent: SentRegister,
    },
    /// A registration failed with a new error, or still fails with the same one (then
    /// at most every [`crate::registration::FAILURE_REPEAT_EVERY`], with the count):
    /// what deserves a warning, where [`Event::RegistrationChanged`] is every change.
    RegistrationFailing(Box<FailureNotice>),
    /// The binding of a removed or replaced provider could not be removed and stays at
    /// the registrar until it expires.
    BindingLeftBehind(Box<LeftBehind>),
    /// The shutdown ended before these providers' final statuses reached the backend.
    FinalReportsLost {
        /// Provider id and the status it could not report.
        providers: Vec<(String, RegisterStatus)>,
    },
    /// The identity of a registration's binding changed or its CSeq reservation moved
    /// on: persist it, and hand it back with [`crate::Controller::restore`] after a
    /// restart so the existing binding is refreshed instead of a second one added.
    BindingIdentity(BindingIdentity),
    /// A provider is gone: its persisted identity can be dropped.
    BindingForgotten { provider_id: String },
    /// The answer to [`Command::LookupDestination`].
    DestinationFound {
        ticket: u64,
        did: String,
        result: Result<Route, NoRoute>,
    },
    /// A destination lookup could not use the backend's answer and fell back to the
    /// default route (the call still goes somewhere; the operator should know why).
    DestinationFallback { did: String, reason: String },
    /// A registrar saw our requests come from another address than the one we
    /// advertised (RFC 3581 `received`/`rport`): we are behind a NAT, and Contact and
    /// Via towards that provider say `seen` from now on. Once per change.
    PublicAddressLearned {
        provider_id: String,
        advertised: String,
        seen: SocketAddr,
    },
    /// A registration moved from one RFC 3263 target of its registrar to the next
    /// (`reason`: what failed at `from`).
    TargetChanged {
        provider_id: String,
        from: SocketAddr,
        to: SocketAddr,
        reason: String,
    },
    /// A binding left at an abandoned target was removed there (`removed`), or given
    /// up on (`removed: false`, `why`: the target never answered before the binding
    /// lapsed, or refused the un-REGISTER).
    AbandonedBindingCleared {
        provider_id: String,
        target: SocketAddr,
        removed: bool,
        why: String,
    },
    /// A UDP registrar did not answer our OPTIONS keep-alive (Timer F): it may be
    /// down, or the path to it. Once per outage.
    KeepaliveUnanswered { registrar: String },
    /// A registrar announced by [`Event::KeepaliveUnanswered`] answers again.
    KeepaliveAnswered { registrar: String },
    /// `GET /api/sip/config` failed; the default domain stays as it is.
    ConfigFetchFailed { error: String, retry_in: Duration },
    /// The default destination domain changed (`livekitDomain` from the backend).
    DefaultDomainChanged { domain: String },
    /// A call ended: the one line operators read about it.
    CallEnded(Box<CallRecord>),
    /// An INVITE was refused before it became a call (a limit, the shutdown, a loop).
    CallRefused {
        /// The caller's Call-ID.
        call_id: String,
        status: u16,
        reason: String,
    },
    /// All registrations are un-registered and reports delivered (or grace ran out).
    ShutdownComplete,
}

/// A finished call, as logged when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The call's id (as in `GET /api/calls`).
    pub id: u64,
    /// The provider it came from, when attributed to one.
    pub provider_id: Option<String>,
    pub provider_name: Option<String>,
    /// The dialed number.
    pub did: String,
    /// The caller's number (From user).
    pub caller: Option<String>,
    /// The destination URI, once routed.
    pub destination: Option<String>,
    /// The provider leg's Call-ID.
    pub inbound_call_id: String,
    /// Our leg's Call-ID towards the destination, once it was called.
    pub outbound_call_id: Option<String>,
    /// The final status the caller got (200 for an answered call).
    pub status: u16,
    /// The outcome label of `trunkline_calls_total`.
    pub outcome: &'static str,
    /// Why it ended, in words (who hung up, which limit, what failed).
    pub reason: String,
    /// From the INVITE to the answer, when answered.
    pub setup_time: Option<Duration>,
    /// From the answer to the end, when answered.
    pub duration: Option<Duration>,
}

/// What an operator sees of a call in progress (`GET /api/calls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    pub id: u64,
    pub provider_id: Option<String>,
    pub did: String,
    pub caller: Option<String>,
    pub destination: Option<String>,
    /// `routing`, `ringing`, `answered` or `ending`.
    pub state: &'static str,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub answered_at: Option<String>,
}

/// What identifies a registration's binding at the registrar across restarts: the same
/// Contact (its `line` token), Call-ID and From tag, and a CSeq above any already used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingIdentity {
    pub provider_id: String,
    /// `user@registrar:port`: the identity is reused only for the same account.
    pub account: String,
    pub call_id: String,
    pub from_tag: String,
    pub line: String,
    /// No request has used a CSeq at or above this value; a restart starts here.
    pub next_cseq: u32,
}

/// What a REGISTER transaction sent, so that its outcome can be read alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentRegister {
    pub cseq: u32,
    /// `Expires` of the request: 0 for an un-REGISTER.
    pub expires: u32,
    /// Whether it carried credentials (an answer to a challenge, or pre-emptive).
    pub credentials: bool,
}

/// A failing registration, as announced to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureNotice {
    pub provider_id: String,
    pub provider_name: String,
    /// `host:port` of the registrar.
    pub registrar: String,
    pub error: String,
    /// Failed attempts with this error so far (1 when it is new).
    pub attempts: u32,
    /// When this error first occurred, RFC 3339 UTC.
    pub since: String,
    /// When the next attempt is due, if one is scheduled.
    pub retry_in: Option<Duration>,
}

/// A binding that stays at a registrar although its provider is gone or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftBehind {
    pub provider_id: String,
    pub provider_name: String,
    /// `host:port` of the registrar.
    pub registrar: String,
    /// The address of record the binding is for.
    pub aor: String,
    /// When it lapses at the registrar, RFC 3339 UTC, when known.
    pub expires_at: Option<String>,
    /// Why it could not be removed.
    pub reason: String,
}

/// How a REGISTER transaction ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    Success,
    Challenged,
    IntervalTooBrief,
    Rejected,
    Failed,
    Timeout,
}

impl RegisterOutcome {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Challenged => "challenged",
            Self::IntervalTooBrief => "interval_too_brief",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
        }
    }
}

/// What an operator sees of one registration. Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationView {
    pub id: String,
    pub name: String,
    pub status: RegisterStatus,
    pub error: Option<String>,
    /// RFC 3339 UTC.
    pub last_register_at: Option<String>,
    /// When the granted binding lapses, RFC 3339 UTC.
    pub expires_at: Option<String>,
    /// When the next REGISTER is due, RFC 3339 UTC.
    pub next_refresh_at: Option<String>,
    /// `host:port` of the registrar.
    pub registrar: String,
    /// The provider's transport (CONTRACT.md §7).
    pub transport: Transport,
    /// The address in use after resolution (the registrar's, or its outbound
    /// proxy's), once resolved.
    pub target: Option<SocketAddr>,
}

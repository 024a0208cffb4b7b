//! The core's settings: everything that shapes a protocol decision.

use crate::secret::Secret;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::time::Duration;

/// RFC 3261 §17 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipTimers {
    /// RTT estimate: first retransmission interval (500 ms).
    pub t1: Duration,
    /// Longest retransmission interval for non-INVITE requests (4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (5 s): Timer I.
    pub t4: Duration,
}

impl Default for SipTimers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Settings of the [`Controller`](crate::Controller).
#[derive(Debug, Clone)]
pub struct Config {
    /// Our SIP port, written in Via and Contact.
    pub local_port: u16,
    /// Host written in Contact and Via (`sip.public_address`). When `None`, the local
    /// address the driver reports for the route to each registrar is used.
    pub contact_host: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// REGISTER requests per second across all registrations (new transactions only:
    /// retransmissions are part of their transaction and are not delayed).
    pub register_rate: u32,
    /// Transaction timers.
    pub timers: SipTimers,
    /// How long a backend request may take before it counts as failed.
    pub backend_timeout: Duration,
    /// Provider-list resync period; `None` fetches once at start.
    pub sync_interval: Option<Duration>,
    /// Backoff for temporary registration failures (timeouts, 5xx, 4xx other than
    /// authentication): first delay and cap.
    pub retry_initial: Duration,
    /// See [`Config::retry_initial`].
    pub retry_cap: Duration,
    /// Backoff for failures that need someone to act (credentials rejected, 403, 404):
    /// still retried, slowly, so a fix at the provider heals without a restart.
    pub rejected_retry_initial: Duration,
    /// See [`Config::rejected_retry_initial`].
    pub rejected_retry_cap: Duration,
    /// Backoff of status reports and provider fetches towards the backend.
    pub backend_retry_initial: Duration,
    /// See [`Config::backend_retry_initial`].
    pub backend_retry_cap: Duration,
    /// Status reports in flight at once; more wait their turn (latest status wins).
    pub max_reports_in_flight: usize,
    /// The longest `Retry-After` we honour as given; longer values are capped.
    pub max_retry_after: Duration,
    /// Calls go to `sip:{did}@{default_domain}` unless routed otherwise
    /// (`routing.default_domain`; the backend's `livekitDomain` replaces it).
    pub default_domain: Option<String>,
    /// Per-DID destinations that win over everything else (`routing.dids`).
    pub fixed_routes: BTreeMap<String, String>,
    /// Backend mode: fetch `GET /api/sip/config` with each provider sync and ask
    /// `GET /api/sip/destination/{did}` per DID. File mode leaves both alone.
    pub routes_from_backend: bool,
    /// How long a call waits for the backend's destination before it takes the
    /// default: a caller hears silence meanwhile, so this is shorter than
    /// [`Config::backend_timeout`].
    pub route_lookup_timeout: Duration,
    /// Inbound calls (CONTRACT.md §6).
    pub calls: CallSettings,
    /// Server transactions held at once before new requests are answered statelessly
    /// (see [`crate::transaction::MAX_SERVER_TRANSACTIONS`], the default).
    pub max_server_transactions: usize,
    /// Limits on TCP/TLS connections (see [`crate::connections`]).
    pub streams: crate::connections::StreamLimits,
    /// The TLS listener's port, when one listens (a certificate is configured): what
    /// Contact and Via say on TLS legs. `None`: they say `local_port` (the peer
    /// reaches us on the connection we opened anyway).
    pub tls_port: Option<u16>,
}

impl Config {
    /// The port we listen on for `transport`: [`Config::tls_port`] for TLS when set,
    /// else [`Config::local_port`] (UDP and TCP share it).
    pub fn listen_port(&self, transport: crate::transport::Transport) -> u16 {
        match (transport, self.tls_port) {
            (crate::transport::Transport::Tls, Some(port)) => port,
            _ => self.local_port,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            local_port: 5060,
            contact_host: None,
            user_agent: concat!("trunkline/", env!("CARGO_PKG_VERSION")).to_owned(),
            register_rate: 200,
            timers: SipTimers::default(),
            backend_timeout: Duration::from_secs(5),
            sync_interval: Some(Duration::from_secs(300)),
            retry_initial: Duration::from_secs(5),
            retry_cap: Duration::from_secs(300),
            rejected_retry_initial: Duration::from_secs(300),
            rejected_retry_cap: Duration::from_secs(3600),
            backend_retry_initial: Duration::from_secs(1),
            backend_retry_cap: Duration::from_secs(60),
            max_reports_in_flight: 32,
            max_retry_after: Duration::from_secs(3600),
            default_domain: None,
            fixed_routes: BTreeMap::new(),
            routes_from_backend: false,
            route_lookup_timeout: Duration::from_secs(2),
            calls: CallSettings::default(),
            max_server_transactions: crate::transaction::MAX_SERVER_TRANSACTIONS,
            streams: crate::connections::StreamLimits::default(),
            tls_port: None,
        }
    }
}

/// What an INVITE from a source that is no provider gets (`sip.reject_unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RejectUnknown {
    /// `403 Forbidden` (the default: a misconfigured provider learns why).
    #[default]
    Forbidden,
    /// No answer at all: a scanner learns nothing, not even that SIP runs here.
    Drop,
}

/// Digest credentials we answer a challenge with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The username.
    pub username: String,
    /// The password (never logged: [`Secret`] redacts itself).
    pub password: Secret,
}

/// Settings of inbound calls (CONTRACT.md §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSettings {
    /// Extra sources allowed to send INVITEs beyond the providers' own addresses
    /// (`sip.allowed_sources`).
    pub allowed_sources: Vec<IpNet>,
    /// What an INVITE from any other source gets (`sip.reject_unknown`).
    pub reject_unknown: RejectUnknown,
    /// Credentials for a destination that challenges our INVITE
    /// (`routing.auth_username` / `routing.auth_password`).
    pub destination_auth: Option<DigestCredentials>,
    /// No final answer from the destination by then: CANCEL it, `408` to the caller
    /// (`calls.ring_timeout`).
    pub ring_timeout: Duration,
    /// An answered call is ended on both legs after this (`calls.max_duration`).
    pub max_duration: Duration,
    /// Concurrent calls in all; `None` = no limit (`calls.max_calls`, 0 in the config).
    pub max_calls: Option<u32>,
    /// Concurrent calls per provider; `None` = no limit (`calls.max_calls_per_provider`).
    pub max_calls_per_provider: Option<u32>,
    /// After a shutdown begins, how long calls in progress may go on before both legs
    /// get BYE (`calls.drain`).
    pub drain: Duration,
}

impl CallSettings {
    /// Whether `ip` is in `sip.allowed_sources`.
    pub fn allows_source(&self, ip: std::net::IpAddr) -> bool {
        allows(&self.allowed_sources, ip)
    }
}

/// Whether `ip` is in one of `nets` (the `sip.allowed_sources` rule).
pub fn allows(nets: &[IpNet], ip: std::net::IpAddr) -> bool {
    nets.iter().any(|net| net.contains(&ip))
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            allowed_sources: Vec::new(),
            reject_unknown: RejectUnknown::Forbidden,
            destination_auth: None,
            ring_timeout: Duration::from_secs(60),
            max_duration: Duration::from_secs(4 * 3600),
            max_calls: None,
            max_calls_per_provider: None,
            drain: Duration::from_secs(30),
        }
    }
}

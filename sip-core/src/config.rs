//! The core's settings: everything that shapes a protocol decision.

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
        }
    }
}

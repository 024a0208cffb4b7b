//! A scenario as data: the world (registrars, providers, links), the fault schedule with
//! times, and the phases. Being data, it can be printed, saved as JSON, generated from a
//! seed and shrunk by proptest.

use crate::models::backend::BackendMode;
use crate::models::livekit::Answer;
use crate::models::provider::Ending;
use crate::models::registrar::{Mode, RegistrarConfig};
use crate::net::{Cut, LinkConfig};
use serde::{Deserialize, Serialize};
use sip_core::{CallSettings, Config, DigestCredentials, ProviderSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Every generated password starts with this, so one substring search finds a leak of
/// any of ten thousand passwords.
pub const PASSWORD_MARKER: &str = "pw~sim~";

/// `LIVEKIT_SIP_USERNAME` of every run; a challenging LiveKit model checks it.
pub const LIVEKIT_USERNAME: &str = "trunkline-sim";

/// `LIVEKIT_SIP_PASSWORD` of every run (it bears the marker: a leak is found).
pub const LIVEKIT_PASSWORD: &str = "pw~sim~livekit-Secret";

/// Where the provider model of registrar `index` places calls from: the registrar's IP
/// (the source the core admits), another port.
pub fn caller_addr(index: usize) -> SocketAddr {
    SocketAddr::new(registrar_addr(index).ip(), 5070)
}

/// The address of the stranger: no provider's.
pub const STRANGER_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 250, 0, 1)), 5070);

/// The address of LiveKit model `index`.
pub fn livekit_addr(index: usize) -> SocketAddr {
    let hi = u8::try_from(index / 250).unwrap_or(u8::MAX);
    let lo = u8::try_from(index % 250 + 1).unwrap_or(1);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, hi, lo)), 5080)
}

/// The host name of LiveKit model `index` (a default domain is `host:port`).
pub fn livekit_host(index: usize) -> String {
    format!("lk-{index}.sim.test")
}

/// The display name of LiveKit model `index` in traces.
pub fn livekit_name(index: usize) -> String {
    format!("lk-{index}")
}

/// trunkline's own address in the modelled network.
pub const CORE_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5060);

/// A whole run, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// A name for traces and reports.
    pub name: String,
    /// Seeds the network, the models and the core.
    pub seed: u64,
    /// The registrars; providers point at them by index.
    pub registrars: Vec<RegistrarDef>,
    /// Every provider account that exists at some point of the run.
    pub providers: Vec<ProviderDef>,
    /// The link to the backend.
    pub backend_link: LinkConfig,
    /// Faults and workload changes, each at an offset from the start.
    pub faults: Vec<Scheduled>,
    /// When every fault ends (links healed, models back to normal): the start of the
    /// liveness phase. Faults scheduled later are ignored.
    pub heal_at: Duration,
    /// How long the liveness phase runs before its checks; `None`: long enough for any
    /// backoff, retry and binding of this scenario to settle ([`Scenario::convergence`]).
    pub converge_for: Option<Duration>,
    /// After the liveness checks, shut down with this grace period and check the
    /// un-registrations and final reports; `None`: no shutdown phase.
    pub shutdown_grace: Option<Duration>,
    /// The core's settings.
    pub core: CoreKnobs,
    /// The LiveKit-like destinations calls are bridged to.
    #[serde(default)]
    pub livekits: Vec<LiveKitDef>,
    /// Calls placed during the fault phase.
    #[serde(default)]
    pub calls: Vec<CallDef>,
    /// Where the core sends each DID.
    #[serde(default)]
    pub routing: CallRouting,
}

/// One LiveKit-like destination and the link to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveKitDef {
    /// `180` this long after the INVITE; `None`: no 180.
    pub ring_after: Option<Duration>,
    /// The final response this long after the INVITE.
    pub answer_after: Duration,
    /// Which final response.
    pub answer: Answer,
    /// Challenges each new INVITE with `407` (checked against the core's
    /// `LIVEKIT_SIP_USERNAME` / `LIVEKIT_SIP_PASSWORD`).
    pub challenge: bool,
    /// Hangs up this long after the ACK; `None`: the caller hangs up.
    pub hang_up_after: Option<Duration>,
    /// Sends a REFER this long after the ACK.
    pub refer_after: Option<Duration>,
    /// The link from trunkline to it (healed back to this, without loss).
    pub link: LinkConfig,
}

impl LiveKitDef {
    /// Answers after 180 at 100 ms and 200 at 300 ms, no challenge, on a LAN link.
    pub fn answering() -> Self {
        Self {
            ring_after: Some(Duration::from_millis(100)),
            answer_after: Duration::from_millis(300),
            answer: Answer::Accept,
            challenge: false,
            hang_up_after: None,
            refer_after: None,
            link: LinkConfig::lan(),
        }
    }
}

/// Who places a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallSource {
    /// The provider (by index): from its registrar's address, the source the core admits.
    Provider(usize),
    /// An address that is no provider's: the INVITE must never be forwarded.
    Stranger,
}

/// One call placed at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallDef {
    /// Offset from the start (calls at or after the heal are not placed).
    pub at: Duration,
    /// Who calls.
    pub from: CallSource,
    /// The number dialed (the Request-URI user, as an IP trunk sends it).
    pub did: String,
    /// How the caller ends it.
    pub ending: Ending,
    /// The caller sends a re-INVITE this long after the answer.
    pub reinvite_after: Option<Duration>,
}

/// Where calls go: fixed routes win, the rest takes the default domain (resolved by
/// the simulated DNS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRouting {
    /// DID → LiveKit index, as `routing.dids` (`sip:{did}@{ip}:{port}`).
    pub fixed: Vec<(String, usize)>,
    /// The LiveKit whose host name is the default domain.
    pub default_livekit: Option<usize>,
}

/// The core's call settings a scenario controls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallKnobs {
    /// `calls.ring_timeout`.
    pub ring_timeout: Duration,
    /// `calls.max_duration`.
    pub max_duration: Duration,
}

impl Default for CallKnobs {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(30),
            max_duration: Duration::from_secs(600),
        }
    }
}

/// One registrar and the link to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrarDef {
    /// Its personality.
    pub config: RegistrarConfig,
    /// The link from trunkline to it (healed back to this after the fault phase,
    /// without loss).
    pub link: LinkConfig,
    /// Providers name it by host name (resolved through DNS) rather than by IP.
    pub by_name: bool,
}

/// How a provider entry is broken, when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Defect {
    /// Port out of range.
    BadPort,
    /// Served with `SIP_TRANSPORT_TLS`. Once a transport the core did not support;
    /// kept so that saved scenarios read as before, it now means the same as
    /// [`SipTransport::Tls`] (see [`ProviderDef::sip_transport`]).
    Tls,
    /// A CR/LF in the user name (header injection attempt).
    ControlCharacter,
}

/// The transport a provider entry names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SipTransport {
    /// `SIP_TRANSPORT_UDP`: REGISTERs as datagrams.
    #[default]
    Udp,
    /// `SIP_TRANSPORT_TCP`: REGISTERs on a connection the core opens to the registrar
    /// (shared by every TCP account at that registrar address).
    Tcp,
    /// `SIP_TRANSPORT_TLS`: the same over TLS. The handshake and the certificate check
    /// are the driver's, so to the core — and in the simulator — a TLS connection is a
    /// stream like TCP's that says `SIP/2.0/TLS` and `;transport=tls`.
    Tls,
}

impl SipTransport {
    /// The core's transport.
    pub fn core(self) -> sip_core::Transport {
        match self {
            Self::Udp => sip_core::Transport::Udp,
            Self::Tcp => sip_core::Transport::Tcp,
            Self::Tls => sip_core::Transport::Tls,
        }
    }

    /// Whether it runs on a connection.
    pub fn is_stream(self) -> bool {
        self != Self::Udp
    }
}

/// How a registrar's TCP listener treats connections (changed by a fault schedule;
/// healed back to [`StreamMode::Accept`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    /// Accepts connections and keeps them open.
    #[default]
    Accept,
    /// Refuses new connections (RST to the SYN: the core's `Connect` fails with
    /// "connection refused"); connections already open stay open.
    Refuse,
    /// Accepts, but closes each connection (FIN) right after it sends an answer on
    /// it: a registration is made and its flow lost at once, every time (the core's
    /// "closed within 64·T1 of registering" backoff rule).
    CloseAfterAnswer,
}

/// One provider account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderDef {
    /// Its id at the backend.
    pub id: String,
    /// Index of its registrar (as served now: [`ProviderChange::Registrar`] moves it).
    pub registrar: usize,
    /// SIP user name (unique in the scenario: it identifies the account on the wire).
    pub username: String,
    /// The password the registrar knows.
    pub password: String,
    /// The backend serves a different password than the registrar knows.
    pub wrong_password: bool,
    /// `expiresIn` as served.
    pub expires: Option<i64>,
    /// `enabled` as served.
    pub enabled: bool,
    /// A broken entry the core must report, not register.
    pub defect: Option<Defect>,
    /// In the provider list from the start.
    pub listed: bool,
    /// The transport it registers over (for its whole life: the schedule never
    /// changes it).
    #[serde(default)]
    pub transport: SipTransport,
}

/// A fault at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    /// Offset from the start.
    pub at: Duration,
    /// What happens.
    pub fault: Fault,
}

/// Which links a network fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The link to one registrar (all providers it serves).
    Registrar(usize),
    /// The link to the backend.
    Backend,
    /// The link to one LiveKit model (by index).
    LiveKit(usize),
    /// Every link.
    All,
}

/// A change to one provider's entry in the backend's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderChange {
    /// Removed from the list.
    Remove,
    /// (Back) in the list.
    Add,
    /// The served password: `true` right, `false` wrong.
    Credentials(bool),
    /// `expiresIn`.
    Expires(Option<i64>),
    /// `enabled`.
    Enabled(bool),
    /// Served with another registrar (by index) as its host. The account exists at every
    /// registrar a schedule moves it to, from the start, as it would at a real provider.
    Registrar(usize),
}

/// An operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimCommand {
    /// `Command::Resync`.
    Resync,
    /// `Command::Reregister` of a provider (by index).
    Reregister {
        /// Provider index.
        provider: usize,
    },
}

/// Something the schedule does to the world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fault {
    /// Cut a link (or all).
    Partition {
        /// Which.
        target: Target,
        /// Which way.
        cut: Cut,
    },
    /// Lift the partitions of a link (or all).
    Repair {
        /// Which.
        target: Target,
    },
    /// Change a link's latency, loss and duplication.
    Link {
        /// Which.
        target: Target,
        /// New behaviour.
        config: LinkConfig,
    },
    /// Change how a registrar answers.
    Registrar {
        /// Registrar index.
        registrar: usize,
        /// New mode.
        mode: Mode,
    },
    /// Restart a registrar: it forgets its bindings and nonces.
    RestartRegistrar {
        /// Registrar index.
        registrar: usize,
    },
    /// Change how the backend answers.
    Backend(BackendMode),
    /// Change a provider's entry in the backend's list.
    Provider {
        /// Provider index.
        provider: usize,
        /// The change.
        change: ProviderChange,
    },
    /// An operator command.
    Command(SimCommand),
    /// Change how a registrar's TCP listener treats connections.
    Streams {
        /// Registrar index.
        registrar: usize,
        /// New behaviour.
        mode: StreamMode,
    },
    /// Every open connection to a registrar ends at once: the registrar closes it
    /// (`reset: false`, a FIN after what is in flight; the core reads `Closed` without
    /// an error) or it is reset (`reset: true`, an RST: what is in flight is lost and
    /// the core reads `Closed` with "connection reset by peer").
    DropConnections {
        /// Registrar index.
        registrar: usize,
        /// An RST rather than a FIN.
        reset: bool,
    },
}

/// The core settings a scenario controls (a serializable mirror of `sip_core::Config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreKnobs {
    /// `Config::sync_interval`.
    pub sync_interval: Option<Duration>,
    /// `Config::register_rate`.
    pub register_rate: u32,
    /// `Config::backend_timeout`.
    pub backend_timeout: Duration,
    /// `Config::retry_initial`.
    pub retry_initial: Duration,
    /// `Config::retry_cap`.
    pub retry_cap: Duration,
    /// `Config::rejected_retry_initial`.
    pub rejected_retry_initial: Duration,
    /// `Config::rejected_retry_cap`.
    pub rejected_retry_cap: Duration,
    /// `Config::backend_retry_initial`.
    pub backend_retry_initial: Duration,
    /// `Config::backend_retry_cap`.
    pub backend_retry_cap: Duration,
    /// `Config::max_reports_in_flight`.
    pub max_reports_in_flight: usize,
    /// `Config::max_retry_after`.
    pub max_retry_after: Duration,
    /// `Config::streams.keepalive`: CRLFCRLF pings on the core's connections (RFC 5626
    /// §4.4.1; the registrar models answer them).
    #[serde(default)]
    pub keepalive: Option<Duration>,
    /// The call settings.
    #[serde(default)]
    pub calls: CallKnobs,
}

impl Default for CoreKnobs {
    fn default() -> Self {
        let c = Config::default();
        Self {
            sync_interval: c.sync_interval,
            register_rate: c.register_rate,
            backend_timeout: c.backend_timeout,
            retry_initial: c.retry_initial,
            retry_cap: c.retry_cap,
            rejected_retry_initial: c.rejected_retry_initial,
            rejected_retry_cap: c.rejected_retry_cap,
            backend_retry_initial: c.backend_retry_initial,
            backend_retry_cap: c.backend_retry_cap,
            max_reports_in_flight: c.max_reports_in_flight,
            max_retry_after: c.max_retry_after,
            keepalive: c.streams.keepalive,
            calls: CallKnobs::default(),
        }
    }
}

impl CoreKnobs {
    /// The core configuration for a run.
    pub fn to_config(&self) -> Config {
        let calls = CallSettings {
            ring_timeout: self.calls.ring_timeout,
            max_duration: self.calls.max_duration,
            destination_auth: Some(DigestCredentials {
                username: LIVEKIT_USERNAME.to_owned(),
                password: LIVEKIT_PASSWORD.to_owned().into(),
            }),
            ..CallSettings::default()
        };
        Config {
            calls,
            local_port: CORE_ADDR.port(),
            contact_host: None,
            sync_interval: self.sync_interval,
            register_rate: self.register_rate,
            backend_timeout: self.backend_timeout,
            retry_initial: self.retry_initial,
            retry_cap: self.retry_cap,
            rejected_retry_initial: self.rejected_retry_initial,
            rejected_retry_cap: self.rejected_retry_cap,
            backend_retry_initial: self.backend_retry_initial,
            backend_retry_cap: self.backend_retry_cap,
            max_reports_in_flight: self.max_reports_in_flight,
            max_retry_after: self.max_retry_after,
            streams: sip_core::connections::StreamLimits {
                keepalive: self.keepalive,
                ..Config::default().streams
            },
            ..Config::default()
        }
    }
}

/// The address of registrar `index`.
pub fn registrar_addr(index: usize) -> SocketAddr {
    let hi = u8::try_from(index / 250).unwrap_or(u8::MAX);
    let lo = u8::try_from(index % 250 + 1).unwrap_or(1);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo)), 5060)
}

/// The host name of registrar `index`.
pub fn registrar_host(index: usize) -> String {
    format!("reg-{index}.sim.test")
}

/// The display name of registrar `index` in traces.
pub fn registrar_name(index: usize) -> String {
    format!("reg-{index}")
}

impl ProviderDef {
    /// A valid, enabled, listed account on `registrar` with the right password.
    pub fn new(index: usize, registrar: usize) -> Self {
        Self {
            id: format!("p{index}"),
            registrar,
            username: format!("u{index}"),
            password: format!("{PASSWORD_MARKER}{index}-Secret"),
            wrong_password: false,
            expires: Some(3600),
            enabled: true,
            defect: None,
            listed: true,
            transport: SipTransport::Udp,
        }
    }

    /// The transport it registers over ([`Defect::Tls`] is TLS too).
    pub fn sip_transport(&self) -> SipTransport {
        match self.defect {
            Some(Defect::Tls) => SipTransport::Tls,
            _ => self.transport,
        }
    }

    /// The password the backend serves now.
    pub fn served_password(&self) -> String {
        if self.wrong_password {
            format!("{}-wrong", self.password)
        } else {
            self.password.clone()
        }
    }

    /// The entry as the backend serves it.
    pub fn spec(&self, registrars: &[RegistrarDef]) -> ProviderSpec {
        let by_name = registrars.get(self.registrar).is_some_and(|r| r.by_name);
        let host = if by_name {
            registrar_host(self.registrar)
        } else {
            registrar_addr(self.registrar).ip().to_string()
        };
        let mut spec = ProviderSpec {
            id: self.id.clone(),
            name: format!("Provider {}", self.id),
            host,
            port: Some(5060),
            transport: Some(
                match self.sip_transport() {
                    SipTransport::Udp => "SIP_TRANSPORT_UDP",
                    SipTransport::Tcp => "SIP_TRANSPORT_TCP",
                    SipTransport::Tls => "SIP_TRANSPORT_TLS",
                }
                .to_owned(),
            ),
            username: self.username.clone(),
            password: self.served_password().into(),
            expires: self.expires,
            enabled: Some(self.enabled),
            ..ProviderSpec::default()
        };
        match self.defect {
            None => {}
            Some(Defect::BadPort) => spec.port = Some(70000),
            Some(Defect::Tls) => {}
            Some(Defect::ControlCharacter) => {
                spec.username = format!("{}\r\nX-Injected: 1", self.username);
            }
        }
        spec
    }
}

impl Scenario {
    /// An empty scenario: no registrars or providers yet, no faults, healthy LAN links,
    /// heal at 10 minutes, computed convergence, no shutdown phase.
    pub fn new(name: &str, seed: u64) -> Self {
        Self {
            name: name.to_owned(),
            seed,
            registrars: Vec::new(),
            providers: Vec::new(),
            backend_link: LinkConfig::lan(),
            faults: Vec::new(),
            heal_at: Duration::from_secs(600),
            converge_for: None,
            shutdown_grace: None,
            core: CoreKnobs::default(),
            livekits: Vec::new(),
            calls: Vec::new(),
            routing: CallRouting::default(),
        }
    }

    /// Adds a registrar; returns its index.
    pub fn add_registrar(&mut self, config: RegistrarConfig, link: LinkConfig) -> usize {
        self.registrars.push(RegistrarDef {
            config,
            link,
            by_name: true,
        });
        self.registrars.len() - 1
    }

    /// Adds a valid account on `registrar`; returns its index (edit the returned index's
    /// entry in `providers` for anything else).
    pub fn add_provider(&mut self, registrar: usize) -> usize {
        let index = self.providers.len();
        self.providers.push(ProviderDef::new(index + 1, registrar));
        index
    }

    /// Schedules a fault.
    pub fn at(&mut self, at: Duration, fault: Fault) -> &mut Self {
        self.faults.push(Scheduled { at, fault });
        self
    }

    /// Per provider, every registrar it is served with during the run: its own, and each
    /// one the schedule moves it to (indexes wrap as the runner wraps them).
    pub fn registrars_by_provider(&self) -> Vec<BTreeSet<usize>> {
        let mut out: Vec<BTreeSet<usize>> = self
            .providers
            .iter()
            .map(|p| BTreeSet::from([p.registrar]))
            .collect();
        let n_providers = self.providers.len().max(1);
        let n_registrars = self.registrars.len().max(1);
        for s in &self.faults {
            if let Fault::Provider {
                provider,
                change: ProviderChange::Registrar(r),
            } = s.fault
            {
                if let Some(set) = out.get_mut(provider % n_providers) {
                    set.insert(r % n_registrars);
                }
            }
        }
        out
    }

    /// The (transport, registrar index) pairs some TCP or TLS provider is served by at
    /// some point of the run: the connections the core may hold open at once are
    /// bounded by their number.
    pub fn stream_targets(&self) -> BTreeSet<(SipTransport, usize)> {
        self.providers
            .iter()
            .zip(self.registrars_by_provider())
            .filter(|(p, _)| p.sip_transport().is_stream())
            .flat_map(|(p, regs)| regs.into_iter().map(|r| (p.sip_transport(), r)))
            .collect()
    }

    /// The longest binding any registrar of this scenario can grant.
    pub fn max_grant(&self) -> Duration {
        let asked = self
            .providers
            .iter()
            .map(|p| p.expires.unwrap_or(3600).clamp(1, i64::from(u32::MAX)))
            .max()
            .unwrap_or(3600);
        let most = self
            .registrars
            .iter()
            .map(|r| {
                let asked = u32::try_from(asked).unwrap_or(u32::MAX);
                asked
                    .max(r.config.min_expires.unwrap_or(0))
                    .min(r.config.max_expires)
            })
            .max()
            .unwrap_or(3600);
        Duration::from_secs(u64::from(most))
    }

    /// The liveness phase's length: the longest wait the core may be in when faults end
    /// (a capped backoff or `Retry-After`), a resync, two of the longest grants (so
    /// stale bindings lapse and a refresh happens), and a margin.
    pub fn convergence(&self) -> Duration {
        if let Some(d) = self.converge_for {
            return d;
        }
        let k = &self.core;
        let longest_wait = k
            .rejected_retry_cap
            .max(k.retry_cap)
            .max(k.max_retry_after.min(self.longest_retry_after()))
            .max(k.backend_retry_cap);
        let calls = if self.calls.is_empty() {
            Duration::ZERO
        } else {
            // A call placed just before the heal rings, lasts at most `max_duration`, and
            // its last transactions absorb stragglers for 64·T1.
            k.calls.ring_timeout + k.calls.max_duration + Duration::from_secs(120)
        };
        (longest_wait
            + k.sync_interval.unwrap_or(Duration::ZERO)
            + self.max_grant() * 2
            + Duration::from_secs(300))
        .max(calls)
    }

    /// The core's fixed routes and default domain for this scenario's routing.
    pub fn route_config(&self) -> (BTreeMap<String, String>, Option<String>) {
        let n = self.livekits.len();
        let fixed = self
            .routing
            .fixed
            .iter()
            .filter(|(_, lk)| *lk < n)
            .map(|(did, lk)| (did.clone(), format!("sip:{did}@{}", livekit_addr(*lk))))
            .collect();
        let domain = self
            .routing
            .default_livekit
            .filter(|lk| *lk < n)
            .map(|lk| format!("{}:{}", livekit_host(lk), livekit_addr(lk).port()));
        (fixed, domain)
    }

    fn longest_retry_after(&self) -> Duration {
        let secs = self
            .faults
            .iter()
            .filter_map(|s| match &s.fault {
                Fault::Registrar {
                    mode:
                        Mode::Reject {
                            retry_after: Some(r),
                            ..
                        },
                    ..
                } => Some(*r),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Duration::from_secs(u64::from(secs))
    }
}

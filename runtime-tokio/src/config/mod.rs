//! trunkline's configuration: command-line flags > environment variables > config file
//! (`--config FILE` or `TRUNKLINE_CONFIG`) > defaults (CONTRACT.md §2).
//!
//! Every setting is resolved the same way: the first source that has a non-empty value
//! wins, and that value is checked by one parser whatever its source, so an error names
//! the key as the user wrote it (flag, variable or config key) together with its other
//! names. An empty value (`SIP_PUBLIC_ADDRESS=`) counts as unset, as it did for the
//! Node.js deployment trunkline replaces. Relative paths are relative to the working
//! directory, not to the config file.

mod calls;
mod error;
mod file;
mod keys;
mod parse;
mod redact;
#[cfg(test)]
mod tests;

pub use error::ConfigError;

use crate::cli::Cli;
use keys::{Key, Origin};
use sip_core::provider::ProviderSpec;
use sip_core::secret::Secret;
use sip_core::CallSettings;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `Some` when `BACKEND_URL`/`backend.url` is set: backend mode, providers come from
    /// the backend. `None`: file mode, providers come from `[[providers]]`.
    pub backend: Option<BackendSettings>,
    /// SIP transport settings.
    pub sip: SipSettings,
    /// Name resolution (CONTRACT.md §7).
    pub dns: DnsSettings,
    /// Where inbound calls go.
    pub routing: RoutingSettings,
    /// Media anchoring.
    pub media: MediaSettings,
    /// The admin HTTP API.
    pub admin: AdminSettings,
    /// Logging.
    pub log: LogSettings,
    /// Where file mode persists status.
    pub status: StatusSettings,
    /// How long a graceful shutdown may take (`shutdown_grace`, `SHUTDOWN_GRACE`).
    pub shutdown_grace: Duration,
    /// Inbound calls (CONTRACT.md §6): admission (`sip.allowed_sources`,
    /// `sip.reject_unknown`), the destination's credentials (`routing.auth_username`,
    /// `routing.auth_password`) and the `[calls]` limits and timers, as the core takes them.
    pub calls: CallSettings,
    /// `[[providers]]` from the config file (file mode), as written: sip-core validates
    /// each one and reports a bad one as failed without stopping the others.
    pub providers: Vec<ProviderSpec>,
    /// The config file, if one was given: file mode re-reads its `[[providers]]` on a
    /// sync (`POST /api/sync`).
    pub config_file: Option<PathBuf>,
}

/// Backend mode: the backend API trunkline fetches providers from and reports to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSettings {
    /// Base URL (`BACKEND_URL`, `backend.url`): http(s), no trailing slash.
    pub url: String,
    /// Sent as `x-api-key` (`API_KEY`, `backend.api_key`).
    pub api_key: Secret,
    /// Provider-list resync period (`SYNC_INTERVAL`, `backend.sync_interval`).
    pub sync_interval: Duration,
    /// Timeout of each backend request (`BACKEND_TIMEOUT`, `backend.request_timeout`).
    pub request_timeout: Duration,
}

/// The PEM files of TLS (`SIP_TLS_*`, `[sip.tls]`): the listener's certificate chain
/// and key (the listener is on only with both), and extra CA certificates for peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `SIP_TLS_CERT_FILE`, `sip.tls.cert_file`.
    pub cert_file: Option<PathBuf>,
    /// `SIP_TLS_KEY_FILE`, `sip.tls.key_file` (its contents are never logged).
    pub key_file: Option<PathBuf>,
    /// `SIP_TLS_CA_FILE`, `sip.tls.ca_file`.
    pub ca_file: Option<PathBuf>,
}

/// SIP transport settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSettings {
    /// Bind address (`SIP_LISTEN_ADDRESS`, `sip.listen_address`, `--sip-listen-address`).
    pub listen_address: IpAddr,
    /// UDP and TCP port (`SIP_PORT`, `sip.port`, `--sip-port`).
    pub port: u16,
    /// TLS port (`SIP_TLS_PORT`, `sip.tls_port`).
    pub tls_port: u16,
    /// TLS files (CONTRACT.md §7).
    pub tls: TlsFiles,
    /// Keep-alive interval (`SIP_KEEPALIVE_INTERVAL`, `sip.keepalive_interval`): CRLF
    /// pings on our TCP/TLS connections, OPTIONS to UDP registrars; `None` (`0`): off.
    pub keepalive_interval: Option<Duration>,
    /// Host written in Contact and Via (`SIP_PUBLIC_ADDRESS`, `sip.public_address`);
    /// `None`: learned.
    pub public_address: Option<String>,
    /// Receive/send buffer size of the SIP socket (`SIP_SOCKET_BUFFER`, `sip.socket_buffer`).
    pub socket_buffer_bytes: usize,
    /// New REGISTER transactions per second (`REGISTER_RATE`, `sip.register_rate`), > 0.
    pub register_rate: u32,
    /// The `User-Agent` header (`SIP_USER_AGENT`, `sip.user_agent`).
    pub user_agent: String,
}

/// Name resolution for RFC 3263 look-ups (CONTRACT.md §7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsSettings {
    /// The one DNS server to ask (`DNS_SERVER`, `dns.server`; `ip` means port 53);
    /// `None`: the system's resolver configuration (`/etc/resolv.conf`, `/etc/hosts`).
    pub server: Option<SocketAddr>,
}

/// Where inbound calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingSettings {
    /// Default destination domain: `sip:{did}@{domain}` (`LIVEKIT_SIP_DOMAIN`,
    /// `routing.default_domain`).
    pub default_domain: Option<String>,
    /// Per-DID destinations (`[routing.dids]`), DID → SIP URI.
    pub dids: BTreeMap<String, String>,
    /// How long a call waits for `GET /api/sip/destination/{did}` before it takes the
    /// default destination (`ROUTE_LOOKUP_TIMEOUT`, `routing.lookup_timeout`).
    pub lookup_timeout: Duration,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            default_domain: None,
            dids: BTreeMap::new(),
            lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
        }
    }
}

/// Media anchoring.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaSettings {
    /// rtpengine ng control address `host:port` (`RTP_ENGINE`, `media.rtpengine`);
    /// `None`: no media anchoring.
    pub rtpengine: Option<String>,
}

/// The admin HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Listen address (`ADMIN_LISTEN`, `admin.listen`, `--admin-listen`).
    pub listen: SocketAddr,
    /// Bearer token required on mutating calls (`ADMIN_TOKEN`, `admin.token`).
    pub token: Option<Secret>,
}

/// Logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogSettings {
    /// Level (`LOG_LEVEL`, `log.level`, `--log-level`).
    pub level: LogLevel,
    /// Format (`LOG_FORMAT`, `log.format`, `--log-format`); `None`: JSON when stdout is
    /// not a terminal, pretty otherwise.
    pub format: Option<LogFormat>,
}

/// Log level. Pino numbers map onto it: 10 trace, 20 debug, 30 info, 40 warn, 50 error,
/// 60 (fatal) error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation (default).
    #[default]
    Info,
    /// Something an operator may want to look at.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, pino field names.
    Json,
    /// Human-readable lines.
    Pretty,
}

impl LogFormat {
    /// `json` or `pretty`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Pretty => "pretty",
        }
    }
}

/// Where file mode persists status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSettings {
    /// Status of every provider (`STATUS_FILE`, `status.file`).
    pub file: PathBuf,
    /// Optional state kept across restarts (`STATE_FILE`, `status.state_file`).
    pub state_file: Option<PathBuf>,
}

/// Default resync period.
const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(300);
/// Default backend request timeout.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Default wait for a call's destination: the caller hears nothing meanwhile.
const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Default graceful-shutdown bound.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// CONTRACT.md §7's default keep-alive interval.
const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// A keep-alive once an hour keeps no NAT binding open; longer is a mistake.
const KEEPALIVE_INTERVAL_MAX: Duration = Duration::from_secs(3600);
/// Default SIP socket buffer: room for a burst of thousands of REGISTER answers.
const DEFAULT_SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Default REGISTER pacing.
const DEFAULT_REGISTER_RATE: u32 = 200;
/// Default admin listen address: loopback, so the API is not exposed by accident.
const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Default status file.
const DEFAULT_STATUS_FILE: &str = "trunkline-status.json";

// Bounds keep values within what the timers and sockets can represent without
// overflowing, and catch unit mistakes (`SYNC_INTERVAL=300000` meant as milliseconds).
const SYNC_INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(86_400));
const REQUEST_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(600));
// A caller waits in silence for the lookup; past 30 s the provider gives up on the call.
const LOOKUP_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(30));
const SHUTDOWN_GRACE_RANGE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(3600));
const SOCKET_BUFFER_RANGE: (usize, usize) = (1024, 1 << 30);
const REGISTER_RATE_MAX: u64 = 1_000_000;

impl Default for Settings {
    /// File mode with no providers and every default of CONTRACT.md §2.
    fn default() -> Self {
        Self {
            backend: None,
            sip: SipSettings::default(),
            dns: DnsSettings::default(),
            routing: RoutingSettings::default(),
            media: MediaSettings::default(),
            admin: AdminSettings::default(),
            log: LogSettings::default(),
            status: StatusSettings::default(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            calls: CallSettings::default(),
            providers: Vec::new(),
            config_file: None,
        }
    }
}

impl Default for SipSettings {
    fn default() -> Self {
        Self {
            listen_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 5060,
            tls_port: 5061,
            tls: TlsFiles::default(),
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            public_address: None,
            socket_buffer_bytes: DEFAULT_SOCKET_BUFFER,
            register_rate: DEFAULT_REGISTER_RATE,
            user_agent: concat!("trunkline/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_ADMIN_LISTEN,
            token: None,
        }
    }
}

impl Default for StatusSettings {
    fn default() -> Self {
        Self {
            file: PathBuf::from(DEFAULT_STATUS_FILE),
            state_file: None,
        }
    }
}

impl AdminSettings {
    /// The URL a local client (`trunkline status`) reaches the admin API at: the listen
    /// address, with a wildcard address (`0.0.0.0`, `::`) replaced by loopback.
    pub fn local_url(&self) -> String {
        let ip = match self.listen.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.listen.port()))
    }
}

impl Settings {
    /// The effective configuration as TOML, secrets shown as `<redacted>`: what
    /// `trunkline check-config` prints. Parsing it back as a config file gives the same
    /// settings, secrets aside.
    pub fn redacted_toml(&self) -> String {
        redact::redacted_toml(self)
    }
}

/// Loads the configuration from the command line, the process environment and the
/// config file.
pub fn load(cli: &Cli) -> Result<Settings, ConfigError> {
    // Lossy conversion: a non-UTF-8 value then fails its parser with a message naming
    // the variable, rather than being silently ignored.
    load_from(cli, &|name| {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    })
}

/// [`load`] with the environment given as a lookup function, for tests.
pub fn load_from(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
    let config_path = cli
        .config
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
        .or_else(|| {
            env("TRUNKLINE_CONFIG")
                .filter(|s| !s.trim().is_empty())
                .map(PathBuf::from)
        });
    let file = config_path.map(|p| file::read(&p)).transpose()?;
    resolve(cli, env, file)
}

/// Applies precedence and checks every value.
fn resolve(
    cli: &Cli,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<file::FileConfig>,
) -> Result<Settings, ConfigError> {
    let flags: BTreeMap<&'static str, &str> = [
        (keys::LOG_LEVEL, &cli.log_level),
        (keys::LOG_FORMAT, &cli.log_format),
        (keys::SIP_PORT, &cli.sip_port),
        (keys::SIP_LISTEN_ADDRESS, &cli.sip_listen_address),
        (keys::ADMIN_LISTEN, &cli.admin_listen),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.file, value.as_deref()?)))
    .collect();
    let r = Resolver {
        flags,
        env,
        file: file.as_ref(),
    };

    let backend_url = r.backend_url()?;
    let api_key = r.secret(keys::API_KEY)?;
    let (min, max) = SYNC_INTERVAL_RANGE;
    let sync_interval = r
        .parse(keys::SYNC_INTERVAL, |t| parse::duration(t, min, max))?
        .unwrap_or(DEFAULT_SYNC_INTERVAL);
    let (min, max) = REQUEST_TIMEOUT_RANGE;
    let request_timeout = r
        .parse(keys::BACKEND_TIMEOUT, |t| parse::duration(t, min, max))?
        .unwrap_or(DEFAULT_REQUEST_TIMEOUT);
    let backend = match backend_url {
        Some(url) => Some(BackendSettings {
            url,
            api_key: api_key.ok_or(ConfigError::MissingApiKey)?,
            sync_interval,
            request_timeout,
        }),
        None => None,
    };
    if let (Some(_), Some(f)) = (&backend, &file) {
        if !f.providers.is_empty() {
            return Err(ConfigError::ProvidersInBackendMode {
                path: f.path.clone(),
            });
        }
    }

    let defaults = SipSettings::default();
    let (min_buf, max_buf) = SOCKET_BUFFER_RANGE;
    let sip = SipSettings {
        listen_address: r
            .parse(keys::SIP_LISTEN_ADDRESS, parse::ip_addr)?
            .unwrap_or(defaults.listen_address),
        port: r
            .parse(keys::SIP_PORT, parse::port)?
            .unwrap_or(defaults.port),
        tls_port: r
            .parse(keys::SIP_TLS_PORT, parse::port)?
            .unwrap_or(defaults.tls_port),
        keepalive_interval: match r.parse(keys::SIP_KEEPALIVE_INTERVAL, |t| {
            parse::duration(t, Duration::ZERO, KEEPALIVE_INTERVAL_MAX)
        })? {
            None => defaults.keepalive_interval,
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        },
        tls: TlsFiles {
            cert_file: r.parse(keys::SIP_TLS_CERT_FILE, parse::path)?,
            key_file: r.parse(keys::SIP_TLS_KEY_FILE, parse::path)?,
            ca_file: r.parse(keys::SIP_TLS_CA_FILE, parse::path)?,
        },
        public_address: r.parse(keys::SIP_PUBLIC_ADDRESS, parse::host)?,
        socket_buffer_bytes: r
            .parse(keys::SIP_SOCKET_BUFFER, |t| {
                parse::bytes(t, min_buf, max_buf)
            })?
            .unwrap_or(defaults.socket_buffer_bytes),
        register_rate: r
            .parse(keys::REGISTER_RATE, |t| {
                parse::number_in(t, 1, REGISTER_RATE_MAX, "REGISTERs per second")
                    .and_then(|n| u32::try_from(n).map_err(|e| e.to_string()))
            })?
            .unwrap_or(defaults.register_rate),
        user_agent: r
            .parse(keys::SIP_USER_AGENT, parse::header_text)?
            .unwrap_or(defaults.user_agent),
    };

    let dns = DnsSettings {
        server: r.parse(keys::DNS_SERVER, parse::dns_server)?,
    };
    let (min, max) = LOOKUP_TIMEOUT_RANGE;
    let routing = RoutingSettings {
        default_domain: r.parse(keys::DEFAULT_DOMAIN, parse::domain)?,
        dids: file.as_ref().map(|f| f.dids.clone()).unwrap_or_default(),
        lookup_timeout: r
            .parse(keys::ROUTE_LOOKUP_TIMEOUT, |t| parse::duration(t, min, max))?
            .unwrap_or(DEFAULT_LOOKUP_TIMEOUT),
    };
    let media = MediaSettings {
        rtpengine: r.parse(keys::RTP_ENGINE, parse::host_port)?,
    };
    let admin = AdminSettings {
        listen: r
            .parse(keys::ADMIN_LISTEN, parse::socket_addr)?
            .unwrap_or(DEFAULT_ADMIN_LISTEN),
        token: r.secret(keys::ADMIN_TOKEN)?,
    };
    let log = LogSettings {
        level: r
            .parse(keys::LOG_LEVEL, parse::log_level)?
            .unwrap_or_default(),
        format: r.parse(keys::LOG_FORMAT, parse::log_format)?.flatten(),
    };
    let status = StatusSettings {
        file: r
            .parse(keys::STATUS_FILE, parse::path)?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATUS_FILE)),
        state_file: r.parse(keys::STATE_FILE, parse::path)?,
    };
    let (min, max) = SHUTDOWN_GRACE_RANGE;
    let shutdown_grace = r
        .parse(keys::SHUTDOWN_GRACE, |t| parse::duration(t, min, max))?
        .unwrap_or(DEFAULT_SHUTDOWN_GRACE);
    let calls = calls::resolve(&r)?;

    Ok(Settings {
        backend,
        sip,
        dns,
        routing,
        media,
        admin,
        log,
        status,
        shutdown_grace,
        calls,
        config_file: file.as_ref().map(|f| f.path.clone()),
        providers: file.map(|f| f.providers).unwrap_or_default(),
    })
}

/// Re-reads the `[[providers]]` of a config file (file mode's sync). The rest of the
/// file is checked as at start but not applied: other settings need a restart.
pub fn reload_providers(path: &std::path::Path) -> Result<Vec<ProviderSpec>, ConfigError> {
    file::read(path).map(|f| f.providers)
}

/// A value and where it came from.
struct Raw {
    text: String,
    origin: Origin,
}

/// Looks a setting up in the sources, highest precedence first.
struct Resolver<'a> {
    /// Flag values by config-file key.
    flags: BTreeMap<&'static str, &'a str>,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: Option<&'a file::FileConfig>,
}

impl Resolver<'_> {
    /// The first non-empty value for `key` from a flag or the environment: the sources
    /// above the config file.
    fn above_file(&self, key: Key) -> Option<Raw> {
        if let Some(text) = self.flags.get(key.file).filter(|t| !t.trim().is_empty()) {
            return Some(Raw {
                text: (*text).to_owned(),
                origin: Origin::Flag,
            });
        }
        key.env
            .and_then(|name| (self.env)(name))
            .filter(|t| !t.trim().is_empty())
            .map(|text| Raw {
                text,
                origin: Origin::Env,
            })
    }

    /// The first non-empty value for `key`: flag, then environment, then file. `secret`
    /// keeps a file value of the wrong TOML type out of the message.
    fn raw(&self, key: Key, secret: bool) -> Result<Option<Raw>, ConfigError> {
        if let Some(raw) = self.above_file(key) {
            return Ok(Some(raw));
        }
        let Some(file) = self.file else {
            return Ok(None);
        };
        let Some(value) = file.values.get(key.file) else {
            return Ok(None);
        };
        // Numbers and booleans are accepted as their text so that `port = 5060` and
        // `port = "5060"` both work, like the environment variable would.
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) if !secret => n.to_string(),
            toml::Value::Float(f) if !secret => f.to_string(),
            toml::Value::Boolean(b) if !secret => b.to_string(),
            other => {
                let expected = if secret {
                    "a string"
                } else {
                    "a single value (string or number)"
                };
                return Err(file::wrong_type(
                    &file.path,
                    key.file.to_owned(),
                    other,
                    expected,
                    !secret,
                ));
            }
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(Raw {
            text,
            origin: Origin::File(file.path.clone()),
        }))
    }

    /// The value of `key` checked by `parser`; `None` when no source sets it.
    fn parse<T>(
        &self,
        key: Key,
        parser: impl FnOnce(&str) -> Result<T, parse::Expected>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = self.raw(key, false)? else {
            return Ok(None);
        };
        parser(&raw.text)
            .map(Some)
            .map_err(|expected| ConfigError::Invalid {
                names: key.names(&raw.origin),
                origin: raw.origin.describe(),
                value: quote(&raw.text),
                expected,
            })
    }

    /// A secret: trimmed (a trailing newline from a secrets file is never meant), never
    /// shown in a message.
    fn secret(&self, key: Key) -> Result<Option<Secret>, ConfigError> {
        let Some(raw) = self.raw(key, true)? else {
            return Ok(None);
        };
        let value = raw.text.trim();
        if value.chars().any(char::is_control) {
            return Err(ConfigError::InvalidSecret {
                names: key.names(&raw.origin),
                origin: raw.origin.describe(),
                problem: "contains a control character (a stray line break?); it is never \
                          meant in a key or password, so remove it"
                    .to_owned(),
            });
        }
        Ok(Some(Secret::new(value)))
    }

    /// A list setting: comma-separated in a flag or the environment; in the file, a
    /// TOML array of strings or one comma-separated string. Empty entries (a trailing
    /// comma) are skipped; a list with no entries counts as unset. Each entry is checked
    /// by `parser`, and an error names the entry by its position; `entry` says what a
    /// file entry of the wrong TOML type should have been.
    fn list<T>(
        &self,
        key: Key,
        entry: &str,
        parser: impl Fn(&str) -> Result<T, parse::Expected>,
    ) -> Result<Option<Vec<T>>, ConfigError> {
        let array = self
            .file
            .filter(|_| self.above_file(key).is_none())
            .and_then(|f| match f.values.get(key.file) {
                Some(toml::Value::Array(items)) => Some((f, items)),
                _ => None,
            });
        let (entries, origin) = match array {
            Some((file, items)) => {
                let entries = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        toml::Value::String(s) => Ok(s.clone()),
                        other => Err(file::wrong_type(
                            &file.path,
                            format!("{}[{i}]", key.file),
                            other,
                            entry,
                            true,
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (entries, Origin::File(file.path.clone()))
            }
            None => match self.raw(key, false)? {
                Some(raw) => (raw.text.split(',').map(str::to_owned).collect(), raw.origin),
                None => return Ok(None),
            },
        };
        let entries: Vec<&str> = entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(None);
        }
        let count = entries.len();
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                parser(entry).map_err(|expected| ConfigError::Invalid {
                    names: format!("{}, entry {} of {count},", key.names(&origin), i + 1),
                    origin: origin.describe(),
                    value: quote(entry),
                    expected,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// `BACKEND_URL`, without repeating a URL that has credentials in it.
    fn backend_url(&self) -> Result<Option<String>, ConfigError> {
        let key = keys::BACKEND_URL;
        if let Some(raw) = self.raw(key, false)? {
            if parse::url_has_credentials(&raw.text) {
                return Err(ConfigError::InvalidSecret {
                    names: key.names(&raw.origin),
                    origin: raw.origin.describe(),
                    problem: "contains a user name or password: remove them from the URL \
                              and put the backend's key in API_KEY (backend.api_key)"
                        .to_owned(),
                });
            }
        }
        self.parse(key, parse::backend_url)
    }
}

/// A value quoted for a message, cut short when long.
fn quote(text: &str) -> String {
    const MAX: usize = 100;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}…")
    } else {
        format!("{text:?}")
    }
}

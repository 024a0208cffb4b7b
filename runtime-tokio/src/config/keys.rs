//! Every setting's three names: config-file key, environment variable, command-line flag.
//! Error messages are built from this table so that each one names the key the user
//! actually touched and the other ways to set it.

/// The names of one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Dotted config-file key, e.g. `sip.port`.
    pub file: &'static str,
    /// Environment variable, e.g. `SIP_PORT`.
    pub env: Option<&'static str>,
    /// Command-line flag, e.g. `--sip-port`.
    pub flag: Option<&'static str>,
}

const fn key(file: &'static str, env: Option<&'static str>, flag: Option<&'static str>) -> Key {
    Key { file, env, flag }
}

pub(crate) const BACKEND_URL: Key = key("backend.url", Some("BACKEND_URL"), None);
pub(crate) const API_KEY: Key = key("backend.api_key", Some("API_KEY"), None);
pub(crate) const SYNC_INTERVAL: Key = key("backend.sync_interval", Some("SYNC_INTERVAL"), None);
pub(crate) const BACKEND_TIMEOUT: Key =
    key("backend.request_timeout", Some("BACKEND_TIMEOUT"), None);
pub(crate) const SIP_LISTEN_ADDRESS: Key = key(
    "sip.listen_address",
    Some("SIP_LISTEN_ADDRESS"),
    Some("--sip-listen-address"),
);
pub(crate) const SIP_PORT: Key = key("sip.port", Some("SIP_PORT"), Some("--sip-port"));
pub(crate) const SIP_TLS_PORT: Key = key("sip.tls_port", Some("SIP_TLS_PORT"), None);
pub(crate) const SIP_TLS_CERT_FILE: Key = key("sip.tls.cert_file", Some("SIP_TLS_CERT_FILE"), None);
pub(crate) const SIP_TLS_KEY_FILE: Key = key("sip.tls.key_file", Some("SIP_TLS_KEY_FILE"), None);
pub(crate) const SIP_TLS_CA_FILE: Key = key("sip.tls.ca_file", Some("SIP_TLS_CA_FILE"), None);
pub(crate) const SIP_KEEPALIVE_INTERVAL: Key = key(
    "sip.keepalive_interval",
    Some("SIP_KEEPALIVE_INTERVAL"),
    None,
);
pub(crate) const DNS_SERVER: Key = key("dns.server", Some("DNS_SERVER"), None);
pub(crate) const SIP_PUBLIC_ADDRESS: Key =
    key("sip.public_address", Some("SIP_PUBLIC_ADDRESS"), None);
pub(crate) const SIP_SOCKET_BUFFER: Key = key("sip.socket_buffer", Some("SIP_SOCKET_BUFFER"), None);
pub(crate) const REGISTER_RATE: Key = key("sip.register_rate", Some("REGISTER_RATE"), None);
pub(crate) const SIP_USER_AGENT: Key = key("sip.user_agent", Some("SIP_USER_AGENT"), None);
pub(crate) const DEFAULT_DOMAIN: Key =
    key("routing.default_domain", Some("LIVEKIT_SIP_DOMAIN"), None);
pub(crate) const ROUTE_LOOKUP_TIMEOUT: Key =
    key("routing.lookup_timeout", Some("ROUTE_LOOKUP_TIMEOUT"), None);
pub(crate) const RTP_ENGINE: Key = key("media.rtpengine", Some("RTP_ENGINE"), None);
pub(crate) const ADMIN_LISTEN: Key =
    key("admin.listen", Some("ADMIN_LISTEN"), Some("--admin-listen"));
pub(crate) const ADMIN_TOKEN: Key = key("admin.token", Some("ADMIN_TOKEN"), None);
pub(crate) const LOG_LEVEL: Key = key("log.level", Some("LOG_LEVEL"), Some("--log-level"));
pub(crate) const LOG_FORMAT: Key = key("log.format", Some("LOG_FORMAT"), Some("--log-format"));
pub(crate) const STATUS_FILE: Key = key("status.file", Some("STATUS_FILE"), None);
pub(crate) const STATE_FILE: Key = key("status.state_file", Some("STATE_FILE"), None);
pub(crate) const SHUTDOWN_GRACE: Key = key("shutdown_grace", Some("SHUTDOWN_GRACE"), None);
// Inbound calls (CONTRACT.md §6), plus the per-provider limit, which extends it.
pub(crate) const SIP_ALLOWED_SOURCES: Key =
    key("sip.allowed_sources", Some("SIP_ALLOWED_SOURCES"), None);
pub(crate) const SIP_REJECT_UNKNOWN: Key =
    key("sip.reject_unknown", Some("SIP_REJECT_UNKNOWN"), None);
pub(crate) const ROUTING_AUTH_USERNAME: Key =
    key("routing.auth_username", Some("LIVEKIT_SIP_USERNAME"), None);
pub(crate) const ROUTING_AUTH_PASSWORD: Key =
    key("routing.auth_password", Some("LIVEKIT_SIP_PASSWORD"), None);
pub(crate) const CALL_RING_TIMEOUT: Key =
    key("calls.ring_timeout", Some("CALL_RING_TIMEOUT"), None);
pub(crate) const CALL_MAX_DURATION: Key =
    key("calls.max_duration", Some("CALL_MAX_DURATION"), None);
pub(crate) const MAX_CALLS: Key = key("calls.max_calls", Some("MAX_CALLS"), None);
pub(crate) const MAX_CALLS_PER_PROVIDER: Key = key(
    "calls.max_calls_per_provider",
    Some("MAX_CALLS_PER_PROVIDER"),
    None,
);
pub(crate) const CALL_DRAIN: Key = key("calls.drain", Some("CALL_DRAIN"), None);

/// The config-file key of the DID table; it has no environment variable.
pub(crate) const ROUTING_DIDS: &str = "routing.dids";

/// Every setting read by [`crate::config`]: scalars, and `sip.allowed_sources`, a list.
pub(crate) const ALL: &[Key] = &[
    BACKEND_URL,
    API_KEY,
    SYNC_INTERVAL,
    BACKEND_TIMEOUT,
    SIP_LISTEN_ADDRESS,
    SIP_PORT,
    SIP_TLS_PORT,
    SIP_TLS_CERT_FILE,
    SIP_TLS_KEY_FILE,
    SIP_TLS_CA_FILE,
    SIP_KEEPALIVE_INTERVAL,
    DNS_SERVER,
    SIP_PUBLIC_ADDRESS,
    SIP_SOCKET_BUFFER,
    REGISTER_RATE,
    SIP_USER_AGENT,
    DEFAULT_DOMAIN,
    ROUTE_LOOKUP_TIMEOUT,
    RTP_ENGINE,
    ADMIN_LISTEN,
    ADMIN_TOKEN,
    LOG_LEVEL,
    LOG_FORMAT,
    STATUS_FILE,
    STATE_FILE,
    SHUTDOWN_GRACE,
    SIP_ALLOWED_SOURCES,
    SIP_REJECT_UNKNOWN,
    ROUTING_AUTH_USERNAME,
    ROUTING_AUTH_PASSWORD,
    CALL_RING_TIMEOUT,
    CALL_MAX_DURATION,
    MAX_CALLS,
    MAX_CALLS_PER_PROVIDER,
    CALL_DRAIN,
];

/// The `[section]` tables of the config file.
pub(crate) const SECTIONS: &[&str] = &[
    "backend", "sip", "dns", "routing", "media", "admin", "log", "status", "calls",
];

/// The keys of one `[[providers]]` entry (CONTRACT.md §2).
pub(crate) const PROVIDER_FIELDS: &[&str] = &[
    "id",
    "name",
    "host",
    "port",
    "transport",
    "username",
    "password",
    "auth_username",
    "realm",
    "expires",
    "outbound_proxy",
    "enabled",
];

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The config file at this path.
    File(std::path::PathBuf),
}

impl Key {
    /// The name the user used first, then the other ways to set the same thing, e.g.
    /// `SIP_PORT (sip.port, --sip-port)`.
    pub(crate) fn names(&self, origin: &Origin) -> String {
        let first = match origin {
            Origin::Flag => self.flag.unwrap_or(self.file),
            Origin::Env => self.env.unwrap_or(self.file),
            Origin::File(_) => self.file,
        };
        let others: Vec<&str> = [self.env, Some(self.file), self.flag]
            .into_iter()
            .flatten()
            .filter(|n| *n != first)
            .collect();
        if others.is_empty() {
            first.to_owned()
        } else {
            format!("{first} ({})", others.join(", "))
        }
    }
}

impl Origin {
    /// "from the command line", "from the environment", "in config file X".
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Flag => "on the command line".to_owned(),
            Self::Env => "in the environment".to_owned(),
            Self::File(path) => format!("in config file {}", path.display()),
        }
    }
}

/// The valid key closest to a misspelt one, when it is close enough to be a typo.
pub(crate) fn suggest<'a>(
    wrong: &str,
    valid: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    valid
        .into_iter()
        .map(|v| (edit_distance(&wrong.to_ascii_lowercase(), v), v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != *cb);
            let delete = prev
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            cur.push(substitute.min(delete).min(insert));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_what_the_user_touched() {
        assert_eq!(
            SIP_PORT.names(&Origin::Flag),
            "--sip-port (SIP_PORT, sip.port)"
        );
        assert_eq!(
            SIP_PORT.names(&Origin::Env),
            "SIP_PORT (sip.port, --sip-port)"
        );
        assert_eq!(
            SIP_PORT.names(&Origin::File("x.toml".into())),
            "sip.port (SIP_PORT, --sip-port)"
        );
        assert_eq!(API_KEY.names(&Origin::Env), "API_KEY (backend.api_key)");
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("prot", ["port", "host"]), Some("port"));
        assert_eq!(
            suggest("pasword", PROVIDER_FIELDS.iter().copied()),
            Some("password")
        );
        assert_eq!(suggest("zzzzzzzz", ["port", "host"]), None);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn keys_are_unique_and_in_known_sections() {
        for (i, a) in ALL.iter().enumerate() {
            for b in ALL.iter().skip(i + 1) {
                assert_ne!(a.file, b.file);
                assert!(a.env.is_none() || a.env != b.env);
            }
            if let Some((section, _)) = a.file.split_once('.') {
                assert!(SECTIONS.contains(&section), "{}", a.file);
            }
        }
    }
}

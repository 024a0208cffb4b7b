//! Provider accounts: the raw form every source hands in, and validation into the form
//! the registration machine uses.

use crate::message::is_safe_header_value;
use crate::secret::Secret;
use std::num::NonZeroU16;
use thiserror::Error;

pub use crate::transport::Transport;

/// A provider account as a source gives it (backend JSON or the config file), before
/// validation: every field is what the source said, so that a bad entry can be reported
/// precisely instead of failing the whole list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderSpec {
    pub id: String,
    pub name: String,
    pub host: String,
    /// As given; validated to 1..=65535.
    pub port: Option<i64>,
    /// As given: `udp`/`tcp`/`tls` (file) or `SIP_TRANSPORT_UDP`/… (backend), any case.
    pub transport: Option<String>,
    pub username: String,
    pub password: Secret,
    pub auth_username: Option<String>,
    pub realm: Option<String>,
    /// Requested expiry in seconds.
    pub expires: Option<i64>,
    pub outbound_proxy: Option<String>,
    pub enabled: Option<bool>,
    /// Set by the source when a field could not be read (wrong JSON type, …): the
    /// provider is then reported as failed with this text.
    pub problem: Option<String>,
}

/// A validated provider account, kept by its registration for as long as it runs.
///
/// Compact on purpose (100,000 of these live at once, issue 8 "Memory"): strings that do
/// not change are boxed (16 bytes inline, not 24), what is usually absent is an `Option`
/// of a box, and an auth user equal to the user name is not stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub name: Box<str>,
    pub host: Box<str>,
    /// The port the entry gave: without one, a host name is located by SRV records
    /// (RFC 3263 §4.2). See [`Provider::port`]. (2 bytes: a `bool` beside a `u16`
    /// would cost 8 with padding.)
    pub given_port: Option<NonZeroU16>,
    pub transport: Transport,
    pub username: Box<str>,
    pub password: Secret,
    /// `None`: the user name authenticates (see [`Provider::auth_username`]).
    auth_username: Option<Box<str>>,
    pub realm: Option<Box<str>>,
    pub expires: u32,
    /// Where requests are sent instead of `host:port`, as `(host, port)`; without a
    /// port, a name is located by SRV records like the host.
    pub outbound_proxy: Option<Box<(Box<str>, Option<u16>)>>,
    pub enabled: bool,
}

impl Provider {
    /// The port given, else the transport's default (RFC 3261 §19.1.2).
    pub fn port(&self) -> u16 {
        self.given_port
            .map_or(self.transport.default_port(), NonZeroU16::get)
    }

    /// The user name the digest answer carries: `auth_username`, else the user name.
    pub fn auth_username(&self) -> &str {
        self.auth_username.as_deref().unwrap_or(&self.username)
    }

    /// Sets the user name the digest answer carries (kept absent when it is the user
    /// name itself).
    pub fn set_auth_username(&mut self, auth_username: &str) {
        self.auth_username = (auth_username != &*self.username).then(|| auth_username.into());
    }
}

/// Requested expiry when the source gives none.
pub const DEFAULT_EXPIRES: u32 = 3600;

/// Why a provider entry cannot be registered; its text is the provider's `registerError`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidProvider {
    #[error("invalid provider: `id` is empty")]
    EmptyId,
    #[error("invalid provider: `{field}` is empty")]
    Empty { field: &'static str },
    #[error("invalid provider: `{field}` contains CR, LF or another control character")]
    ControlCharacter { field: &'static str },
    #[error("invalid provider: `{field}` contains `{ch}`, which cannot appear there unescaped")]
    BadCharacter { field: &'static str, ch: char },
    #[error("invalid provider: `password` is missing or empty: give the password the registrar challenges for")]
    MissingPassword,
    #[error("invalid provider: `port` {0} is out of range (1-65535; leave it out for the transport's default)")]
    Port(i64),
    #[error("invalid provider: `transport` {0:?} is unknown (udp, tcp or tls)")]
    UnknownTransport(String),
    #[error("invalid provider: `expires` {0} is out of range (1-4294967295 seconds; leave it out for the default of 3600)")]
    Expires(i64),
    #[error("invalid provider: `host` {0:?} is not a host name or IP address")]
    Host(String),
    #[error(
        "invalid provider: `outbound_proxy` {0:?} is not a SIP URI like sip:proxy.example:5060"
    )]
    OutboundProxy(String),
    #[error("invalid provider: {0}")]
    Unreadable(String),
}

fn check_text(field: &'static str, value: &str) -> Result<(), InvalidProvider> {
    if !is_safe_header_value(value) {
        return Err(InvalidProvider::ControlCharacter { field });
    }
    Ok(())
}

fn check_nonempty(field: &'static str, value: &str) -> Result<(), InvalidProvider> {
    if value.trim().is_empty() {
        return Err(InvalidProvider::Empty { field });
    }
    check_text(field, value)
}

/// Characters that would break the SIP URI or header a user name is put in.
fn check_user(field: &'static str, value: &str) -> Result<(), InvalidProvider> {
    check_nonempty(field, value)?;
    if let Some(ch) = value.chars().find(|c| {
        matches!(
            c,
            '<' | '>' | '@' | ':' | ';' | '"' | ' ' | ',' | '\\' | '?'
        )
    }) {
        return Err(InvalidProvider::BadCharacter { field, ch });
    }
    Ok(())
}

fn valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let h = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Some(inner) = h {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_transport(raw: Option<&str>) -> Result<Transport, InvalidProvider> {
    let Some(raw) = raw else {
        return Ok(Transport::Udp);
    };
    let t = raw.trim().to_ascii_lowercase();
    let t = t.strip_prefix("sip_transport_").unwrap_or(&t);
    match t {
        "" | "udp" => Ok(Transport::Udp),
        "tcp" => Ok(Transport::Tcp),
        "tls" => Ok(Transport::Tls),
        _ => Err(InvalidProvider::UnknownTransport(raw.to_owned())),
    }
}

fn parse_proxy(raw: &str) -> Result<(String, Option<u16>), InvalidProvider> {
    let bad = || InvalidProvider::OutboundProxy(raw.to_owned());
    check_text("outbound_proxy", raw)?;
    let rest = raw
        .trim()
        .strip_prefix("sip:")
        .or_else(|| raw.trim().strip_prefix("sips:"))
        .unwrap_or(raw.trim());
    let rest = rest.trim_start_matches('<');
    let hostport = rest.split([';', '>', '?']).next().unwrap_or("");
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        (format!("[{h}]"), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (hostport.to_owned(), None),
        }
    };
    if port == Some(0) || !valid_host(&host) {
        return Err(bad());
    }
    Ok((host, port))
}

impl ProviderSpec {
    /// Validates every field that goes into a SIP header or decides where we send.
    pub fn validate(&self) -> Result<Provider, InvalidProvider> {
        if self.id.trim().is_empty() {
            return Err(InvalidProvider::EmptyId);
        }
        if let Some(problem) = &self.problem {
            return Err(InvalidProvider::Unreadable(problem.clone()));
        }
        check_text("id", &self.id)?;
        check_text("name", &self.name)?;
        let host = self.host.trim();
        check_nonempty("host", host)?;
        if !valid_host(host) {
            return Err(InvalidProvider::Host(host.to_owned()));
        }
        check_user("username", &self.username)?;
        // Not trimmed: spaces are valid in a password. An empty one would only be sent
        // as an empty secret and end as "authentication rejected", which sends the
        // operator to the wrong place.
        if self.password.expose().is_empty() {
            return Err(InvalidProvider::MissingPassword);
        }
        if self.password.expose().chars().any(char::is_control) {
            return Err(InvalidProvider::ControlCharacter { field: "password" });
        }
        let auth_username = match &self.auth_username {
            Some(a) if !a.trim().is_empty() => {
                check_text("auth_username", a)?;
                if a.contains('"') || a.contains('\\') {
                    return Err(InvalidProvider::BadCharacter {
                        field: "auth_username",
                        ch: if a.contains('"') { '"' } else { '\\' },
                    });
                }
                // The same as the user name: stored once (see `Provider::auth_username`).
                (*a != self.username).then(|| a.as_str().into())
            }
            _ => None,
        };
        let realm = match &self.realm {
            Some(r) if !r.trim().is_empty() => {
                check_text("realm", r)?;
                Some(r.trim().into())
            }
            _ => None,
        };
        let transport = parse_transport(self.transport.as_deref())?;
        // Absent (or JSON null) takes the default; 0 is out of range like any other
        // number outside 1-65535, not a second way to say "default".
        let given_port = match self.port {
            None => None,
            Some(p) => Some(
                u16::try_from(p)
                    .ok()
                    .and_then(NonZeroU16::new)
                    .ok_or(InvalidProvider::Port(p))?,
            ),
        };
        // 0 would ask for an un-REGISTER: out of range, like a negative value.
        let expires = match self.expires {
            None => DEFAULT_EXPIRES,
            Some(e) => u32::try_from(e)
                .ok()
                .filter(|e| *e > 0)
                .ok_or(InvalidProvider::Expires(e))?,
        };
        let outbound_proxy = match &self.outbound_proxy {
            Some(p) if !p.trim().is_empty() => {
                let (host, port) = parse_proxy(p)?;
                Some(Box::new((host.into_boxed_str(), port)))
            }
            _ => None,
        };
        Ok(Provider {
            id: self.id.clone(),
            name: self.name.as_str().into(),
            host: host.into(),
            given_port,
            transport,
            username: self.username.as_str().into(),
            password: self.password.clone(),
            auth_username,
            realm,
            expires,
            outbound_proxy,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec() -> ProviderSpec {
        ProviderSpec {
            id: "p1".into(),
            name: "P".into(),
            host: "sip.example".into(),
            username: "alice".into(),
            password: Secret::new("pw"),
            ..ProviderSpec::default()
        }
    }

    /// The "empty" forms: absent/null numbers take the default, 0 is out of range;
    /// required strings must not be empty; optional strings that are empty are absent.
    #[test]
    fn empty_forms_have_one_meaning_each() {
        let p = spec().validate().unwrap();
        assert_eq!((p.port(), p.expires), (5060, DEFAULT_EXPIRES));
        let zero_port = ProviderSpec {
            port: Some(0),
            ..spec()
        };
        assert_eq!(zero_port.validate(), Err(InvalidProvider::Port(0)));
        let zero_expires = ProviderSpec {
            expires: Some(0),
            ..spec()
        };
        assert_eq!(zero_expires.validate(), Err(InvalidProvider::Expires(0)));
        let no_password = ProviderSpec {
            password: Secret::new(""),
            ..spec()
        };
        let err = no_password.validate().unwrap_err();
        assert_eq!(err, InvalidProvider::MissingPassword);
        assert!(err.to_string().contains("`password`"), "{err}");
        // A password of spaces is a password.
        let spaces = ProviderSpec {
            password: Secret::new("  "),
            ..spec()
        };
        assert!(spaces.validate().is_ok());
        let empty_optionals = ProviderSpec {
            auth_username: Some(String::new()),
            realm: Some(" ".into()),
            outbound_proxy: Some(String::new()),
            transport: Some(String::new()),
            ..spec()
        };
        let p = empty_optionals.validate().unwrap();
        assert_eq!(p.auth_username(), "alice");
        assert_eq!(p.realm, None);
        assert_eq!(p.outbound_proxy, None);
        assert_eq!(p.transport, Transport::Udp);
        for (field, bad) in [
            (
                "host",
                ProviderSpec {
                    host: String::new(),
                    ..spec()
                },
            ),
            (
                "username",
                ProviderSpec {
                    username: String::new(),
                    ..spec()
                },
            ),
        ] {
            assert_eq!(bad.validate(), Err(InvalidProvider::Empty { field }));
        }
    }
}

//! One Via value, read by our own parser: `rsip`'s typed Via fails on an IPv6 sent-by.

use super::names::is_token;
use super::syntax::{params, split_top_level, strip_quotes, trim_ws};
use std::net::IpAddr;

/// The fields of a Via header value that the core reads (RFC 3261 §20.42, RFC 3581).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport of the sent-protocol, upper-cased (`UDP`, `TCP`, `TLS`, `WS` …);
    /// transport tokens are case-insensitive and one spelling keeps comparisons simple.
    pub transport: String,
    /// The sent-by host as written; an IPv6 reference keeps its brackets
    /// (`[2001:db8::1]`), as in the `host` grammar, so `host:port` stays unambiguous.
    pub host: String,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// The `branch` parameter (the transaction id when it starts with `z9hG4bK`).
    pub branch: Option<String>,
    /// The `received` parameter: the source address a server saw.
    pub received: Option<String>,
    /// The `rport` parameter's port (RFC 3581); `None` when absent or without a value,
    /// as in a request asking for it.
    pub rport: Option<u16>,
}

impl Via {
    /// The address the `received` parameter names, when it is one (RFC 3261 writes it
    /// bare; a bracketed IPv6 reference is taken too).
    pub fn received_ip(&self) -> Option<IpAddr> {
        self.received.as_deref().and_then(ip_of)
    }

    /// The sent-by host, when it is an IP address.
    pub fn host_ip(&self) -> Option<IpAddr> {
        ip_of(&self.host)
    }

    /// Parses one Via value (`SIP / 2.0 / UDP host:port;params`); `None` when the
    /// sent-protocol or sent-by is malformed. Whitespace is allowed around `/`, `:` and
    /// `;`, as the grammar's SLASH, COLON and SEMI allow it.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let protocol_and_sent_by = split_top_level(value, ';').next()?;
        let (protocol, rest) = protocol_and_sent_by.split_once('/')?;
        let (version, rest) = rest.split_once('/')?;
        if trim_ws(protocol).is_empty() || trim_ws(version).is_empty() {
            return None;
        }
        let (transport, sent_by) = trim_ws(rest).split_once([' ', '\t'])?;
        if !is_token(transport) {
            return None;
        }
        let (host, port) = sent_by_parts(trim_ws(sent_by))?;

        let mut via = Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            branch: None,
            received: None,
            rport: None,
        };
        let rest = value.get(protocol_and_sent_by.len()..).unwrap_or_default();
        for (name, value) in params(rest) {
            let value = value.map(strip_quotes).filter(|v| !v.is_empty());
            if name.eq_ignore_ascii_case("branch") {
                via.branch = via.branch.or(value.map(str::to_owned));
            } else if name.eq_ignore_ascii_case("received") {
                via.received = via.received.or(value.map(str::to_owned));
            } else if name.eq_ignore_ascii_case("rport") {
                via.rport = via.rport.or(value.and_then(|v| v.parse().ok()));
            }
        }
        Some(via)
    }
}

/// Splits a sent-by into host and optional port; `[v6]:port` and `[v6]` included.
fn sent_by_parts(sent_by: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if sent_by.starts_with('[') {
        let close = sent_by.find(']')?;
        let host = sent_by.get(..=close)?;
        let after = trim_ws(sent_by.get(close + 1..)?);
        if after.is_empty() {
            (host, None)
        } else {
            (host, Some(after.strip_prefix(':')?))
        }
    } else {
        match sent_by.split_once(':') {
            Some((host, port)) => (trim_ws(host), Some(port)),
            None => (sent_by, None),
        }
    };
    if !is_host(host) {
        return None;
    }
    let port = match port.map(trim_ws) {
        None => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// `host` as an IP address, brackets around an IPv6 one allowed.
fn ip_of(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// Whether `host` looks like a hostname, IPv4 address or bracketed IPv6 reference.
/// Loose on purpose (no label rules): it only has to keep delimiters and whitespace
/// out, so a mangled Via is refused rather than half-read.
fn is_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn via(s: &str) -> Via {
        Via::parse(s).unwrap_or_else(|| panic!("{s:?} did not parse"))
    }

    #[test]
    fn plain_via() {
        let v = via(
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;received=198.51.100.7;rport=5062",
        );
        assert_eq!(
            v,
            Via {
                transport: "UDP".into(),
                host: "192.0.2.1".into(),
                port: Some(5060),
                branch: Some("z9hG4bK776asdhds".into()),
                received: Some("198.51.100.7".into()),
                rport: Some(5062),
            }
        );
    }

    #[test]
    fn ipv6_sent_by() {
        let v = via("SIP/2.0/TCP [::1]:5060;branch=z9hG4bK1");
        assert_eq!((v.host.as_str(), v.port), ("[::1]", Some(5060)));
        let v = via("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3");
        assert_eq!((v.host.as_str(), v.port), ("[2001:db8::9:1]", None));
        assert_eq!(v.received.as_deref(), Some("2001:db8::9:255"));
    }

    #[test]
    fn rport_without_value_is_none() {
        let v = via("SIP/2.0/UDP h;rport;branch=z9hG4bKx");
        assert_eq!(v.rport, None);
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKx"));
        assert_eq!(via("SIP/2.0/UDP h;rport=").rport, None);
        assert_eq!(via("SIP/2.0/UDP h;rport=99999").rport, None);
    }

    #[test]
    fn odd_spacing_and_case() {
        let v = via("sip / 2.0 / tls   host.example.com : 5061 ; BRANCH = z9hG4bKq ; Received=\"192.0.2.9\"");
        assert_eq!(v.transport, "TLS");
        assert_eq!((v.host.as_str(), v.port), ("host.example.com", Some(5061)));
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKq"));
        assert_eq!(v.received.as_deref(), Some("192.0.2.9"));
        assert_eq!(
            via("SIP/2.0/WSS\tdf7jal23ls0d.invalid;branch=z9hG4bKx").transport,
            "WSS"
        );
    }

    #[test]
    fn malformed_via() {
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ",
            "SIP/2.0 host",
            "SIP/2.0/UDP host:",
            "SIP/2.0/UDP host:port",
            "SIP/2.0/UDP host:70000",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP [::1]x",
            "SIP/2.0/UDP host name",
            "//UDP host",
            "SIP/2.0/U<P host",
        ] {
            assert_eq!(Via::parse(bad), None, "{bad:?}");
        }
    }
}

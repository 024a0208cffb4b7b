//! Where a SIP URI points (RFC 3261 §19.1.1): its host and port, for the destination
//! of a call and the remote targets and routes of its dialogs.

use crate::transport::Transport;
use std::net::{IpAddr, SocketAddr};

/// The host and port of a `sip:`/`sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host as written, an IPv6 reference without its brackets.
    pub host: String,
    /// The port, when the URI names one.
    pub port: Option<u16>,
    /// `sips:` (TLS): not reachable over UDP.
    pub secure: bool,
    /// The transport to reach it over: `sips:` is TLS, else the `;transport=`
    /// parameter's (`udp`, `tcp`, `tls`), else UDP.
    pub transport: Transport,
    /// Whether `sips:` or `;transport=` said it (else RFC 3263 may pick another by
    /// NAPTR: see [`crate::dns::locate`]).
    pub transport_given: bool,
}

impl HostPort {
    /// The port to use: the URI's, else 5060 (5061 for TLS, RFC 3261 §19.1.2).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(self.transport.default_port())
    }

    /// The socket address when the host is an IP literal (no lookup needed).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port_or_default()))
    }
}

/// The host and port of `uri` (`sip:user@host:port;params?headers`, with or without
/// `<>`); `None` for another scheme or a URI without a host.
pub fn host_port(uri: &str) -> Option<HostPort> {
    let uri = uri.trim().trim_start_matches('<');
    let uri = uri.split('>').next().unwrap_or(uri);
    let (rest, secure) = match uri.get(..5) {
        Some(s) if s.eq_ignore_ascii_case("sips:") => (uri.get(5..)?, true),
        _ => match uri.get(..4) {
            Some(s) if s.eq_ignore_ascii_case("sip:") => (uri.get(4..)?, false),
            _ => return None,
        },
    };
    // Headers (`?…`) end the URI; the userinfo (which may hold `;`) ends at the last
    // `@` before them; parameters follow the host.
    let rest = rest.split('?').next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = rest.split(';').next().unwrap_or(rest);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (host, port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p.parse().ok()?)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let param = rest
        .split(';')
        .skip(1)
        .find_map(|p| {
            p.split_once('=')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case("transport"))
        })
        .map(|(_, v)| v.trim());
    let (transport, transport_given) = match param {
        _ if secure => (Transport::Tls, true),
        Some(v) if v.eq_ignore_ascii_case("tcp") => (Transport::Tcp, true),
        Some(v) if v.eq_ignore_ascii_case("tls") => (Transport::Tls, true),
        Some(v) if v.eq_ignore_ascii_case("udp") => (Transport::Udp, true),
        _ => (Transport::Udp, false),
    };
    Some(HostPort {
        host: host.to_owned(),
        port,
        secure,
        transport,
        transport_given,
    })
}

/// Our Contact at `local` (`host:port`) for a leg over `transport`: the registrar's
/// peers and a call's reach us there, on that transport.
pub fn our_contact(local: &str, transport: Transport) -> String {
    format!("<sip:trunkline@{local}{}>", transport.uri_param())
}

/// `host:port` for a Via sent-by or a URI: an IPv6 address in brackets.
pub fn join_host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// `host:port` for a configured host name or address (an IPv6 address bracketed).
pub fn host_with_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => join_host_port(ip, port),
        Err(_) => format!("{host}:{port}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_and_port_of_every_uri_shape() {
        let hp = host_port("sip:+15551234@lk.example.com:5080;transport=udp").unwrap();
        assert_eq!(
            (hp.host.as_str(), hp.port, hp.secure),
            ("lk.example.com", Some(5080), false)
        );
        let hp = host_port("<sips:bob@[2001:db8::1]:5061>").unwrap();
        assert_eq!(
            (hp.host.as_str(), hp.port, hp.secure),
            ("2001:db8::1", Some(5061), true)
        );
        let hp = host_port("sip:10.0.0.1").unwrap();
        assert_eq!(hp.socket_addr(), Some("10.0.0.1:5060".parse().unwrap()));
        let hp = host_port("SIP:user;npdi@host?Subject=x").unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("host", None));
        assert_eq!(host_port("sips:h").unwrap().port_or_default(), 5061);
    }

    #[test]
    fn refuses_what_is_no_sip_uri() {
        for bad in [
            "tel:+1555",
            "sip:",
            "sip:u@",
            "sip:h:notaport",
            "sip:[::1",
            "http://x",
        ] {
            assert_eq!(host_port(bad), None, "{bad}");
        }
    }
}

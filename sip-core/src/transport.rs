//! The transports a SIP message travels on (RFC 3261 §18) and what each writes into
//! the messages we build: the Via sent-protocol, and whether retransmission timers run.
//!
//! Every Via we write comes from [`Transport::via`], so that a leg or a registration on
//! TCP or TLS (issue 10) says so in one place instead of three copies of `SIP/2.0/UDP`.

use std::net::SocketAddr;

/// A transport towards a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The token used in Via and in `;transport=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// The lower-case name, as in a provider entry and the admin API (`udp`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// The port a peer listens on when its address names none (RFC 3261 §19.1.2,
    /// RFC 5630: 5061 for TLS).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 5061,
            Self::Udp | Self::Tcp => 5060,
        }
    }

    /// Whether the transport delivers reliably, so that requests and responses are not
    /// retransmitted (RFC 3261 §17.1.1.2: Timer A is not started on TCP or TLS).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// The URI parameter that names this transport in a Contact of ours (RFC 3261
    /// §19.1.1): none for UDP, the default.
    pub fn uri_param(self) -> &'static str {
        match self {
            Self::Udp => "",
            Self::Tcp => ";transport=tcp",
            Self::Tls => ";transport=tls",
        }
    }

    /// The value of a Via header for a request we send from `sent_by` (host:port) with
    /// `branch`. `rport` (RFC 3581) on every transport: on UDP it brings the responses
    /// back through a NAT binding, on a stream it costs nothing and tells the registrar
    /// to report the source it saw (`received`/`rport`), which is how we learn our
    /// public address. On a stream, `alias` too (RFC 5923): the peer may send its own
    /// requests to our sent-by on the connection this one came on, instead of opening
    /// one to our listener (which a NAT would not let through) — how a registrar
    /// reaches a trunk registered over TCP or TLS.
    pub fn via(self, sent_by: &str, branch: &str) -> String {
        let alias = if self.is_reliable() { ";alias" } else { "" };
        format!(
            "SIP/2.0/{} {sent_by};branch={branch};rport{alias}",
            self.as_str()
        )
    }
}

/// A stream connection (TCP or TLS), named by the core: the core picks the id of each
/// connection it asks a driver to open ([`crate::Output::Connect`]) and of each one a
/// listener accepted ([`crate::Controller::accept`]). Never reused within a process, so
/// a late event for a closed connection cannot reach a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// How a message travels: as a datagram from our SIP socket, or on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// A UDP datagram from the SIP socket.
    Udp,
    /// Bytes on a TCP connection.
    Tcp(ConnId),
    /// Bytes on a TLS connection.
    Tls(ConnId),
}

impl Flow {
    /// The transport this flow uses.
    pub fn transport(self) -> Transport {
        match self {
            Self::Udp => Transport::Udp,
            Self::Tcp(_) => Transport::Tcp,
            Self::Tls(_) => Transport::Tls,
        }
    }

    /// The connection, on a stream.
    pub fn conn(self) -> Option<ConnId> {
        match self {
            Self::Udp => None,
            Self::Tcp(c) | Self::Tls(c) => Some(c),
        }
    }

    /// A stream flow of `transport` on `conn` (UDP has no connection: [`Flow::Udp`]).
    pub fn stream(transport: Transport, conn: ConnId) -> Self {
        match transport {
            Transport::Udp => Self::Udp,
            Transport::Tcp => Self::Tcp(conn),
            Transport::Tls => Self::Tls(conn),
        }
    }
}

/// Where a message goes or came from: the peer's address and the flow that carries it.
/// Every send names one, so that an answer leaves the way its request came (RFC 3261
/// §18.2.2: on the same connection) and a transaction's retransmissions follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Link {
    /// The peer's address (on a stream: the connection's far end).
    pub remote: SocketAddr,
    /// How to reach it.
    pub flow: Flow,
}

impl Link {
    /// A datagram link to `remote`.
    pub fn udp(remote: SocketAddr) -> Self {
        Self {
            remote,
            flow: Flow::Udp,
        }
    }

    /// Whether the flow delivers reliably (no retransmissions: RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        self.flow.transport().is_reliable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_via_names_the_transport_and_asks_for_rport() {
        assert_eq!(
            Transport::Udp.via("192.0.2.1:5060", "z9hG4bKa"),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa;rport"
        );
        assert_eq!(
            Transport::Tls.via("[2001:db8::1]:5061", "z9hG4bKb"),
            "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKb;rport;alias"
        );
    }

    #[test]
    fn default_ports_and_reliability() {
        assert_eq!(Transport::Udp.default_port(), 5060);
        assert_eq!(Transport::Tcp.default_port(), 5060);
        assert_eq!(Transport::Tls.default_port(), 5061);
        assert!(!Transport::Udp.is_reliable());
        assert!(Transport::Tcp.is_reliable() && Transport::Tls.is_reliable());
    }
}

//! The transports a SIP message travels on (RFC 3261 §18) and what each writes into
//! the messages we build: the Via sent-protocol, and whether retransmission timers run.
//!
//! Every Via we write comes from [`Transport::via`], so that a leg or a registration on
//! TCP or TLS (issue 10) says so in one place instead of three copies of `SIP/2.0/UDP`.

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

    /// The value of a Via header for a request we send from `sent_by` (host:port) with
    /// `branch`. `rport` (RFC 3581) on every transport: on UDP it brings the responses
    /// back through a NAT binding, on a stream it costs nothing and tells the registrar
    /// to report the source it saw (`received`/`rport`), which is how we learn our
    /// public address.
    pub fn via(self, sent_by: &str, branch: &str) -> String {
        format!("SIP/2.0/{} {sent_by};branch={branch};rport", self.as_str())
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
            "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKb;rport"
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

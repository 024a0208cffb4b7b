//! The network plumbing the tokio and smol drivers share, runtime-neutral, so that each
//! driver keeps just the part its runtime changes (registering the socket with its
//! reactor, the runtime provider its DNS lookups run on). No SIP decision here: the
//! [`Inbox`] of a read batch acts on the core's triage, and [`Dns`] answers the core's
//! queries with what the name servers said.

pub mod dns;
mod inbox;
mod registrar_sockets;
mod streams;
mod tls;

pub use dns::{Dns, DnsError};
pub use inbox::{Inbox, MAX_BATCH, PER_SOURCE_BUDGET, UNKNOWN_BUDGET};
pub use registrar_sockets::{
    connected_socket, RegistrarSocket, RegistrarSockets, MAX_REGISTRAR_SOCKETS,
};
pub use streams::{StreamRuntime, Streams, MAX_WRITE_QUEUE};
pub use tls::{TlsConfig, TlsError};

use sip_core::Resolution;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// Binds a non-blocking UDP socket on `addr` with `buffer` bytes of receive and send
/// buffer (0: the OS default). A burst of registrar answers must not overflow the
/// default buffer (that, not timers, limits Kamailio's uac module). The sizes are best
/// effort: the kernel caps them at `net.core.{r,w}mem_max`.
///
/// `SO_REUSEADDR` is set only after the bind: the bind itself still fails while
/// anything else holds the port, and afterwards the [`RegistrarSockets`] can bind the
/// same address and port (a later process must set the option too to share it).
pub fn sip_socket(addr: SocketAddr, buffer: usize) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if buffer > 0 {
        let _ = sock.set_recv_buffer_size(buffer);
        let _ = sock.set_send_buffer_size(buffer);
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.set_reuse_address(true)?;
    Ok(sock.into())
}

/// `host` as an IP address when it is one (`[v6]` brackets allowed): no lookup needed.
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// The answer to a resolve query: `addrs` as found and, when `need_local` holds the bind
/// address (no public address configured), our source address towards the first.
pub fn resolution(addrs: Vec<IpAddr>, need_local: Option<IpAddr>) -> Resolution {
    let local_ip = match (need_local, addrs.first()) {
        (Some(bind), Some(first)) => local_ip_towards(bind, *first),
        _ => None,
    };
    Resolution { addrs, local_ip }
}

/// The source address the OS would pick towards `remote`: connecting an unbound UDP
/// socket only consults the routing table; no packet is sent.
fn local_ip_towards(bind: IpAddr, remote: IpAddr) -> Option<IpAddr> {
    let sock = UdpSocket::bind(SocketAddr::new(bind, 0)).ok()?;
    sock.connect(SocketAddr::new(remote, 5060)).ok()?;
    sock.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn literals_and_the_local_address_towards_them() {
        assert_eq!(ip_literal("127.0.0.1"), Some(Ipv4Addr::LOCALHOST.into()));
        assert_eq!(ip_literal("[::1]"), Some(Ipv6Addr::LOCALHOST.into()));
        assert_eq!(ip_literal("sip.example"), None);
        let r = resolution(
            vec![Ipv4Addr::LOCALHOST.into()],
            Some(Ipv4Addr::LOCALHOST.into()),
        );
        assert_eq!(r.local_ip, Some(Ipv4Addr::LOCALHOST.into()));
        assert_eq!(
            resolution(vec![Ipv4Addr::LOCALHOST.into()], None).local_ip,
            None
        );
    }

    #[test]
    fn the_socket_is_bound_non_blocking_with_bigger_buffers() {
        let s = sip_socket((Ipv4Addr::LOCALHOST, 0).into(), 1 << 20).unwrap();
        let mut buf = [0u8; 8];
        // Non-blocking: nothing to read is an error at once, not a hang.
        assert_eq!(
            s.recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let rcv = socket2::SockRef::from(&s).recv_buffer_size().unwrap();
        assert!(rcv > 212_992, "receive buffer {rcv}");
    }
}

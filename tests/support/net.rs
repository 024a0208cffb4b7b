//! Loopback port helpers.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

/// The loopback address every peer of these tests listens on.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A port on 127.0.0.1 that was free a moment ago for UDP and for TCP both: a SIP
/// server (trunkline, Kamailio with TCP) listens on both with one number.
///
/// The port is released before it is returned, so another process may take it in
/// between; callers that start a server on it detect a failed bind (the server exits)
/// and try again with a new port.
pub fn free_udp_port() -> u16 {
    for _ in 0..64 {
        let socket = UdpSocket::bind(SocketAddr::from((LOOPBACK, 0)))
            .expect("binding a UDP socket on 127.0.0.1:0 to find a free port");
        let port = socket
            .local_addr()
            .expect("reading the local address of a bound UDP socket")
            .port();
        if TcpListener::bind(SocketAddr::from((LOOPBACK, port))).is_ok() {
            return port;
        }
    }
    panic!("no port on 127.0.0.1 free for UDP and TCP in 64 tries");
}

/// A TCP port on 127.0.0.1 that was free a moment ago (e.g. for `ADMIN_LISTEN`, or
/// as an address where nothing listens).
///
/// Released before it is returned, with the same caveat as [`free_udp_port`]: a
/// server started on it fails visibly (trunkline exits 2) if another process took it.
pub fn free_tcp_port() -> u16 {
    let listener = TcpListener::bind(SocketAddr::from((LOOPBACK, 0)))
        .expect("binding a TCP socket on 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("reading the local address of a bound TCP socket")
        .port()
}

//! A socket of its own for each registrar, on the SIP socket's own address and port.
//!
//! Under a flood the one SIP socket's receive buffer is full of garbage and the kernel
//! drops whatever arrives next, registrar answers included, before any triage of ours
//! can see them (measured: at ~540k datagrams/s of mixed garbage the kernel dropped
//! ~84 % of everything). A larger buffer only delays that; reading faster does not
//! reach the flood's rate. So each registrar address the core names
//! ([`Controller::registrars`]) gets a UDP socket bound to the same local address and
//! port with `SO_REUSEADDR` and *connected* to that registrar: Linux delivers a
//! datagram to the bound socket that matches it best, and a connected socket matching
//! source address and port beats the unconnected main socket, so the registrar's
//! answers queue in a buffer no flood from elsewhere can fill, while every other
//! datagram (other sources, the registrar from another port, inbound calls from
//! anywhere else) still reaches the main socket. Contact, Via and NAT bindings do not
//! change: the local address and port are the same, and requests still leave through
//! the main socket. Datagrams from a registrar's exact address (its OPTIONS, later its
//! INVITEs) arrive on its socket and go to the same core the same way.
//!
//! At most [`MAX_REGISTRAR_SOCKETS`] are opened (the kernel walks every socket bound
//! to the port for each datagram); registrars past the cap share the main socket, as
//! all did before. A registrar socket that cannot be opened (another address family)
//! is logged once and its registrar uses the main socket too.

use crate::Inbox;
use sip_core::Controller;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::task::{Context, Poll};

/// The most registrar sockets opened.
///
/// Every datagram to the port makes the kernel score each socket bound to it, so the
/// cap bounds what a flood costs there; deployments talk to a handful of registrars.
pub const MAX_REGISTRAR_SOCKETS: usize = 32;

/// A runtime's non-blocking UDP socket, as the registrar sockets need it. The tokio
/// and smol drivers implement it for their socket types; the rest is written once here.
pub trait RegistrarSocket: Sized {
    /// Registers a non-blocking std socket with the runtime's reactor.
    fn adopt(socket: UdpSocket) -> io::Result<Self>;
    /// Reads one datagram without waiting (`WouldBlock` when there is none).
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
    /// Ready when a datagram may be waiting (it registers the waker otherwise).
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A UDP socket on `local` connected to `remote`, sharing `local` with the main SIP
/// socket (which [`crate::sip_socket`] lets share its port).
pub fn connected_socket(
    local: SocketAddr,
    remote: SocketAddr,
    buffer: usize,
) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(local);
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    if buffer > 0 {
        let _ = sock.set_recv_buffer_size(buffer);
    }
    sock.set_nonblocking(true)?;
    sock.bind(&local.into())?;
    sock.connect(&remote.into())?;
    Ok(sock.into())
}

/// The registrar sockets of one driver, kept in step with the core's list.
#[derive(Debug)]
pub struct RegistrarSockets<S> {
    local: SocketAddr,
    buffer: usize,
    sockets: Vec<(SocketAddr, S)>,
    /// The [`sip_core::Registrars::version`] last synced with.
    seen: usize,
    /// Registrars that have no socket of their own (over the cap or failed).
    without: usize,
}

impl<S: RegistrarSocket> RegistrarSockets<S> {
    /// None yet, for the main socket bound on `local`; each will ask for `buffer` bytes
    /// of receive buffer (0: the OS default).
    pub fn new(local: SocketAddr, buffer: usize) -> Self {
        Self {
            local,
            buffer,
            sockets: Vec::new(),
            seen: 0,
            without: 0,
        }
    }

    /// None yet, for `main` (the SIP socket): on its address, each with its receive
    /// buffer size.
    pub fn beside(main: &impl std::os::fd::AsFd) -> io::Result<Self> {
        let main = socket2::SockRef::from(main);
        let local = main
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket"))?;
        // Linux reports twice the size asked for (its bookkeeping share).
        Ok(Self::new(local, main.recv_buffer_size()? / 2))
    }

    /// The registrars that have a socket of their own.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.sockets.iter().map(|(a, _)| *a)
    }

    /// Opens sockets for registrars the core named since the last call, up to the cap.
    /// Cheap when nothing changed (one comparison): call it after every drain.
    pub fn sync(&mut self, core: &Controller) {
        let registrars = core.registrars();
        self.sync_with(registrars.version(), || registrars.addrs());
    }

    /// [`Self::sync`] with the core's list as `addrs` and its `version`.
    fn sync_with(&mut self, version: usize, addrs: impl FnOnce() -> Vec<SocketAddr>) {
        if version == self.seen {
            return;
        }
        self.seen = version;
        let mut without = 0;
        for remote in addrs() {
            if self.sockets.iter().any(|(a, _)| *a == remote) {
                continue;
            }
            if self.sockets.len() >= MAX_REGISTRAR_SOCKETS {
                without += 1;
                continue;
            }
            match connected_socket(self.local, remote, self.buffer).and_then(S::adopt) {
                Ok(s) => self.sockets.push((remote, s)),
                Err(e) => {
                    without += 1;
                    tracing::info!(%remote, error = %e, "no socket of its own for this registrar: its answers share the main SIP socket");
                }
            }
        }
        if without > self.without && self.sockets.len() >= MAX_REGISTRAR_SOCKETS {
            tracing::info!(
                cap = MAX_REGISTRAR_SOCKETS,
                sharing = without,
                "more registrars than registrar sockets: the rest share the main SIP socket"
            );
        }
        self.without = without;
    }

    /// Reads what waits on the registrar sockets into `inbox` without blocking, until
    /// they are empty or the batch is full; returns how many datagrams were read.
    pub fn read_into(&self, buf: &mut [u8], inbox: &mut Inbox, core: &Controller) -> usize {
        let before = inbox.len();
        for (_, socket) in &self.sockets {
            while !inbox.full() {
                match socket.try_recv(buf) {
                    Ok((n, remote)) => inbox.offer(core, remote, buf.get(..n).unwrap_or_default()),
                    // Nothing left, or an ICMP error for an earlier send (the registrar's
                    // port is closed): the transaction's timers deal with that.
                    Err(_) => break,
                }
            }
        }
        inbox.len() - before
    }

    /// Resolves when a registrar socket may have a datagram; never when there are none.
    pub fn readable(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            // Poll every socket so each registers the waker.
            let mut ready = false;
            for (_, socket) in &self.sockets {
                ready |= socket.poll_ready(cx).is_ready();
            }
            if ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    /// Blocking std sockets with a timeout stand in for a runtime's (readiness is
    /// not needed to test where the kernel delivers).
    fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        let r = s
            .recv_from(&mut buf)
            .ok()
            .map(|(n, a)| (buf[..n].to_vec(), a));
        s.set_nonblocking(true).unwrap();
        r
    }

    #[test]
    fn the_registrar_socket_gets_the_registrar_and_the_main_socket_the_rest() {
        let main = crate::sip_socket((Ipv4Addr::LOCALHOST, 0).into(), 0).unwrap();
        let local = main.local_addr().unwrap();
        // A second ordinary bind of the port still fails: two trunklines cannot share it.
        assert!(UdpSocket::bind(local).is_err());
        let registrar = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 3), 0)).unwrap();
        let same_host_other_port = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 3), 0)).unwrap();
        let stranger = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 4), 0)).unwrap();
        let own = connected_socket(local, registrar.local_addr().unwrap(), 0).unwrap();
        assert_eq!(own.local_addr().unwrap(), local, "same address and port");

        // Our request leaves the main socket; the answer arrives on the registrar's.
        main.send_to(b"REGISTER", registrar.local_addr().unwrap())
            .unwrap();
        let (got, from) = recv(&registrar).unwrap();
        assert_eq!((got.as_slice(), from), (&b"REGISTER"[..], local));
        registrar.send_to(b"200", local).unwrap();
        stranger.send_to(b"flood", local).unwrap();
        same_host_other_port.send_to(b"invite", local).unwrap();
        assert_eq!(recv(&own).unwrap().0, b"200");
        assert!(
            recv(&own).is_none(),
            "nothing else on the registrar's socket"
        );
        let mut on_main: Vec<Vec<u8>> = [recv(&main), recv(&main)]
            .into_iter()
            .map(|r| r.unwrap().0)
            .collect();
        on_main.sort();
        assert_eq!(on_main, vec![b"flood".to_vec(), b"invite".to_vec()]);

        // Once the registrar socket is gone the main socket gets its datagrams again.
        drop(own);
        registrar.send_to(b"late", local).unwrap();
        assert_eq!(recv(&main).unwrap().0, b"late");
    }

    impl RegistrarSocket for UdpSocket {
        fn adopt(socket: UdpSocket) -> io::Result<Self> {
            Ok(socket)
        }
        fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
            self.recv_from(buf)
        }
        fn poll_ready(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn past_the_cap_registrars_share_the_main_socket() {
        let main = crate::sip_socket((Ipv4Addr::LOCALHOST, 0).into(), 0).unwrap();
        let local = main.local_addr().unwrap();
        let peers: Vec<UdpSocket> = (0..MAX_REGISTRAR_SOCKETS + 2)
            .map(|_| UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 5), 0)).unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = peers.iter().map(|p| p.local_addr().unwrap()).collect();
        let mut own = RegistrarSockets::<UdpSocket>::beside(&main).unwrap();
        own.sync_with(1, || addrs.clone());
        assert_eq!(
            own.addrs().collect::<Vec<_>>(),
            addrs[..MAX_REGISTRAR_SOCKETS]
        );
        assert_eq!(own.without, 2);
        // The same version again: nothing is opened twice.
        own.sync_with(1, || panic!("not asked again"));

        // The first registrars' datagrams go to their own sockets, the last ones' to
        // the main socket; reading them puts them in the inbox.
        for p in &peers {
            p.send_to(b"SIP/2.0 200 OK\r\n\r\n", local).unwrap();
        }
        let core = Controller::new(
            sip_core::Config::default(),
            1,
            std::time::Instant::now(),
            std::time::SystemTime::now(),
        );
        let mut inbox = Inbox::default();
        let mut buf = [0u8; 64];
        let mut read = 0;
        for _ in 0..50 {
            read += own.read_into(&mut buf, &mut inbox, &core);
            if read == MAX_REGISTRAR_SOCKETS {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(read, MAX_REGISTRAR_SOCKETS);
        let rest: Vec<SocketAddr> = [recv(&main), recv(&main)]
            .into_iter()
            .map(|r| r.unwrap().1)
            .collect();
        assert_eq!(rest, addrs[MAX_REGISTRAR_SOCKETS..]);
    }
}

//! hickory's runtime abstraction on smol, so that driver-net's [`driver_net::Dns`] runs
//! here as it runs on tokio: background tasks on smol's executor, timers from
//! async-io, UDP and TCP sockets registered with smol's reactor. hickory ships a tokio
//! provider only; without this the smol driver would need a tokio reactor for DNS
//! (or a blocking resolver on a thread pool, which knows no SRV, NAPTR or TTLs).

use hickory_resolver::net::runtime::{DnsTcpStream, DnsUdpSocket, RuntimeProvider, Spawn, Time};
use smol::io::{AsyncRead, AsyncWrite};
use smol::{Async, Timer};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long a TCP connection to a name server may take when hickory names no bound
/// (as hickory's own providers wait).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// hickory's [`RuntimeProvider`] on smol: `Dns::new(server, SmolRuntime)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

/// Spawns hickory's background tasks (one per name-server connection) as detached
/// smol tasks: they end when their connection does.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolHandle;

/// hickory's timers on async-io's [`Timer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolTime;

/// A UDP socket for DNS queries, registered with smol's reactor.
#[derive(Debug)]
pub struct SmolUdp(Async<UdpSocket>);

/// A TCP connection to a name server (truncated answers), registered with smol's reactor.
#[derive(Debug)]
pub struct SmolTcp(Async<TcpStream>);

impl RuntimeProvider for SmolRuntime {
    type Handle = SmolHandle;
    type Timer = SmolTime;
    type Udp = SmolUdp;
    type Tcp = SmolTcp;

    fn create_handle(&self) -> SmolHandle {
        SmolHandle
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = io::Result<SmolTcp>>>> {
        let wait = timeout.unwrap_or(CONNECT_TIMEOUT);
        Box::pin(async move { SmolTime::timeout(wait, connect(server_addr, bind_addr)).await? })
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        _server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = io::Result<SmolUdp>>>> {
        // Binding does not block: the future is ready at once, as hickory asks.
        let socket = Async::<UdpSocket>::bind(local_addr).map(SmolUdp);
        Box::pin(async move { socket })
    }
}

/// Connects to `server`, from `bind` when hickory asks for a source address.
async fn connect(server: SocketAddr, bind: Option<SocketAddr>) -> io::Result<SmolTcp> {
    let stream = match bind {
        None => Async::<TcpStream>::connect(server).await?,
        Some(bind) => {
            // Rare (a configured source address): a blocking connect on smol's thread
            // pool rather than the non-blocking connect's platform-specific errors.
            let stream = smol::unblock(move || {
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(server),
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )?;
                socket.bind(&bind.into())?;
                socket.connect_timeout(&server.into(), CONNECT_TIMEOUT)?;
                io::Result::Ok(TcpStream::from(socket))
            })
            .await?;
            Async::new(stream)?
        }
    };
    // One small query per write: no waiting for more bytes.
    stream.get_ref().set_nodelay(true)?;
    Ok(SmolTcp(stream))
}

impl Spawn for SmolHandle {
    fn spawn_bg(&mut self, future: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(future).detach();
    }
}

#[async_trait::async_trait]
impl Time for SmolTime {
    async fn delay_for(duration: Duration) {
        Timer::after(duration).await;
    }

    async fn timeout<F: 'static + Future + Send>(
        duration: Duration,
        future: F,
    ) -> Result<F::Output, io::Error> {
        smol::future::or(async { Ok(future.await) }, async {
            Timer::after(duration).await;
            Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
        })
        .await
    }
}

impl DnsUdpSocket for SmolUdp {
    type Time = SmolTime;

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        // Try first; wait for readiness only when the socket has nothing (readiness
        // can be spurious, hence the loop).
        loop {
            match self.0.get_ref().recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
            match self.0.poll_readable(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.0.get_ref().send_to(buf, target) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
            match self.0.poll_writable(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl DnsTcpStream for SmolTcp {
    type Time = SmolTime;
}

impl AsyncRead for SmolTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SmolTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }
}

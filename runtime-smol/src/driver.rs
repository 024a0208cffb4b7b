//! The loop: moves bytes, replies and time between the world and the sans-IO core. It
//! makes no SIP decision; every `if` about SIP lives in `sip-core`.

use crate::backend::Backend;
use crate::dns_runtime::SmolRuntime;
use sip_core::Transport;
use sip_core::{Command, Controller, Event, Input, Output};
use smol::channel::Receiver;
use smol::future::FutureExt as _;
use smol::net::{TcpListener, TcpStream, UdpSocket};
use smol::{Async, Timer};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::time::{Duration, Instant};

/// What the driver needs besides the core's own config.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The grace given to the core's shutdown: un-REGISTER and final reports.
    pub shutdown_grace: Duration,
    /// `Some(bind ip)` when Contact/Via must use the OS's source address towards each
    /// registrar (no public address configured and the socket bound to `0.0.0.0`).
    pub learn_local_ip: Option<IpAddr>,
    /// TLS for connections (ours, and the TLS listener's); `None`: TLS connections
    /// fail to open, saying why.
    pub tls: Option<driver_net::TlsConfig>,
    /// The DNS server to ask (`ip:port`); `None`: the system's (`/etc/resolv.conf`,
    /// `/etc/hosts`).
    pub dns_server: Option<SocketAddr>,
}

/// The stream listeners besides the UDP socket: TCP on the SIP port, TLS on the TLS
/// port (with a certificate in [`DriverConfig::tls`]).
#[derive(Debug, Default)]
pub struct Listeners {
    pub tcp: Option<TcpListener>,
    pub tls: Option<TcpListener>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(5),
            learn_local_ip: None,
            tls: None,
            dns_server: None,
        }
    }
}

/// How the driver ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The core finished its shutdown: every registration removed or given up, every
    /// final status delivered or given up.
    Complete,
    /// The core did not finish within the grace (plus a margin): the driver stopped
    /// anyway. Only a bug in the core gets here; the core bounds its own shutdown.
    GraceExceeded,
}

/// Why the driver could not run.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The SIP socket could not be bound.
    #[error("cannot bind the SIP socket on udp {addr}: {source} (is another SIP server using the port?)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the OS refused.
        source: std::io::Error,
    },
    /// The socket handed to [`run`] has no local address (it is not bound).
    #[error("the SIP socket has no local address: {0}")]
    LocalAddr(std::io::Error),
    /// The DNS resolver could not be set up (e.g. no usable `/etc/resolv.conf`: set
    /// [`DriverConfig::dns_server`]).
    #[error(transparent)]
    Dns(#[from] driver_net::DnsError),
}

/// Binds the SIP socket. `buffer` (bytes, 0 for the OS default) sizes the socket
/// buffers: a burst of registrar answers must not overflow the default buffer.
pub fn bind_udp(addr: SocketAddr, buffer: usize) -> Result<UdpSocket, DriverError> {
    let err = |source| DriverError::Bind { addr, source };
    // Registers the socket with smol's reactor.
    UdpSocket::try_from(driver_net::sip_socket(addr, buffer).map_err(err)?).map_err(err)
}

/// What woke the loop: each wake leads to at most one mutation of the core.
enum Wake {
    Datagram(std::io::Result<(usize, SocketAddr)>),
    /// A registrar socket is readable.
    Registrar,
    Input(Input),
    /// A listener (TCP or TLS) accepted a connection.
    Accepted(std::io::Result<(TcpStream, SocketAddr)>, Transport),
    Timer,
    Shutdown,
    GraceExceeded,
}

/// Runs the core until `shutdown` resolves and the core has shut down.
///
/// `on_event` sees every [`Event`] (log it, count it, show it); the driver itself only
/// reacts to [`Event::ShutdownComplete`]. Backend requests and DNS lookups run as smol
/// tasks and come back to the loop through a channel, so the core is only ever touched
/// from here, one mutation at a time.
pub async fn run<B: Backend>(
    mut core: Controller,
    socket: UdpSocket,
    listeners: Listeners,
    backend: B,
    cfg: DriverConfig,
    shutdown: impl Future<Output = ()>,
    on_event: impl FnMut(&Event),
) -> Result<Exit, DriverError> {
    let local = socket.local_addr().map_err(|source| DriverError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let dns = driver_net::Dns::new(cfg.dns_server, SmolRuntime)?;
    // Registrar answers on sockets of their own, so a flood cannot crowd them out of
    // the kernel's buffer (see driver_net::RegistrarSockets).
    let mut registrars = driver_net::RegistrarSockets::<RegistrarUdp>::beside(&socket)
        .unwrap_or_else(|_| driver_net::RegistrarSockets::new(local, 0));
    let (tx, rx) = smol::channel::unbounded::<Input>();
    let mut shutdown = pin!(shutdown);
    let mut shutdown_asked = false;
    // The one timer for the core's deadline, re-armed only when the deadline changes.
    let mut timer = Timer::never();
    let mut armed: Option<Instant> = None;
    // The driver's own bound on a shutdown, a safety net behind the core's grace.
    let mut hard_stop = Timer::never();
    let mut buf = vec![0u8; 65_536];
    let mut inbox = driver_net::Inbox::default();
    // Set when a batch was read after the last drain: drain its answers, then go on.
    let mut read_since_wait = false;
    let mut outlet = Outlet {
        socket: &socket,
        streams: driver_net::Streams::new(SmolStreams { tx: tx.clone() }, cfg.tls.clone()),
        backend,
        tx,
        dns,
        learn_local_ip: cfg.learn_local_ip,
        on_event,
        complete: false,
    };
    loop {
        // Carry out every output of the last mutation (a batch's were carried out as
        // each datagram was handled).
        let deadline = outlet.drain(&mut core).await;
        if outlet.complete {
            return Ok(Exit::Complete);
        }
        registrars.sync(&core);
        // Reads before writes: whatever waits on the socket (one bounded batch) goes to
        // the core before an elapsed timer can release more paced sends. This also keeps
        // the clock check below from starving the socket.
        if !read_since_wait
            && read_batch(
                &registrars,
                &mut buf,
                &mut inbox,
                &mut core,
                local,
                None,
                &mut outlet,
            )
            .await
                > 0
        {
            read_since_wait = true;
            continue;
        }
        read_since_wait = false;
        // Check the clock before sleeping: an elapsed deadline is handled now, not
        // after a round through the reactor.
        if let Some(at) = deadline {
            let now = Instant::now();
            if at <= now {
                core.handle_timeout(now);
                continue;
            }
        }
        if armed != deadline {
            match deadline {
                Some(at) => timer.set_at(at),
                None => timer = Timer::never(),
            }
            armed = deadline;
        }

        let wake = next_wake(
            &socket,
            &registrars,
            &mut buf,
            &rx,
            &listeners,
            &mut timer,
            shutdown.as_mut(),
            shutdown_asked,
            &mut hard_stop,
        )
        .await;
        let now = Instant::now();
        match wake {
            Wake::Datagram(Ok((n, remote))) => {
                // The first of a batch: the rest is read without waiting.
                let first = buf.get(..n).unwrap_or_default().to_vec();
                read_batch(
                    &registrars,
                    &mut buf,
                    &mut inbox,
                    &mut core,
                    local,
                    Some((remote, &first)),
                    &mut outlet,
                )
                .await;
            }
            Wake::Registrar => {
                read_batch(
                    &registrars,
                    &mut buf,
                    &mut inbox,
                    &mut core,
                    local,
                    None,
                    &mut outlet,
                )
                .await;
            }
            Wake::Datagram(Err(e)) => {
                // ICMP port unreachable and friends surface here on some systems: the
                // transaction's own timers deal with the lost request.
                tracing::debug!(error = %e, "receiving on the SIP socket failed");
            }
            Wake::Input(input) => {
                outlet.streams.observe(&input);
                core.handle_input(now, input);
            }
            Wake::Accepted(Ok((stream, remote)), transport) => {
                let _ = stream.set_nodelay(true);
                outlet
                    .streams
                    .accepted(&mut core, now, stream, remote, transport, local);
            }
            Wake::Accepted(Err(e), _) => {
                tracing::debug!(error = %e, "accepting a SIP connection failed");
            }
            Wake::Timer => {
                // The timer fired for `armed`; it must be re-armed for the next one.
                armed = None;
                core.handle_timeout(now);
            }
            Wake::Shutdown => {
                shutdown_asked = true;
                tracing::info!(grace = ?cfg.shutdown_grace, "shutting down: un-registering every provider");
                core.handle_input(
                    now,
                    Input::Command(Command::Shutdown {
                        grace: cfg.shutdown_grace,
                    }),
                );
                // Just after the core's own end (the grace, or the calls' drain).
                let ends = core.shutdown_ends_at().unwrap_or(now + cfg.shutdown_grace);
                hard_stop.set_at(ends + Duration::from_millis(500));
            }
            Wake::GraceExceeded => {
                tracing::warn!("shutdown grace ran out before the core finished");
                return Ok(Exit::GraceExceeded);
            }
        }
    }
}

/// Drains the registrar sockets, then the main socket, without blocking (after
/// `first`, a datagram already read from the main socket), up to one batch ([`driver_net::MAX_BATCH`]), and hands it to the core in the order its
/// triage asks; returns how many datagrams the batch held.
async fn read_batch<B: Backend, F: FnMut(&Event)>(
    registrars: &driver_net::RegistrarSockets<RegistrarUdp>,
    buf: &mut [u8],
    inbox: &mut driver_net::Inbox,
    core: &mut Controller,
    local: SocketAddr,
    first: Option<(SocketAddr, &[u8])>,
    outlet: &mut Outlet<'_, B, F>,
) -> usize {
    if let Some((remote, payload)) = first {
        inbox.offer(core, remote, payload);
    }
    registrars.read_into(buf, inbox, core);
    while !inbox.full() {
        // One poll: the read is tried at once, and `None` means it would block.
        match smol::future::poll_once(outlet.socket.recv_from(buf)).await {
            Some(Ok((n, remote))) => inbox.offer(core, remote, buf.get(..n).unwrap_or_default()),
            Some(Err(e)) => {
                // ICMP port unreachable and friends surface here on some systems: the
                // transaction's own timers deal with the lost request.
                tracing::debug!(error = %e, "receiving on the SIP socket failed");
                break;
            }
            None => break,
        }
    }
    while inbox.deliver_next(core, local, Instant::now()) {
        outlet.drain(core).await;
    }
    inbox.finish(core)
}

/// Where the core's outputs go: the SIP socket, the backend, the resolver, `on_event`.
struct Outlet<'s, B, F> {
    socket: &'s UdpSocket,
    streams: driver_net::Streams<SmolStreams>,
    backend: B,
    tx: smol::channel::Sender<Input>,
    dns: driver_net::Dns<SmolRuntime>,
    learn_local_ip: Option<IpAddr>,
    on_event: F,
    /// The core reported [`Event::ShutdownComplete`]: the driver returns.
    complete: bool,
}

impl<B: Backend, F: FnMut(&Event)> Outlet<'_, B, F> {
    /// Carries out every queued output of the core; returns its next deadline.
    async fn drain(&mut self, core: &mut Controller) -> Option<Instant> {
        loop {
            match core.poll_output() {
                Output::Transmit(t) => {
                    let Some(t) = self.streams.transmit(t) else {
                        continue; // written on its connection
                    };
                    if let Err(e) = self.socket.send_to(&t.payload, t.remote).await {
                        tracing::warn!(remote = %t.remote, error = %e, "sending a SIP datagram failed");
                    }
                }
                Output::Connect(c) => self.streams.connect(c),
                Output::Close { conn } => self.streams.close(conn),
                Output::Backend(req) => {
                    let backend = self.backend.clone();
                    let tx = self.tx.clone();
                    smol::spawn(async move {
                        let reply = backend.perform(req.op).await;
                        // The loop is gone only after the shutdown: nothing to answer.
                        let _ = tx.send(Input::Backend { id: req.id, reply }).await;
                    })
                    .detach();
                }
                Output::Resolve(q) => {
                    let tx = self.tx.clone();
                    let dns = self.dns.clone();
                    let need_local = self.learn_local_ip;
                    smol::spawn(async move {
                        let result = dns.answer(&q, need_local).await;
                        let _ = tx.send(Input::Resolved { id: q.id, result }).await;
                    })
                    .detach();
                }
                Output::Event(e) => {
                    (self.on_event)(&e);
                    self.complete |= e == Event::ShutdownComplete;
                }
                Output::Timeout(at) => return at,
            }
        }
    }
}

/// Waits for whichever comes first: a datagram, a reply from a task, the core's
/// deadline, the shutdown request (once), or the shutdown's hard stop.
#[allow(clippy::too_many_arguments)]
async fn next_wake(
    socket: &UdpSocket,
    registrars: &driver_net::RegistrarSockets<RegistrarUdp>,
    buf: &mut [u8],
    rx: &Receiver<Input>,
    listeners: &Listeners,
    timer: &mut Timer,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    shutdown_asked: bool,
    hard_stop: &mut Timer,
) -> Wake {
    let datagram = async { Wake::Datagram(socket.recv_from(buf).await) };
    let registrar = async {
        registrars.readable().await;
        Wake::Registrar
    };
    let input = async {
        match rx.recv().await {
            Ok(input) => Wake::Input(input),
            // The loop holds a sender, so the channel never closes while it runs.
            Err(_) => std::future::pending().await,
        }
    };
    let accepted = async {
        match &listeners.tcp {
            Some(l) => Wake::Accepted(l.accept().await, Transport::Tcp),
            None => std::future::pending().await,
        }
    };
    let accepted_tls = async {
        match &listeners.tls {
            Some(l) => Wake::Accepted(l.accept().await, Transport::Tls),
            None => std::future::pending().await,
        }
    };
    let timer = async {
        timer.await;
        Wake::Timer
    };
    let shutdown = async {
        if shutdown_asked {
            // Resolved once already; a finished future must not be polled again.
            std::future::pending::<()>().await;
        }
        shutdown.await;
        Wake::Shutdown
    };
    let hard_stop = async {
        hard_stop.await;
        Wake::GraceExceeded
    };
    // `race` picks fairly among ready futures, so a flood of datagrams cannot starve
    // backend replies (and the clock check above keeps timers from starving).
    registrar
        .race(datagram)
        .race(input)
        .race(accepted)
        .race(accepted_tls)
        .race(timer)
        .race(shutdown)
        .race(hard_stop)
        .await
}

/// smol's half of the connection engine (driver_net::Streams).
#[derive(Clone)]
struct SmolStreams {
    tx: smol::channel::Sender<Input>,
}

impl driver_net::StreamRuntime for SmolStreams {
    type Tcp = TcpStream;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        smol::spawn(task).detach();
    }

    async fn connect(&self, remote: SocketAddr) -> std::io::Result<TcpStream> {
        let stream = TcpStream::connect(remote).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    fn local_addr(tcp: &TcpStream) -> std::io::Result<SocketAddr> {
        tcp.local_addr()
    }

    fn deliver(&self, input: Input) {
        // Unbounded: never full; closed only once the loop is gone.
        let _ = self.tx.try_send(input);
    }
}

/// A registrar's socket, registered with smol's reactor.
#[derive(Debug)]
struct RegistrarUdp(Async<std::net::UdpSocket>);

impl driver_net::RegistrarSocket for RegistrarUdp {
    fn adopt(socket: std::net::UdpSocket) -> std::io::Result<Self> {
        Async::new(socket).map(Self)
    }

    fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        // The std socket is non-blocking: a read with nothing waiting fails at once.
        self.0.get_ref().recv_from(buf)
    }

    fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        self.0.poll_readable(cx)
    }
}

//! The tokio driver: moves bytes, replies and time between the world and the sans-IO
//! core. It makes no SIP decision; every `if` about SIP lives in `sip-core`.

use crate::backend_http::HttpBackend;
use crate::events::EventLog;
use crate::store::{spawn_writer, StoreWrite};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use sip_core::stats::Stats;
use sip_core::Transport;
use sip_core::{
    BackendOp, BackendReply, Command, Controller, Event, Input, NoRoute, Output, ProviderSpec,
    RegistrationView, Route,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// Where providers come from and statuses go.
pub enum Backend {
    /// The backend HTTP API.
    Http(HttpBackend),
    /// File mode: providers from the config file, statuses to the store file. The list
    /// read at start answers the first fetch and is then dropped (ten thousand specs are
    /// megabytes); later fetches (`POST /api/sync`) re-read `reload_from`.
    File {
        providers: Option<Vec<ProviderSpec>>,
        reload_from: Option<PathBuf>,
    },
}

/// What the driver needs besides the core's own config.
pub struct DriverConfig {
    pub bind: SocketAddr,
    pub shutdown_grace: Duration,
    /// `Some(bind ip)` when Contact/Via must use the OS's source address per route.
    pub learn_local_ip: Option<IpAddr>,
    /// The store file: binding identities, and in file mode the statuses.
    pub store: PathBuf,
    /// TLS for connections (ours, and the TLS listener's); `None`: TLS connections
    /// fail to open, saying why.
    pub tls: Option<driver_net::TlsConfig>,
    /// The DNS server (`DNS_SERVER`, `dns.server`); `None`: the system's
    /// (`/etc/resolv.conf`, `/etc/hosts`).
    pub dns_server: Option<SocketAddr>,
}

/// The stream listeners besides the UDP socket: TCP on SIP_PORT, TLS on SIP_TLS_PORT
/// (when a certificate is configured).
#[derive(Debug, Default)]
pub struct Listeners {
    pub tcp: Option<TcpListener>,
    pub tls: Option<TcpListener>,
}

/// A question or order from the admin API to the running core. The admin server runs
/// in its own task; the driver answers between two mutations, so the answer is a
/// consistent snapshot.
#[derive(Debug)]
pub enum AdminCall {
    /// A snapshot of the registrations and counters.
    Snapshot(oneshot::Sender<Snapshot>),
    /// A command for the core (re-register one provider, resync).
    Command(Command),
    /// Where a call to `did` would go now.
    Destination {
        did: String,
        reply: oneshot::Sender<Result<Route, NoRoute>>,
    },
}

/// What the admin API shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every registration, by id.
    pub registrations: Vec<RegistrationView>,
    /// The core's counters.
    pub stats: Stats,
    /// The calls in progress, by id.
    pub calls: Vec<sip_core::CallView>,
    /// Whether the first provider list has been applied.
    pub synced: bool,
    /// Whether a shutdown has begun.
    pub shutting_down: bool,
}

/// How the driver ended.
#[derive(Debug)]
pub enum Exit {
    /// Shut down on a signal, after the core finished (or the grace ran out).
    Clean,
}

/// Why the driver could not run.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot bind the SIP socket on udp {addr}: {source} (is another SIP server using the port? set SIP_PORT or sip.port)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen for SIP over {what} {addr}: {source} (the port is taken; free it or set {setting})")]
    BindTcp {
        what: &'static str,
        setting: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
    #[error("{0} (or name a DNS server with DNS_SERVER or dns.server)")]
    Dns(#[from] driver_net::DnsError),
}

/// Binds the SIP socket with the configured buffer sizes: a burst of registrar answers
/// must not overflow the default buffer (that, not timers, limits Kamailio's uac).
pub fn bind_udp(addr: SocketAddr, buffer: usize) -> Result<UdpSocket, DriverError> {
    let err = |source| DriverError::Bind { addr, source };
    UdpSocket::from_std(driver_net::sip_socket(addr, buffer).map_err(err)?).map_err(err)
}

/// Listens for SIP over TCP on `addr` (the UDP socket's address and port: SIP_PORT is
/// both, CONTRACT.md §2).
pub async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, DriverError> {
    listen(addr, "tcp", "SIP_PORT or sip.port").await
}

/// Listens for SIP over TLS on `addr` (SIP_TLS_PORT, CONTRACT.md §7).
pub async fn bind_tls(addr: SocketAddr) -> Result<TcpListener, DriverError> {
    listen(addr, "tls", "SIP_TLS_PORT or sip.tls_port").await
}

async fn listen(
    addr: SocketAddr,
    what: &'static str,
    setting: &'static str,
) -> Result<TcpListener, DriverError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DriverError::BindTcp {
            what,
            setting,
            addr,
            source,
        })
}

/// Runs the core until a signal has led to a complete shutdown. `listeners` take the
/// providers' and callers' TCP and TLS connections.
pub async fn run(
    mut core: Controller,
    socket: UdpSocket,
    listeners: Listeners,
    backend: Backend,
    cfg: DriverConfig,
    log: EventLog,
    mut admin: mpsc::Receiver<AdminCall>,
) -> Result<Exit, DriverError> {
    use tokio::signal::unix::{signal, SignalKind};
    let dns = driver_net::Dns::new(cfg.dns_server, TokioRuntimeProvider::default())?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(DriverError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DriverError::Signal)?;
    let local = socket.local_addr().unwrap_or(cfg.bind);
    // Registrar answers on sockets of their own, so a flood cannot crowd them out of
    // the kernel's buffer (see driver_net::RegistrarSockets). Without them (an odd
    // socket) every answer simply shares the main socket, as before.
    let mut registrars = driver_net::RegistrarSockets::<RegistrarUdp>::beside(&socket)
        .unwrap_or_else(|_| driver_net::RegistrarSockets::new(local, 0));
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let (store, store_task) = {
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel();
        let (writer, task) = spawn_writer(cfg.store.clone(), ack_tx);
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some((id, result)) = ack_rx.recv().await {
                let reply = match result {
                    Ok(()) => BackendReply::Delivered,
                    Err(e) => BackendReply::Failed(e),
                };
                if tx.send(Input::Backend { id, reply }).is_err() {
                    break;
                }
            }
        });
        (writer, task)
    };
    let mut buf = vec![0u8; 65_536];
    let mut outlet = Outlet {
        socket: &socket,
        streams: driver_net::Streams::new(TokioStreams { tx: tx.clone() }, cfg.tls.clone()),
        backend,
        tx,
        store,
        log,
        dns,
        route_checks: BTreeMap::new(),
        learn_local_ip: cfg.learn_local_ip,
        finished: false,
    };
    let mut next_ticket = 0u64;
    let mut hard_deadline: Option<tokio::time::Instant> = None;
    let mut inbox = driver_net::Inbox::default();
    // Set when a batch was read after the last drain: drain its answers, then wait.
    let mut read_since_wait = false;
    loop {
        // Carry out every output of the last mutation (a batch's were carried out as
        // each datagram was handled).
        let deadline = outlet.drain(&mut core).await;
        if outlet.finished {
            // Let the store finish its last write before the process ends.
            drop(outlet);
            let _ = tokio::time::timeout(Duration::from_secs(2), store_task).await;
            return Ok(Exit::Clean);
        }
        registrars.sync(&core);
        // Reads before writes: whatever waits on the socket (one bounded batch) goes to
        // the core before an elapsed timer can release more paced sends, so that under
        // load registrars' answers are not left in the buffer behind our own requests.
        if !read_since_wait
            && read_batch(
                &registrars,
                &mut buf,
                &mut inbox,
                &mut core,
                local,
                &mut outlet,
            )
            .await
                > 0
        {
            read_since_wait = true;
            continue;
        }
        read_since_wait = false;
        // An elapsed deadline makes the sleep below ready at once; it still competes
        // fairly with the socket and the channels. (Handling it here and looping would
        // starve them while the pacer releases a send every few hundred microseconds.)
        let sleep_until = deadline.map(tokio::time::Instant::from_std);
        tokio::select! {
            r = socket.readable() => match r {
                Ok(()) => {
                    read_batch(&registrars, &mut buf, &mut inbox, &mut core, local, &mut outlet).await;
                }
                Err(e) => tracing::debug!(error = %e, "waiting on the SIP socket failed"),
            },
            () = registrars.readable() => {
                read_batch(&registrars, &mut buf, &mut inbox, &mut core, local, &mut outlet).await;
            }
            Some(input) = rx.recv() => {
                outlet.streams.observe(&input);
                core.handle_input(Instant::now(), input);
            }
            accepted = accept_or_forever(listeners.tcp.as_ref()) => {
                adopt(&mut core, &mut outlet, accepted, Transport::Tcp, local);
            }
            accepted = accept_or_forever(listeners.tls.as_ref()) => {
                adopt(&mut core, &mut outlet, accepted, Transport::Tls, local);
            }
            Some(call) = admin.recv() => match call {
                AdminCall::Snapshot(reply) => {
                    let _ = reply.send(Snapshot {
                        registrations: core.registrations(),
                        stats: core.stats().clone(),
                        calls: core.calls(),
                        synced: core.synced(),
                        shutting_down: core.shutting_down(),
                    });
                }
                AdminCall::Command(cmd) => core.handle_input(Instant::now(), Input::Command(cmd)),
                AdminCall::Destination { did, reply } => {
                    next_ticket += 1;
                    outlet.route_checks.insert(next_ticket, reply);
                    let cmd = Command::LookupDestination { did, ticket: next_ticket };
                    core.handle_input(Instant::now(), Input::Command(cmd));
                }
            },
            () = sleep_or_forever(sleep_until) => core.handle_timeout(Instant::now()),
            _ = sigterm.recv() => shutdown(&mut core, &cfg, &mut hard_deadline, "SIGTERM"),
            _ = sigint.recv() => shutdown(&mut core, &cfg, &mut hard_deadline, "SIGINT"),
            () = sleep_or_forever(hard_deadline) => {
                tracing::warn!("shutdown grace ran out before every registration was removed");
                return Ok(Exit::Clean);
            }
        }
    }
}

/// Drains the registrar sockets, then the main socket, without blocking, up to one
/// batch ([`driver_net::MAX_BATCH`]), and hands it to the core in the order its triage
/// asks, carrying out what each datagram caused before the next; returns how many
/// datagrams were read.
async fn read_batch(
    registrars: &driver_net::RegistrarSockets<RegistrarUdp>,
    buf: &mut [u8],
    inbox: &mut driver_net::Inbox,
    core: &mut Controller,
    local: SocketAddr,
    outlet: &mut Outlet<'_>,
) -> usize {
    registrars.read_into(buf, inbox, core);
    while !inbox.full() {
        match outlet.socket.try_recv_from(buf) {
            Ok((n, remote)) => inbox.offer(core, remote, buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                // ICMP port unreachable and friends surface here on some systems: the
                // transaction's own timers deal with the lost request.
                tracing::debug!(error = %e, "receiving on the SIP socket failed");
                break;
            }
        }
    }
    while inbox.deliver_next(core, local, Instant::now()) {
        outlet.drain(core).await;
    }
    inbox.finish(core)
}

/// Where the core's outputs go: the SIP socket, the backend or the store, the resolver,
/// the event log.
struct Outlet<'s> {
    socket: &'s UdpSocket,
    streams: driver_net::Streams<TokioStreams>,
    backend: Backend,
    tx: mpsc::UnboundedSender<Input>,
    store: mpsc::UnboundedSender<StoreWrite>,
    log: EventLog,
    dns: driver_net::Dns<TokioRuntimeProvider>,
    /// Routing checks waiting for the core's answer, by ticket.
    route_checks: BTreeMap<u64, oneshot::Sender<Result<Route, NoRoute>>>,
    learn_local_ip: Option<IpAddr>,
    /// The core reported the end of its shutdown: the driver returns.
    finished: bool,
}

impl Outlet<'_> {
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
                Output::Backend(req) => self.backend(req),
                Output::Resolve(q) => {
                    let tx = self.tx.clone();
                    let dns = self.dns.clone();
                    let need_local = self.learn_local_ip;
                    tokio::spawn(async move {
                        let result = dns.answer(&q, need_local).await;
                        let _ = tx.send(Input::Resolved { id: q.id, result });
                    });
                }
                Output::Event(e) => self.event(e),
                Output::Timeout(at) => return at,
            }
        }
    }

    fn backend(&mut self, req: sip_core::BackendRequest) {
        let tx = self.tx.clone();
        match &mut self.backend {
            Backend::Http(http) => {
                let http = http.clone();
                tokio::spawn(async move {
                    let reply = http.perform(&req.op).await;
                    let _ = tx.send(Input::Backend { id: req.id, reply });
                });
            }
            Backend::File {
                providers,
                reload_from,
            } => match req.op {
                BackendOp::FetchProviders => match (providers.take(), reload_from) {
                    (Some(list), _) => {
                        let _ = tx.send(Input::Backend {
                            id: req.id,
                            reply: BackendReply::Providers(list),
                        });
                    }
                    (None, Some(path)) => {
                        let path = path.clone();
                        tokio::spawn(async move {
                            let reply = reload(path).await;
                            let _ = tx.send(Input::Backend { id: req.id, reply });
                        });
                    }
                    (None, None) => {
                        let _ = tx.send(Input::Backend {
                            id: req.id,
                            reply: BackendReply::Providers(Vec::new()),
                        });
                    }
                },
                BackendOp::ReportStatus {
                    provider_id,
                    report,
                } => {
                    let _ = self.store.send(StoreWrite::Status {
                        id: req.id,
                        provider_id,
                        report,
                    });
                }
                // File mode's routing is in the core's config: it does not ask.
                BackendOp::FetchConfig | BackendOp::LookupDestination { .. } => {
                    let _ = tx.send(Input::Backend {
                        id: req.id,
                        reply: BackendReply::NotFound,
                    });
                }
            },
        }
    }

    fn event(&mut self, e: Event) {
        self.finished |= self.log.record(&e);
        match e {
            Event::BindingIdentity(b) => {
                let _ = self.store.send(StoreWrite::Binding(b));
            }
            Event::BindingForgotten { provider_id } => {
                let _ = self.store.send(StoreWrite::Forget(provider_id));
            }
            Event::DestinationFound { ticket, result, .. } => {
                if let Some(reply) = self.route_checks.remove(&ticket) {
                    let _ = reply.send(result);
                }
            }
            _ => {}
        }
    }
}

/// File mode's provider fetch after the first: the config file's `[[providers]]` now.
async fn reload(path: PathBuf) -> BackendReply {
    let read = tokio::task::spawn_blocking(move || crate::config::reload_providers(&path)).await;
    match read {
        Ok(Ok(list)) => BackendReply::Providers(list),
        Ok(Err(e)) => BackendReply::Failed(format!("re-reading the config file: {e}")),
        Err(e) => BackendReply::Failed(format!("re-reading the config file failed: {e}")),
    }
}

fn shutdown(
    core: &mut Controller,
    cfg: &DriverConfig,
    hard: &mut Option<tokio::time::Instant>,
    signal: &str,
) {
    if hard.is_some() {
        return;
    }
    tracing::info!(signal, grace = ?cfg.shutdown_grace, "shutting down: un-registering every provider");
    let now = Instant::now();
    core.handle_input(
        now,
        Input::Command(Command::Shutdown {
            grace: cfg.shutdown_grace,
        }),
    );
    // The core finishes within the grace (longer while calls drain); the driver's own
    // bound is a safety net just after the core's.
    let ends = core.shutdown_ends_at().unwrap_or(now + cfg.shutdown_grace);
    let after = ends.saturating_duration_since(now) + Duration::from_millis(500);
    *hard = Some(tokio::time::Instant::now() + after);
}

/// A connection a listener accepted: the core names it (or refuses it: a limit; it is
/// dropped, so closed) and the engine takes it over.
fn adopt(
    core: &mut Controller,
    outlet: &mut Outlet<'_>,
    accepted: std::io::Result<(tokio::net::TcpStream, SocketAddr)>,
    transport: Transport,
    local: SocketAddr,
) {
    match accepted {
        Ok((stream, remote)) => {
            let _ = stream.set_nodelay(true);
            let now = Instant::now();
            outlet
                .streams
                .accepted(core, now, stream.compat(), remote, transport, local);
        }
        Err(e) => tracing::debug!(error = %e, "accepting a SIP connection failed"),
    }
}

async fn accept_or_forever(
    tcp: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match tcp {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// tokio's half of the connection engine (driver_net::Streams).
#[derive(Clone)]
struct TokioStreams {
    tx: mpsc::UnboundedSender<Input>,
}

impl driver_net::StreamRuntime for TokioStreams {
    type Tcp = Compat<tokio::net::TcpStream>;

    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, task: F) {
        tokio::spawn(task);
    }

    async fn connect(&self, remote: SocketAddr) -> std::io::Result<Self::Tcp> {
        let stream = tokio::net::TcpStream::connect(remote).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream.compat())
    }

    fn local_addr(tcp: &Self::Tcp) -> std::io::Result<SocketAddr> {
        tcp.get_ref().local_addr()
    }

    fn deliver(&self, input: Input) {
        // The loop is gone only after the shutdown: nothing to deliver to.
        let _ = self.tx.send(input);
    }
}

async fn sleep_or_forever(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The wall-clock anchor for a new core.
pub fn anchors() -> (Instant, SystemTime) {
    (Instant::now(), SystemTime::now())
}

/// A registrar's socket, registered with tokio's reactor.
#[derive(Debug)]
struct RegistrarUdp(UdpSocket);

impl driver_net::RegistrarSocket for RegistrarUdp {
    fn adopt(socket: std::net::UdpSocket) -> std::io::Result<Self> {
        UdpSocket::from_std(socket).map(Self)
    }

    fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        self.0.try_recv_from(buf)
    }

    fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        self.0.poll_recv_ready(cx)
    }
}

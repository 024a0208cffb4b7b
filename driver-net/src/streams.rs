//! The connection engine both drivers share: one task per TCP or TLS connection
//! that reads what arrives and hands it to the core as [`Input::Received`], writes
//! what the core sends on it, and reports [`Input::Connected`] and [`Input::Closed`].
//! The core decides everything (which connection, when to close, every limit); this
//! only moves bytes. A runtime supplies what differs ([`StreamRuntime`]: its TCP type,
//! its spawn, and the way inputs reach its core loop); the rest is written once here,
//! over `futures-io`.

use crate::tls::TlsConfig;
use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::rustls::pki_types::ServerName;
use sip_core::{ConnId, Connect, Controller, Input, Transmit, Transport};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Messages queued for one connection's writer. A peer that reads nothing while more
/// pile up is dead to us: its connection is closed rather than buffered without bound.
pub const MAX_WRITE_QUEUE: usize = 1024;

/// Bytes read at a time from one connection.
const READ_CHUNK: usize = 16 * 1024;

/// What the connection engine needs from a runtime.
pub trait StreamRuntime: Clone + Send + Sync + 'static {
    /// The runtime's TCP stream, as `futures-io`.
    type Tcp: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static;

    /// Runs `task` in the background.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);

    /// Opens a TCP connection to `remote`.
    fn connect(&self, remote: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>> + Send;

    /// Our end of `tcp`.
    fn local_addr(tcp: &Self::Tcp) -> io::Result<SocketAddr>;

    /// Hands `input` to the core's loop (which passes it through [`Streams::observe`]
    /// first).
    fn deliver(&self, input: Input);
}

/// The connections of one driver, by the core's ids.
#[derive(Debug)]
pub struct Streams<R> {
    rt: R,
    writers: HashMap<ConnId, async_channel::Sender<Vec<u8>>>,
    tls: Option<TlsConfig>,
}

impl<R: StreamRuntime> Streams<R> {
    /// No connections yet, on runtime `rt`; TLS with `tls` (without it, TLS
    /// connections fail to open, saying why).
    pub fn new(rt: R, tls: Option<TlsConfig>) -> Self {
        Self {
            rt,
            writers: HashMap::new(),
            tls,
        }
    }

    /// Connections whose task is running.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }

    /// Opens the connection the core asked for ([`sip_core::Output::Connect`]): its
    /// task reports [`Input::Connected`] or [`Input::Closed`].
    pub fn connect(&mut self, c: Connect) {
        let (tx, rx) = async_channel::bounded(MAX_WRITE_QUEUE);
        self.writers.insert(c.conn, tx);
        let rt = self.rt.clone();
        let tls = match c.transport {
            Transport::Tls => match &self.tls {
                Some(t) => Some(t.client()),
                None => {
                    let error = "TLS is not configured in this driver".to_owned();
                    self.rt.deliver(Input::Closed {
                        conn: c.conn,
                        error: Some(error),
                    });
                    return;
                }
            },
            Transport::Tcp | Transport::Udp => None,
        };
        self.rt.spawn(async move {
            // The core's deadline may close it before the OS gives up on a SYN or the
            // peer finishes its handshake: the writer's channel closing ends the attempt.
            let opened = future::or(async { Some(open(&rt, &c, tls).await) }, async {
                while rx.recv().await.is_ok() {}
                None
            })
            .await;
            match opened {
                None => {}
                Some(Err(error)) => rt.deliver(Input::Closed {
                    conn: c.conn,
                    error: Some(error),
                }),
                Some(Ok((stream, local))) => {
                    rt.deliver(Input::Connected {
                        conn: c.conn,
                        local,
                    });
                    match stream {
                        Opened::Tcp(tcp) => pump(&rt, c.conn, tcp, rx).await,
                        Opened::Tls(tls) => pump(&rt, c.conn, *tls, rx).await,
                    }
                }
            }
        });
    }

    /// A connection a listener accepted from `remote`: the core names it, or refuses
    /// it (a limit: it is dropped here, so closed), and the engine takes it over.
    /// `fallback` stands for our end when the socket cannot say it.
    pub fn accepted(
        &mut self,
        core: &mut Controller,
        now: Instant,
        tcp: R::Tcp,
        remote: SocketAddr,
        transport: Transport,
        fallback: SocketAddr,
    ) {
        let local = R::local_addr(&tcp).unwrap_or(fallback);
        if let Some(conn) = core.accept(now, transport, local, remote) {
            self.adopt(conn, tcp, transport);
        }
    }

    /// Takes over a connection a listener accepted and the core named `conn`
    /// ([`sip_core::Controller::accept`]); on the TLS listener (`transport` TLS) the
    /// server handshake comes first. One that never finishes is closed by the core's
    /// first-frame deadline.
    pub fn adopt(&mut self, conn: ConnId, tcp: R::Tcp, transport: Transport) {
        let (tx, rx) = async_channel::bounded(MAX_WRITE_QUEUE);
        self.writers.insert(conn, tx);
        let rt = self.rt.clone();
        let server = match transport {
            Transport::Tls => match self.tls.as_ref().and_then(TlsConfig::server) {
                Some(server) => Some(server),
                None => {
                    self.writers.remove(&conn);
                    let error = Some("no TLS certificate configured".to_owned());
                    self.rt.deliver(Input::Closed { conn, error });
                    return;
                }
            },
            Transport::Tcp | Transport::Udp => None,
        };
        self.rt.spawn(async move {
            let Some(server) = server else {
                pump(&rt, conn, tcp, rx).await;
                return;
            };
            let accepted = future::or(
                async { Some(futures_rustls::TlsAcceptor::from(server).accept(tcp).await) },
                async {
                    while rx.recv().await.is_ok() {}
                    None
                },
            )
            .await;
            match accepted {
                None => {}
                Some(Ok(tls)) => pump(&rt, conn, tls, rx).await,
                Some(Err(e)) => rt.deliver(Input::Closed {
                    conn,
                    error: Some(format!("TLS handshake failed: {e}")),
                }),
            }
        });
    }

    /// Writes `payload` on `conn` (in order with earlier writes). A connection whose
    /// queue is full is closed and reported closed.
    pub fn write(&mut self, conn: ConnId, payload: Vec<u8>) {
        let Some(tx) = self.writers.get(&conn) else {
            return; // gone already; the core hears (or heard) of it
        };
        match tx.try_send(payload) {
            Ok(()) => {}
            Err(async_channel::TrySendError::Full(_)) => {
                self.writers.remove(&conn);
                self.rt.deliver(Input::Closed {
                    conn,
                    error: Some(format!(
                        "the peer reads nothing: {MAX_WRITE_QUEUE} messages waiting"
                    )),
                });
            }
            Err(async_channel::TrySendError::Closed(_)) => {
                self.writers.remove(&conn);
            }
        }
    }

    /// Carries out a [`Transmit`] on a connection; gives back one that is a datagram,
    /// for the driver's UDP socket.
    pub fn transmit(&mut self, t: Transmit) -> Option<Transmit> {
        match t.flow.conn() {
            Some(conn) => {
                self.write(conn, t.payload);
                None
            }
            None => Some(t),
        }
    }

    /// Closes `conn` once what was written on it has gone out (the core asked:
    /// [`sip_core::Output::Close`]; no [`Input::Closed`] follows).
    pub fn close(&mut self, conn: ConnId) {
        // Dropping the sender ends the task after it has written what is queued.
        self.writers.remove(&conn);
    }

    /// Sees every input on its way to the core: a connection reported closed is
    /// forgotten here too.
    pub fn observe(&mut self, input: &Input) {
        if let Input::Closed { conn, .. } = input {
            self.writers.remove(conn);
        }
    }
}

/// A connection of ours, up.
enum Opened<T> {
    Tcp(T),
    /// Boxed: rustls' state is large.
    Tls(Box<futures_rustls::client::TlsStream<T>>),
}

/// Opens the TCP connection `c` asks for and, with `tls`, does the TLS handshake with
/// its `server_name` (else its IP) checked against the certificate: the stream and our
/// end, or what went wrong.
async fn open<R: StreamRuntime>(
    rt: &R,
    c: &Connect,
    tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
) -> Result<(Opened<R::Tcp>, SocketAddr), String> {
    let tcp = rt
        .connect(c.remote)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", c.remote))?;
    let local = R::local_addr(&tcp).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let Some(config) = tls else {
        return Ok((Opened::Tcp(tcp), local));
    };
    let name = c
        .server_name
        .clone()
        .unwrap_or_else(|| c.remote.ip().to_string());
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| format!("{name:?} cannot be checked against a certificate: {e}"))?;
    let stream = futures_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {name} ({}) failed: {e}", c.remote))?;
    Ok((Opened::Tls(Box::new(stream)), local))
}

/// Reads from and writes to one connection until either side ends it.
async fn pump<R: StreamRuntime, S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin>(
    rt: &R,
    conn: ConnId,
    mut tcp: S,
    rx: async_channel::Receiver<Vec<u8>>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        // Either may be ready at once, each time: `race` picks fairly, so a peer that
        // floods us does not starve our writes to it (nor the reverse).
        let step = future::race(async { Step::Read(tcp.read(&mut buf).await) }, async {
            Step::Write(rx.recv().await.ok())
        })
        .await;
        match step {
            Step::Read(Ok(0)) => {
                rt.deliver(Input::Closed { conn, error: None });
                return;
            }
            Step::Read(Ok(n)) => rt.deliver(Input::Received {
                conn,
                bytes: buf.get(..n).unwrap_or_default().to_vec(),
            }),
            Step::Read(Err(e)) => {
                rt.deliver(Input::Closed {
                    conn,
                    error: Some(e.to_string()),
                });
                return;
            }
            Step::Write(Some(payload)) => {
                if let Err(e) = tcp.write_all(&payload).await {
                    rt.deliver(Input::Closed {
                        conn,
                        error: Some(format!("writing failed: {e}")),
                    });
                    return;
                }
            }
            Step::Write(None) => {
                // The core closed it: what was queued has been written.
                let _ = tcp.flush().await;
                let _ = tcp.close().await;
                return;
            }
        }
    }
}

enum Step {
    Read(io::Result<usize>),
    Write(Option<Vec<u8>>),
}

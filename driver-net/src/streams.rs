//! The connection engine both drivers share: one task per TCP (later TLS) connection
//! that reads what arrives and hands it to the core as [`Input::Received`], writes
//! what the core sends on it, and reports [`Input::Connected`] and [`Input::Closed`].
//! The core decides everything (which connection, when to close, every limit); this
//! only moves bytes. A runtime supplies what differs ([`StreamRuntime`]: its TCP type,
//! its spawn, and the way inputs reach its core loop); the rest is written once here,
//! over `futures-io`.

use futures_lite::future;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sip_core::{ConnId, Connect, Input, Transmit, Transport};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;

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
}

impl<R: StreamRuntime> Streams<R> {
    /// No connections yet, on runtime `rt`.
    pub fn new(rt: R) -> Self {
        Self {
            rt,
            writers: HashMap::new(),
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
        self.rt.spawn(async move {
            if c.transport != Transport::Tcp {
                let error = format!("{} is not supported by this version", c.transport.as_str());
                rt.deliver(Input::Closed {
                    conn: c.conn,
                    error: Some(error),
                });
                return;
            }
            // The core's deadline may close it before the OS gives up on a SYN: the
            // writer's channel closing ends the attempt.
            let opened = future::or(async { Some(rt.connect(c.remote).await) }, async {
                while rx.recv().await.is_ok() {}
                None
            })
            .await;
            let tcp = match opened {
                None => return,
                Some(Err(e)) => {
                    let error = format!("cannot connect to {}: {e}", c.remote);
                    rt.deliver(Input::Closed {
                        conn: c.conn,
                        error: Some(error),
                    });
                    return;
                }
                Some(Ok(tcp)) => tcp,
            };
            let local = R::local_addr(&tcp).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
            rt.deliver(Input::Connected {
                conn: c.conn,
                local,
            });
            pump(&rt, c.conn, tcp, rx).await;
        });
    }

    /// Takes over a connection a listener accepted and the core named `conn`
    /// ([`sip_core::Controller::accept`]).
    pub fn adopt(&mut self, conn: ConnId, tcp: R::Tcp) {
        let (tx, rx) = async_channel::bounded(MAX_WRITE_QUEUE);
        self.writers.insert(conn, tx);
        let rt = self.rt.clone();
        self.rt.spawn(async move { pump(&rt, conn, tcp, rx).await });
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

/// Reads from and writes to one connection until either side ends it.
async fn pump<R: StreamRuntime>(
    rt: &R,
    conn: ConnId,
    mut tcp: R::Tcp,
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

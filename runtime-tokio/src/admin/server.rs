//! The admin API's accept loop: a cap on its connections, a header-read timeout and an
//! idle keep-alive timeout, none of which `axum::serve` offers.
//!
//! When the cap is reached a new connection evicts the oldest one that is not being
//! answered (still sending its request head, or idle between requests), so a probe gets
//! through however many slow connections are held: it sends its request at once and is
//! the newest. When every connection is being answered the new one is closed at once.

use super::activity::{Activity, Phase, Watched};
use axum::Router;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A client must send its whole request head within this time of connecting (or of its
/// first byte after idling): a slow-loris client holds a descriptor and ≈18 KB for at
/// most this long. Probes and scrapes send their few hundred bytes at once; 10 s is what
/// a client on a congested link still makes.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A kept-alive connection with no next request is closed after this. An idle one holds a
/// descriptor and ≈18 KB; Prometheus, which keeps its connection between scrapes (every
/// 15–60 s), at worst reconnects once per scrape, which costs less on loopback or a
/// cluster network than holding connections for clients that went away.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// After a failed accept that is not about one connection (out of descriptors), wait
/// this long before the next: retrying at once would spin a core.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// hyper's read (and write-queue) buffer bound per connection, instead of its ≈400 KB
/// default: a request head here is a few hundred bytes, and the cap times this bounds
/// what slow clients can make trunkline hold.
const MAX_BUF: usize = 16 * 1024;

/// The admin server's bounds. Only tests shorten the timeouts; the cap comes from the
/// descriptor budget (see [`super::fd_budget`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// At most this many admin connections are open at once.
    pub(crate) max_connections: usize,
    /// See [`HEADER_READ_TIMEOUT`].
    pub(crate) header_read: Duration,
    /// See [`IDLE_TIMEOUT`].
    pub(crate) idle: Duration,
}

impl Limits {
    /// The production timeouts with a cap of `max_connections` (at least one).
    pub(crate) fn with_cap(max_connections: usize) -> Self {
        Self {
            max_connections: max_connections.max(1),
            header_read: HEADER_READ_TIMEOUT,
            idle: IDLE_TIMEOUT,
        }
    }
}

/// One open connection as the accept loop sees it.
struct Entry {
    activity: Arc<Activity>,
    /// Dropping it tells the connection's task to close.
    evict: oneshot::Sender<()>,
    /// Resolves once that task has closed its socket.
    closed: oneshot::Receiver<()>,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    next_id: u64,
    open: BTreeMap<u64, Entry>,
}

type Shared = Arc<Mutex<Registry>>;

/// What a connection's task holds of the registry.
struct Admitted {
    /// Resolves when the connection is evicted.
    evicted: oneshot::Receiver<()>,
    /// Takes the connection out of the registry when the task ends.
    leave: Leave,
    /// The evicted connection's close, to await before accepting again.
    room: Option<oneshot::Receiver<()>>,
}

/// Registers a new connection, evicting the oldest one that is not being answered when
/// the cap is reached; `None` when every open connection is being answered.
fn admit(registry: &Shared, cap: usize, activity: &Arc<Activity>) -> Option<Admitted> {
    let mut r = registry.lock().unwrap_or_else(PoisonError::into_inner);
    let mut room = None;
    if r.open.len() >= cap {
        let oldest_waiting = r
            .open
            .iter()
            .find(|(_, e)| e.activity.phase() != Phase::Busy)
            .map(|(id, _)| *id)?;
        if let Some(e) = r.open.remove(&oldest_waiting) {
            drop(e.evict);
            room = Some(e.closed);
        }
        tracing::debug!(
            cap,
            "admin API: connection cap reached; closed the oldest connection without a request in service"
        );
    }
    let id = r.next_id;
    r.next_id += 1;
    let (evict, evicted) = oneshot::channel();
    let (closed_tx, closed) = oneshot::channel();
    r.open.insert(
        id,
        Entry {
            activity: Arc::clone(activity),
            evict,
            closed,
        },
    );
    Some(Admitted {
        evicted,
        leave: Leave {
            registry: Arc::clone(registry),
            id,
            _closed: closed_tx,
        },
        room,
    })
}

/// Takes a finished connection out of the registry (a no-op when it was evicted) and,
/// by dropping `_closed`, tells an evicting accept that the socket is closed.
struct Leave {
    registry: Shared,
    id: u64,
    _closed: oneshot::Sender<()>,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open
            .remove(&self.id);
    }
}

/// Serves `router` on `listener` within `limits` until the runtime stops.
pub(crate) async fn serve(listener: TcpListener, router: Router, limits: Limits) {
    let registry = Shared::default();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The timeouts are the watchdog's (see activity.rs); hyper's would also cut idle
    // keep-alive connections at the header-read limit.
    http.header_read_timeout(None).max_buf_size(MAX_BUF);
    let http = Arc::new(http);
    let mut accept_failing = false;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                accept_failing = false;
                stream
            }
            Err(e) => {
                // A connection reset before it was accepted concerns that connection
                // alone; anything else (EMFILE, ENFILE, ENOMEM) needs a pause.
                if !is_about_one_connection(&e) {
                    if !accept_failing {
                        tracing::warn!(error = %e, "admin API: cannot accept connections; retrying");
                        accept_failing = true;
                    }
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
                continue;
            }
        };
        let activity = Activity::new();
        let Some(admitted) = admit(&registry, limits.max_connections, &activity) else {
            tracing::debug!(
                cap = limits.max_connections,
                "admin API: connection cap reached and every connection is being answered; closed the new one"
            );
            continue;
        };
        let room = admitted.room;
        tokio::spawn(connection(
            stream,
            activity,
            admitted.evicted,
            admitted.leave,
            router.clone(),
            Arc::clone(&http),
            limits,
        ));
        // The evicted socket is closed before the next accept: the admin side never
        // holds more than the cap plus the listener and the one connection just taken.
        if let Some(room) = room {
            let _ = room.await;
        }
    }
}

fn is_about_one_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

async fn connection(
    stream: tokio::net::TcpStream,
    activity: Arc<Activity>,
    evicted: oneshot::Receiver<()>,
    _leave: Leave,
    router: Router,
    http: Arc<hyper::server::conn::http1::Builder>,
    limits: Limits,
) {
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&activity)));
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request| {
            let in_service = activity.request_started();
            // A Router is always ready: calling it needs no poll_ready first.
            let answer = tower_service::Service::call(&mut router.clone(), request);
            async move {
                let response = answer.await;
                drop(in_service);
                response
            }
        })
    };
    let served = http.serve_connection(io, service);
    // Dropping `served` closes the socket: that is how both timeouts and eviction end it.
    tokio::select! {
        result = served => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "admin API: connection ended with an error");
            }
        }
        phase = activity.expired(limits.header_read, limits.idle) => match phase {
            Phase::ReadingHead => tracing::debug!(
                limit = ?limits.header_read,
                "admin API: closed a connection whose request head did not arrive in time"
            ),
            _ => tracing::debug!(limit = ?limits.idle, "admin API: closed an idle keep-alive connection"),
        },
        _ = evicted => {}
    }
}

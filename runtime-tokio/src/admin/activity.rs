//! What one admin connection is doing, for its two timeouts and for eviction.
//!
//! A connection is reading a request head from its accept (or from the first byte after
//! an idle spell) until the head is complete, busy while a request is answered, and idle
//! between requests. hyper's own header-read timeout also runs while a kept-alive
//! connection waits for its next request, so it cannot tell the two apart: the socket is
//! wrapped here to see the first byte of each request instead.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Where a connection is between two requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Receiving a request head: since the accept, or since the first byte after idling.
    ReadingHead,
    /// At least one request is being answered.
    Busy,
    /// Kept alive after an answer, nothing of the next request received yet.
    Idle,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Instant,
}

/// The phase of one connection, shared by its socket, its service and its watchdog.
#[derive(Debug)]
pub(super) struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    /// A connection just accepted: its request head is due from now on.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                phase: Phase::ReadingHead,
                since: Instant::now(),
            }),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the phase half-written: take it as it is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, phase: Phase) {
        let mut s = self.state();
        if s.phase != phase {
            s.phase = phase;
            s.since = Instant::now();
            drop(s);
            self.changed.notify_one();
        }
    }

    /// The current phase; eviction only takes connections that are not busy.
    pub(super) fn phase(&self) -> Phase {
        self.state().phase
    }

    /// Bytes arrived: after an idle spell they start the next request head.
    fn bytes_arrived(&self) {
        if self.phase() == Phase::Idle {
            self.set(Phase::ReadingHead);
        }
    }

    /// A complete request head reached the router; busy until the guard is dropped.
    pub(super) fn request_started(self: &Arc<Self>) -> InService {
        self.set(Phase::Busy);
        InService(Arc::clone(self))
    }

    /// Resolves with the phase that outlasted its limit: `header_read` for a head that
    /// is not complete, `idle` for a kept-alive connection with no next request. A busy
    /// connection never expires here (every handler bounds its own wait).
    pub(super) async fn expired(&self, header_read: Duration, idle: Duration) -> Phase {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the state is read, so no change is missed between the two.
            changed.as_mut().enable();
            let (phase, since) = {
                let s = self.state();
                (s.phase, s.since)
            };
            let limit = match phase {
                Phase::ReadingHead => header_read,
                Phase::Idle => idle,
                Phase::Busy => {
                    changed.await;
                    continue;
                }
            };
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(since + limit) => {
                    let s = self.state();
                    if s.phase == phase && s.since == since {
                        return phase;
                    }
                }
            }
        }
    }
}

/// A request being answered; dropping it (answer produced, or the request abandoned)
/// makes the connection idle again once no other request is in service.
pub(super) struct InService(Arc<Activity>);

impl Drop for InService {
    fn drop(&mut self) {
        // HTTP/1 answers one request at a time, so the end of one is the end of all.
        self.0.set(Phase::Idle);
    }
}

/// The admin socket, telling its [`Activity`] when bytes arrive.
pub(super) struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    pub(super) fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self { stream, activity }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

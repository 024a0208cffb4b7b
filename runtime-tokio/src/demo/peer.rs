//! One loop that runs any sans-IO peer model of `peer-models` on a real UDP socket,
//! printing each datagram in the timeline: the registrar, the provider placing the
//! call and the LiveKit-like UAS all run through it.

use super::Timeline;
use peer_models::livekit::LiveKit;
use peer_models::provider::Provider;
use peer_models::registrar::{Datagram, Registrar};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// What [`serve`] needs of a model: datagrams in, datagrams out, and its next deadline.
pub trait Model: Send + 'static {
    /// One datagram from `from`.
    fn datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Vec<Datagram>;
    /// Its next deadline, if any.
    fn deadline(&self) -> Option<Instant>;
    /// The deadline came.
    fn timeout(&mut self, now: Instant) -> Vec<Datagram>;
}

macro_rules! model {
    ($t:ty) => {
        impl Model for $t {
            fn datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Vec<Datagram> {
                self.handle_datagram(now, from, bytes)
            }
            fn deadline(&self) -> Option<Instant> {
                self.poll_timeout()
            }
            fn timeout(&mut self, now: Instant) -> Vec<Datagram> {
                self.handle_timeout(now)
            }
        }
    };
}
model!(Registrar);
model!(Provider);
model!(LiveKit);

/// A model on its socket: `wake` makes the loop look at the model's deadline again
/// (after the demo itself gave the model work, such as a call to place).
pub struct Served<M> {
    /// The model, shared with the demo.
    pub model: Arc<Mutex<M>>,
    /// Its socket.
    pub socket: Arc<UdpSocket>,
    /// See the type's docs.
    pub wake: Arc<Notify>,
}

impl<M: Model> Served<M> {
    /// The model `make` builds for its address, on a fresh loopback socket.
    pub async fn bind(make: impl FnOnce(SocketAddr) -> M) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let model = make(socket.local_addr()?);
        Ok(Self {
            model: Arc::new(Mutex::new(model)),
            socket: Arc::new(socket),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Its address.
    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends what the model gave the demo directly (the INVITE of a call it placed).
    pub async fn send(&self, out: Vec<Datagram>, tl: Timeline, who: &str) {
        for (to, bytes) in out {
            tl.say(who, &super::describe(&bytes, false));
            let _ = self.socket.send_to(&bytes, to).await;
        }
        self.wake.notify_one();
    }

    /// Runs the model until the task is aborted; `who` names it in the timeline;
    /// `changed` is notified after every datagram, so the demo can wait for an outcome.
    pub fn spawn(
        &self,
        tl: Timeline,
        who: &'static str,
        changed: Arc<Notify>,
    ) -> tokio::task::JoinHandle<()> {
        let (model, socket, wake) = (self.model.clone(), self.socket.clone(), self.wake.clone());
        tokio::spawn(serve(model, socket, wake, changed, tl, who))
    }
}

async fn serve<M: Model>(
    model: Arc<Mutex<M>>,
    socket: Arc<UdpSocket>,
    wake: Arc<Notify>,
    changed: Arc<Notify>,
    tl: Timeline,
    who: &'static str,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let deadline = model.lock().ok().and_then(|m| m.deadline());
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        let out = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    tl.say(who, &super::describe(bytes, true));
                    model.lock().map(|mut m| m.datagram(Instant::now(), from, bytes)).unwrap_or_default()
                }
                Err(_) => continue,
            },
            () = sleep => model.lock().map(|mut m| m.timeout(Instant::now())).unwrap_or_default(),
            () = wake.notified() => continue,
        };
        for (to, bytes) in out {
            tl.say(who, &super::describe(&bytes, false));
            let _ = socket.send_to(&bytes, to).await;
        }
        changed.notify_waiters();
    }
}

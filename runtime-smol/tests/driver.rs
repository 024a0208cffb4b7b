//! The smol driver against a small registrar of our own on loopback: fast, no peer to
//! install. It registers through a digest challenge, reports the status, and on the
//! shutdown future un-registers (Expires: 0) and returns `Exit::Complete`.
//!
//! The registrar here is deliberately dumb (any credentials pass): what is tested is
//! the driver's loop — datagrams in and out, backend tasks, DNS tasks, timers and the
//! shutdown path — not SIP, which the core's own tests cover.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use runtime_smol::{bind_udp, run, DriverConfig, Exit, StaticBackend};
use sip_core::message::{parse, response_to, Message};
use sip_core::{Config, Controller, Event, ProviderSpec, RegisterStatus, Secret};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// Safety net for every wait on an event: a hang becomes a failure, nothing is timed.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// What the fake registrar saw: (had credentials, Expires header) per REGISTER.
type Seen = mpsc::Receiver<(bool, Option<u32>)>;

/// A registrar that challenges requests without credentials and accepts the rest,
/// granting 60 s (or removing the binding for Expires: 0).
fn fake_registrar() -> (SocketAddr, Seen) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Only so that the thread ends after the test; no assertion depends on it.
    socket.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let Ok(Message::Request(req)) = parse(buf.get(..n).unwrap_or_default()) else {
                continue;
            };
            if req.method != "REGISTER" {
                continue;
            }
            let authed = req
                .headers
                .get("Authorization")
                .is_some_and(|a| a.starts_with("Digest ") && a.contains("username=\"alice\""));
            let expires = req.headers.expires();
            let _ = tx.send((authed, expires));
            let resp = if !authed {
                response_to(&req, 401, "Unauthorized", Some("reg")).header(
                    "WWW-Authenticate",
                    "Digest realm=\"smol.test\", nonce=\"n1\", qop=\"auth\", algorithm=MD5",
                )
            } else if expires == Some(0) {
                response_to(&req, 200, "OK", Some("reg"))
            } else {
                let contact = req.headers.get("Contact").unwrap_or_default().to_owned();
                response_to(&req, 200, "OK", Some("reg"))
                    .header("Contact", format!("{contact};expires=60"))
            };
            let _ = socket.send_to(&resp.to_bytes(), from);
        }
    });
    (addr, rx)
}

#[test]
fn registers_reports_and_unregisters_on_the_shutdown_future() {
    let (registrar, seen) = fake_registrar();
    let backend = StaticBackend::new(vec![ProviderSpec {
        id: "p-alice".into(),
        name: "alice".into(),
        host: registrar.ip().to_string(),
        port: Some(i64::from(registrar.port())),
        username: "alice".into(),
        password: Secret::new("secret"),
        ..ProviderSpec::default()
    }]);

    let socket = bind_udp("127.0.0.1:0".parse().unwrap(), 0).unwrap();
    let local = socket.local_addr().unwrap();
    let cfg = Config {
        local_port: local.port(),
        contact_host: Some("127.0.0.1".into()),
        sync_interval: None,
        ..Config::default()
    };
    let core = Controller::new(cfg, 1, Instant::now(), SystemTime::now());
    let (events_tx, events) = mpsc::channel::<Event>();
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let driver_backend = backend.clone();
    let driver = std::thread::spawn(move || {
        smol::block_on(run(
            core,
            socket,
            Default::default(),
            driver_backend,
            DriverConfig::default(),
            async move {
                let _ = stopped.recv().await;
            },
            move |e| {
                let _ = events_tx.send(e.clone());
            },
        ))
    });

    // Registered, after answering the challenge.
    wait_for(&events, "alice registered", |e| {
        matches!(e, Event::RegistrationChanged(v)
            if v.id == "p-alice" && v.status == RegisterStatus::Registered)
    });
    let first = seen.recv_timeout(WAIT_LIMIT).unwrap();
    let second = seen.recv_timeout(WAIT_LIMIT).unwrap();
    assert_eq!(
        first,
        (false, Some(3600)),
        "the first REGISTER carries no credentials"
    );
    assert_eq!(
        second,
        (true, Some(3600)),
        "the answer to the challenge does"
    );

    // Shutdown through the future: un-REGISTER, final report, then the driver returns.
    stop.send_blocking(()).unwrap();
    let (authed, expires) = seen.recv_timeout(WAIT_LIMIT).unwrap();
    assert!(authed, "the un-REGISTER reuses the credentials");
    assert_eq!(expires, Some(0), "the shutdown sends Expires: 0");
    wait_for(&events, "ShutdownComplete", |e| {
        *e == Event::ShutdownComplete
    });
    let exit = driver.join().expect("the driver thread panicked").unwrap();
    assert_eq!(exit, Exit::Complete);

    let statuses = backend.statuses();
    let alice = statuses.get("p-alice").expect("a status for p-alice");
    assert_eq!(alice.register_status, RegisterStatus::Pending, "{alice:?}");
    assert!(
        alice
            .register_error
            .as_deref()
            .is_some_and(|e| e.contains("unregistered")),
        "{alice:?}"
    );
}

/// Waits for the first event matching `pred`, failing with what was seen instead.
fn wait_for(events: &mpsc::Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) {
    let start = Instant::now();
    let mut seen = Vec::new();
    while let Some(left) = WAIT_LIMIT.checked_sub(start.elapsed()) {
        match events.recv_timeout(left) {
            Ok(e) if pred(&e) => return,
            Ok(e) => seen.push(e),
            Err(_) => break,
        }
    }
    panic!("no event {what} within {WAIT_LIMIT:?}; seen: {seen:#?}");
}

//! `trunkline demo`: a self-contained tour on loopback that needs nothing installed.
//!
//! It starts the registrar model of `peer-models` (digest SHA-256 with an MD5 fallback, a
//! short 6 s grant so refreshes happen during the tour) on a real UDP socket, the
//! backend model behind a real HTTP server, and trunkline itself — the same
//! core and tokio driver as `trunkline run`, in backend mode. Three providers: one
//! valid, one with a wrong password, one invalid entry. It prints the timeline as the
//! registrar and the backend see it, waits for a refresh, shuts trunkline down (which
//! un-registers) and prints the outcome. Once alice is registered, a provider model
//! calls a DID over alice's trunk and trunkline bridges it to a LiveKit-like UAS
//! (`call.rs`); the caller hangs up, and both legs show in the timeline.

mod call;
mod peer;

use crate::backend_http::HttpBackend;
use crate::driver::{self, AdminCall, Backend, DriverConfig};
use crate::events::EventLog;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use peer_models::backend::Backend as BackendModel;
use peer_models::digest::Algorithm;
use peer_models::registrar::{Registrar, RegistrarConfig};
use sip_core::message::{self, Message};
use sip_core::{Command, Config, Controller, ProviderSpec, Secret};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// Why the demo could not complete.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot open a loopback socket: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Driver(#[from] driver::DriverError),
    #[error(transparent)]
    Client(#[from] crate::backend_http::ClientError),
    #[error("the demo did not reach its end within {0:?}: {1}")]
    Stalled(Duration, String),
}

const REALM: &str = "demo.trunkline";
const GRANT: u32 = 6;
const API_KEY: &str = "demo-api-key";

/// Prints one timeline line with the time since the start.
#[derive(Clone, Copy)]
struct Timeline(Instant);

impl Timeline {
    fn say(&self, who: &str, what: &str) {
        println!(
            "+{:>6.3}s  {who:<9}  {what}",
            self.0.elapsed().as_secs_f64()
        );
    }
}

fn providers(registrar: SocketAddr) -> Vec<ProviderSpec> {
    let p = |id: &str, user: &str, password: &str| ProviderSpec {
        id: id.into(),
        name: format!("Demo {id}"),
        host: registrar.ip().to_string(),
        port: Some(i64::from(registrar.port())),
        transport: Some("SIP_TRANSPORT_UDP".into()),
        username: user.into(),
        password: Secret::new(password),
        expires: Some(3600),
        ..ProviderSpec::default()
    };
    vec![
        p("alice", "alice", "alice-secret"),
        p("bob", "bob", "not-bobs-password"),
        p("carol", "carol\r\nX-Injected: yes", "carol-secret"),
    ]
}

/// A one-line account of a SIP message for the timeline; `received`: it came in
/// (`<-`) rather than went out (`->`).
fn describe(bytes: &[u8], received: bool) -> String {
    let arrow = if received { "<-" } else { "->" };
    match message::parse(bytes) {
        Ok(Message::Request(r)) if r.method == "REGISTER" => {
            let cseq = r.headers.cseq().map_or(0, |(n, _)| n);
            let expires = r.headers.expires().unwrap_or(0);
            let user = uri_user(r.headers.get("From"));
            let auth = match r.headers.get("Authorization") {
                Some(a) => {
                    let alg = a
                        .split(',')
                        .find_map(|p| p.trim().strip_prefix("algorithm="))
                        .unwrap_or("MD5");
                    format!("Digest {alg}")
                }
                None => "no credentials".to_owned(),
            };
            let what = if expires == 0 {
                "un-REGISTER"
            } else {
                "REGISTER"
            };
            format!("{arrow} {what} {user} CSeq {cseq} Expires {expires} ({auth})")
        }
        Ok(Message::Request(r)) => {
            let mut line = format!(
                "{arrow} {} {} (Call-ID {})",
                r.method,
                r.uri,
                short(r.headers.call_id())
            );
            if r.method == "INVITE" {
                line.push_str(&format!(
                    "\n{:21}From {} To {}",
                    "",
                    uri_user(r.headers.get("From")),
                    uri_user(r.headers.get("To"))
                ));
                for (name, value) in r.headers.iter() {
                    if name.to_ascii_lowercase().starts_with("x-trunkline-") {
                        line.push_str(&format!("\n{:21}{name}: {value}", ""));
                    }
                }
            }
            line
        }
        Ok(Message::Response(r)) => {
            let method = r
                .headers
                .cseq()
                .map(|(_, m)| m.to_owned())
                .unwrap_or_default();
            let detail = match r.status {
                401 | 407 if method == "REGISTER" => {
                    let algs: Vec<String> = r
                        .headers
                        .get_all("WWW-Authenticate")
                        .filter_map(|c| sip_core::auth::parse_challenge(c).ok())
                        .map(|c| c.algorithm.to_string())
                        .collect();
                    format!(" (challenges: {})", algs.join(", "))
                }
                200 if method == "REGISTER" => r
                    .headers
                    .contacts()
                    .first()
                    .and_then(|c| c.expires)
                    .map_or_else(String::new, |e| format!(" (granted {e} s)")),
                _ if method == "REGISTER" => String::new(),
                _ if r.body.is_empty() => format!(" ({method})"),
                _ => format!(" ({method}, with SDP)"),
            };
            format!("{arrow} {} {}{detail}", r.status, r.reason)
        }
        Err(e) => format!("?? unparsable datagram: {e}"),
    }
}

/// The user part of the URI in a From/To header value, or `?`.
fn uri_user(header: Option<&str>) -> String {
    header
        .and_then(|f| f.split("sip:").nth(1))
        .and_then(|f| f.split('@').next())
        .unwrap_or("?")
        .to_owned()
}

/// The first characters of a Call-ID: enough to tell the two legs apart.
fn short(call_id: Option<&str>) -> String {
    call_id.unwrap_or("?").chars().take(12).collect()
}

/// The backend model behind a real HTTP server; `changed` is notified on every request.
async fn serve_backend(
    listener: tokio::net::TcpListener,
    model: Arc<Mutex<BackendModel>>,
    changed: Arc<Notify>,
    tl: Timeline,
) {
    let handler = move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
        let model = model.clone();
        let changed = changed.clone();
        async move {
            if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
                return (StatusCode::UNAUTHORIZED, Vec::new());
            }
            let path = uri.path().to_owned();
            let body_opt = (!body.is_empty()).then_some(&body[..]);
            let answer = model
                .lock()
                .ok()
                .and_then(|mut m| m.handle_http(Instant::now(), method.as_str(), &path, body_opt));
            let line = match method.as_str() {
                "PATCH" => format!(
                    "<- PATCH {} {}",
                    path.rsplit('/').next().unwrap_or(""),
                    String::from_utf8_lossy(&body)
                ),
                _ => format!("<- {method} {path}"),
            };
            tl.say("backend", &line);
            changed.notify_waiters();
            match answer {
                Some(a) => (
                    StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    a.body,
                ),
                None => (StatusCode::SERVICE_UNAVAILABLE, Vec::new()),
            }
        }
    };
    let app = axum::Router::new().fallback(handler);
    let _ = axum::serve(listener, app).await;
}

/// Whether the tour has shown what it came for: alice registered and refreshed,
/// bob's failure and carol's rejection reported.
fn tour_done(model: &BackendModel) -> Option<()> {
    let registered = model
        .patches()
        .iter()
        .filter(|p| {
            p.provider_id == "alice" && p.body.contains("\"registerStatus\":\"registered\"")
        })
        .count();
    let failed = |id: &str| {
        model
            .status(id)
            .is_some_and(|s| s.register_status == "failed")
    };
    (registered >= 2 && failed("bob") && failed("carol")).then_some(())
}

/// Waits until `done` holds, re-checking whenever `changed` is notified (a peer model
/// handled a datagram, or the backend a request); at most `limit`, then
/// [`DemoError::Stalled`] with `what`.
async fn wait_for<T>(
    limit: Duration,
    changed: &Notify,
    what: &str,
    mut done: impl FnMut() -> Option<T>,
) -> Result<T, DemoError> {
    let waited = tokio::time::timeout(limit, async {
        loop {
            let notified = changed.notified();
            if let Some(t) = done() {
                return t;
            }
            notified.await;
        }
    })
    .await;
    waited.map_err(|_| DemoError::Stalled(limit, what.to_owned()))
}

/// Whether alice's registration has been reported registered once.
fn alice_registered(model: &BackendModel) -> bool {
    model
        .patches()
        .iter()
        .any(|p| p.provider_id == "alice" && p.body.contains("\"registerStatus\":\"registered\""))
}

/// Runs the tour; prints as it goes.
pub async fn run() -> Result<(), DemoError> {
    let tl = Timeline(Instant::now());
    let lo = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));

    let registrar = peer::Served::bind(|_| {
        let mut registrar = Registrar::new(
            RegistrarConfig {
                realm: REALM.into(),
                algorithm: Algorithm::Sha256,
                also_md5: true,
                max_expires: GRANT,
                ..RegistrarConfig::default()
            },
            7,
        );
        registrar.add_account("alice", "alice-secret");
        registrar.add_account("bob", "bobs-real-password");
        registrar
    })
    .await?;
    let reg_addr = registrar.addr()?;
    let peers = call::CallPeers::bind().await?;

    let listener = tokio::net::TcpListener::bind(lo).await?;
    let backend_url = format!("http://{}", listener.local_addr()?);
    let backend = Arc::new(Mutex::new(BackendModel::new(providers(reg_addr))));
    let changed = Arc::new(Notify::new());

    let sip = driver::bind_udp(lo, 1 << 20)?;
    let sip_addr = sip.local_addr()?;
    let (did, route) = peers.route()?;
    println!(
        "trunkline demo: a registrar, a backend, a caller, LiveKit and trunkline, all on 127.0.0.1"
    );
    println!("  registrar  udp {reg_addr}  digest SHA-256 (+MD5), realm {REALM}, grants {GRANT} s");
    println!("  backend    {backend_url}  providers: alice (valid), bob (wrong password), carol (CR/LF in the username)");
    println!(
        "  provider   udp {}  calls {did} over alice's trunk once she is registered",
        peers.provider.addr()?
    );
    println!(
        "  livekit    udp {}  answers (180, then 200 with SDP); {did} is routed to {route}",
        peers.livekit.addr()?
    );
    println!("  trunkline  udp {sip_addr}\n");

    let tasks = [
        registrar.spawn(tl, "registrar", changed.clone()),
        peers.provider.spawn(tl, "provider", changed.clone()),
        peers.livekit.spawn(tl, "livekit", changed.clone()),
        tokio::spawn(serve_backend(
            listener,
            backend.clone(),
            changed.clone(),
            tl,
        )),
    ];

    let cfg = Config {
        local_port: sip_addr.port(),
        contact_host: Some("127.0.0.1".into()),
        fixed_routes: [(did.clone(), route)].into_iter().collect(),
        ..Config::default()
    };
    let seed = u64::from(std::process::id());
    let (now, wall) = driver::anchors();
    let core = Controller::new(cfg, seed, now, wall);
    let http = HttpBackend::new(&backend_url, Secret::new(API_KEY), Duration::from_secs(2))?;
    let store = std::env::temp_dir().join(format!("trunkline-demo-{seed}.json"));
    let dcfg = DriverConfig {
        bind: sip_addr,
        shutdown_grace: Duration::from_secs(3),
        learn_local_ip: None,
        store: store.clone(),
        tls: None,
        // Every peer of the demo is an IP literal: nothing is ever looked up. A fixed
        // server keeps the demo from depending on the machine's /etc/resolv.conf.
        dns_server: Some(SocketAddr::from(([127, 0, 0, 1], 53))),
    };
    let (admin_tx, admin_rx) = mpsc::channel(8);
    let trunkline = tokio::spawn(driver::run(
        core,
        sip,
        driver::Listeners::default(),
        Backend::Http(http),
        dcfg,
        EventLog::default(),
        admin_rx,
    ));

    let limit = Duration::from_secs(30);
    wait_for(limit, &changed, "alice was not registered", || {
        backend
            .lock()
            .ok()
            .filter(|m| alice_registered(m))
            .map(|_| ())
    })
    .await?;
    let contact = registrar
        .model
        .lock()
        .ok()
        .and_then(|r| r.bindings_of("alice").next().map(|b| b.contact.clone()))
        .ok_or_else(|| DemoError::Stalled(limit, "alice has no binding".into()))?;
    println!();
    tl.say(
        "demo",
        &format!("alice is registered: the provider calls {did} over her trunk"),
    );
    peers.place(sip_addr, &contact, tl).await;

    let record = wait_for(limit, &changed, "the call did not end on both legs", || {
        peers.ended()
    })
    .await?;
    wait_for(
        limit,
        &changed,
        "alice was not refreshed, or bob and carol not reported",
        || backend.lock().ok().and_then(|m| tour_done(&m)),
    )
    .await?;
    println!();
    tl.say(
        "demo",
        "the call ended, alice refreshed, bob and carol reported: shutting trunkline down",
    );
    let _ = admin_tx
        .send(AdminCall::Command(Command::Shutdown {
            grace: Duration::from_secs(3),
        }))
        .await;
    let ended = tokio::time::timeout(limit, trunkline).await;
    match ended {
        Ok(Ok(Ok(_))) => {}
        Ok(Ok(Err(e))) => return Err(e.into()),
        _ => {
            return Err(DemoError::Stalled(
                limit,
                "trunkline did not shut down".into(),
            ))
        }
    }
    for task in tasks {
        task.abort();
    }
    let _ = std::fs::remove_file(&store);

    println!("\nOutcome");
    for line in peers.summary(&record) {
        println!("  {line}");
    }
    if let Ok(m) = backend.lock() {
        for (id, s) in m.statuses() {
            println!(
                "  backend holds {id:<6} {:<10} {}",
                s.register_status,
                s.register_error.as_deref().unwrap_or("")
            );
        }
    }
    let left = registrar
        .model
        .lock()
        .map(|r| r.bindings().count())
        .unwrap_or(0);
    println!("  registrar bindings left after shutdown: {left}");
    Ok(())
}

//! A real HTTP backend implementing CONTRACT.md §3, with a recorded history, fault
//! injection, and a way to await "a request matching a predicate".
//!
//! Served by axum on `127.0.0.1:0` through an accept loop of our own, so that a fault
//! can drop a connection before any byte of the response is written.

use crate::WAIT_LIMIT;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use time::format_description::well_known::Rfc3339;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

/// The endpoints of CONTRACT.md §3, to aim faults at and to classify requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /api/sip/provider-registration`.
    ProviderList,
    /// `PATCH /api/sip/provider-registration/{id}`.
    ProviderPatch,
    /// `GET /api/sip/config`.
    Config,
    /// `GET /api/sip/destination/{did}`.
    Destination,
    /// Anything else (answered 404 or 405, and recorded).
    Other,
    /// Matches every endpoint when injecting a fault.
    Any,
}

/// What an injected fault does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status code and a short JSON error body.
    Status(u16),
    /// Close the connection without writing a response.
    Drop,
}

/// One provider entry as the backend serves it (camelCase JSON, CONTRACT.md §3).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// Stable id, used in the PATCH path.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Registrar host.
    pub host: String,
    /// Registrar port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// SIP user.
    pub username: String,
    /// SIP password; must never appear in trunkline's output.
    pub password: String,
    /// `SIP_TRANSPORT_UDP`, `SIP_TRANSPORT_TCP` or `SIP_TRANSPORT_TLS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Requested registration expiry in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u32>,
    /// Whether the provider should be registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Digest user name when it differs from `username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    /// Realm to answer; any when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Outbound proxy URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_proxy: Option<String>,
}

impl Provider {
    /// A UDP provider registering `username` at `registrar` (a loopback Kamailio).
    pub fn udp(id: &str, username: &str, password: &str, registrar: SocketAddr) -> Self {
        Provider {
            id: id.to_owned(),
            name: format!("test provider {id}"),
            host: registrar.ip().to_string(),
            port: Some(registrar.port()),
            username: username.to_owned(),
            password: password.to_owned(),
            transport: Some("SIP_TRANSPORT_UDP".to_owned()),
            expires_in: None,
            enabled: None,
            auth_username: None,
            realm: None,
            outbound_proxy: None,
        }
    }

    /// The same provider over TLS (`SIP_TRANSPORT_TLS`).
    pub fn tls(mut self) -> Self {
        self.transport = Some("SIP_TRANSPORT_TLS".to_owned());
        self
    }

    /// The same provider over TCP (`SIP_TRANSPORT_TCP`).
    pub fn tcp(mut self) -> Self {
        self.transport = Some("SIP_TRANSPORT_TCP".to_owned());
        self
    }

    /// The same provider asking for `seconds` of registration.
    pub fn expires_in(mut self, seconds: u32) -> Self {
        self.expires_in = Some(seconds);
        self
    }
}

/// One request the backend received, as answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Position in the history, from 0.
    pub seq: usize,
    /// Wall-clock time of arrival.
    pub at: SystemTime,
    /// Time of arrival since the backend started, for readable histories.
    pub since_start: Duration,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Which contract endpoint it hit.
    pub endpoint: Endpoint,
    /// The `{id}` of a PATCH.
    pub provider_id: Option<String>,
    /// The `x-api-key` header, if any.
    pub api_key: Option<String>,
    /// The `content-type` header, if any.
    pub content_type: Option<String>,
    /// The body parsed as JSON (`None` when empty or not JSON; see `raw_body`).
    pub body: Option<Value>,
    /// The body as text.
    pub raw_body: String,
    /// The status answered, or `None` when the connection was dropped.
    pub status: Option<u16>,
    /// The injected fault that decided the answer, if one did.
    pub fault: Option<Fault>,
    /// Ways the request breaks CONTRACT.md §3 (empty when it conforms).
    pub violations: Vec<String>,
}

impl RecordedRequest {
    /// `registerStatus` of a PATCH body.
    pub fn register_status(&self) -> Option<&str> {
        self.body_str("registerStatus")
    }

    /// `registerError` of a PATCH body (`None` when null or absent).
    pub fn register_error(&self) -> Option<&str> {
        self.body_str("registerError")
    }

    /// `lastRegisterAt` of a PATCH body (`None` when null or absent).
    pub fn last_register_at(&self) -> Option<&str> {
        self.body_str("lastRegisterAt")
    }

    /// `lastRegisterAt` parsed as RFC 3339; panics when it is not.
    pub fn last_register_at_time(&self) -> Option<time::OffsetDateTime> {
        self.last_register_at().map(|text| {
            time::OffsetDateTime::parse(text, &Rfc3339)
                .unwrap_or_else(|e| panic!("lastRegisterAt {text:?} is not RFC 3339: {e}"))
        })
    }

    /// Whether this is a PATCH for `id` that the backend accepted (2xx).
    pub fn is_accepted_patch_for(&self, id: &str) -> bool {
        self.endpoint == Endpoint::ProviderPatch
            && self.provider_id.as_deref() == Some(id)
            && self.status.is_some_and(|s| (200..300).contains(&s))
    }

    fn body_str(&self, key: &str) -> Option<&str> {
        self.body.as_ref()?.get(key)?.as_str()
    }
}

impl std::fmt::Display for RecordedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self
            .status
            .map_or_else(|| "dropped".to_owned(), |s| s.to_string());
        write!(
            f,
            "#{} +{:.3}s {} {} -> {}",
            self.seq,
            self.since_start.as_secs_f64(),
            self.method,
            self.path,
            status
        )?;
        if let Some(fault) = self.fault {
            write!(f, " (fault {fault:?})")?;
        }
        if !self.raw_body.is_empty() {
            write!(f, " {}", self.raw_body)?;
        }
        for violation in &self.violations {
            write!(f, "\n    contract violation: {violation}")?;
        }
        Ok(())
    }
}

/// The backend HTTP server. Stopped on drop.
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    api_key: String,
    started: Instant,
    inner: Mutex<Inner>,
    /// Bumped after every recorded request; waiters re-check on each change.
    changes: watch::Sender<usize>,
}

#[derive(Default)]
struct Inner {
    providers: Vec<Value>,
    config: Option<Value>,
    destinations: BTreeMap<String, String>,
    faults: Vec<PlannedFault>,
    delay: Option<Duration>,
    history: Vec<RecordedRequest>,
}

struct PlannedFault {
    endpoint: Endpoint,
    fault: Fault,
    remaining: usize,
}

/// Set on each connection's requests: notifying it makes the connection task drop
/// the connection without answering.
#[derive(Clone)]
struct DropConnection(Arc<Notify>);

impl Backend {
    /// Starts the backend on `127.0.0.1:0`, accepting `api_key` as `x-api-key`.
    pub async fn start(api_key: &str) -> Self {
        let listener = tokio::net::TcpListener::bind((crate::net::LOOPBACK, 0))
            .await
            .expect("binding the test backend on 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("reading the test backend's address");
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            started: Instant::now(),
            inner: Mutex::new(Inner::default()),
            changes: watch::Sender::new(0),
        });
        let router = Router::new()
            .route(
                "/api/sip/provider-registration",
                get(list_providers).fallback(other),
            )
            .route(
                "/api/sip/provider-registration/{id}",
                axum::routing::patch(patch_provider).fallback(other),
            )
            .route("/api/sip/config", get(sip_config).fallback(other))
            .route(
                "/api/sip/destination/{did}",
                get(destination).fallback(other),
            )
            .fallback(other)
            .with_state(shared.clone());
        let server = tokio::spawn(serve(listener, router));
        Backend {
            addr,
            shared,
            server,
        }
    }

    /// The address the backend listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give trunkline as `BACKEND_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the provider list served by `GET /api/sip/provider-registration`.
    pub fn set_providers(&self, providers: &[Provider]) {
        let list = providers
            .iter()
            .map(|p| serde_json::to_value(p).expect("serializing a test provider"))
            .collect();
        self.set_providers_json(list);
    }

    /// Replaces the provider list with raw JSON entries (for malformed entries).
    pub fn set_providers_json(&self, providers: Vec<Value>) {
        self.lock().providers = providers;
    }

    /// What `GET /api/sip/config` answers (`None`: 404).
    pub fn set_config(&self, config: Option<Value>) {
        self.lock().config = config;
    }

    /// Makes `GET /api/sip/destination/{did}` answer `uri` for `did` (others: 404).
    pub fn set_destination(&self, did: &str, uri: &str) {
        self.lock()
            .destinations
            .insert(did.to_owned(), uri.to_owned());
    }

    /// Makes the next `times` requests to `endpoint` fail with `fault`. Faults queue
    /// in the order injected; the first one that matches a request is used.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        self.lock().faults.push(PlannedFault {
            endpoint,
            fault,
            remaining: times,
        });
    }

    /// Removes every injected fault not used up yet: a fault injected for "until the
    /// test has seen the effect" (`times: usize::MAX`) ends here.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Delays every answer by `delay` from now on (`None` to stop).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// A copy of every request received so far.
    pub fn history(&self) -> Vec<RecordedRequest> {
        self.lock().history.clone()
    }

    /// The accepted (2xx) PATCHes for provider `id`, in arrival order.
    pub fn patches_for(&self, id: &str) -> Vec<RecordedRequest> {
        self.lock()
            .history
            .iter()
            .filter(|r| r.is_accepted_patch_for(id))
            .cloned()
            .collect()
    }

    /// The history, one request a line, for failure messages.
    pub fn history_text(&self) -> String {
        history_text(&self.lock().history)
    }

    /// Every contract violation seen so far, with the request that made it.
    pub fn contract_violations(&self) -> Vec<String> {
        self.lock()
            .history
            .iter()
            .flat_map(|r| r.violations.iter().map(move |v| format!("{v} in {r}")))
            .collect()
    }

    /// Waits until `check` finds what it looks for in the history, re-checking after
    /// every new request, and returns what it found. Fails the test with the whole
    /// history when nothing matches within [`WAIT_LIMIT`].
    pub async fn wait_for<T>(
        &self,
        what: &str,
        mut check: impl FnMut(&[RecordedRequest]) -> Option<T>,
    ) -> T {
        let mut changes = self.shared.changes.subscribe();
        let found = tokio::time::timeout(WAIT_LIMIT, async {
            loop {
                // Subscribed before the first check and marked seen by each
                // `changed()`, so a request recorded during a check still wakes
                // the next `changed()`.
                if let Some(found) = check(&self.lock().history) {
                    return found;
                }
                changes
                    .changed()
                    .await
                    .expect("the backend's change channel closed while the backend is alive");
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "waited {WAIT_LIMIT:?} for {what}; the backend received:\n{}",
                self.history_text()
            )
        })
    }

    /// Waits for an accepted PATCH for provider `id` whose body satisfies `matches`,
    /// looking at the whole history (also requests that came before the call).
    pub async fn wait_for_patch(
        &self,
        id: &str,
        what: &str,
        matches: impl Fn(&RecordedRequest) -> bool,
    ) -> RecordedRequest {
        self.wait_for(&format!("a PATCH for {id} with {what}"), |history| {
            history
                .iter()
                .find(|r| r.is_accepted_patch_for(id) && matches(r))
                .cloned()
        })
        .await
    }

    /// Waits for an accepted PATCH for `id` with `registerStatus` equal to `status`.
    pub async fn wait_for_status(&self, id: &str, status: &str) -> RecordedRequest {
        self.wait_for_patch(id, &format!("registerStatus {status:?}"), |r| {
            r.register_status() == Some(status)
        })
        .await
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.server.abort();
        if std::thread::panicking() {
            eprintln!(
                "---- backend history ----\n{}---- end of backend history ----",
                self.history_text()
            );
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock already failed the test; keep the history
        // readable for the diagnostics that follow.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn history_text(history: &[RecordedRequest]) -> String {
    let mut out = String::new();
    for request in history {
        let _ = writeln!(out, "{request}");
    }
    if history.is_empty() {
        out.push_str("(no request)\n");
    }
    out
}

/// The accept loop: one task per connection, each of which can be told to drop its
/// connection unanswered.
async fn serve(listener: tokio::net::TcpListener, router: Router) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Transient accept errors (e.g. too many open files) must not end the
            // backend; the client will retry.
            Err(_) => continue,
        };
        let router = router.clone();
        connections.spawn(async move {
            let kill = DropConnection(Arc::new(Notify::new()));
            let service = tower::service_fn({
                let kill = kill.clone();
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(kill.clone());
                    router.clone().oneshot(request)
                }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
            tokio::select! {
                _ = connection => {}
                () = kill.0.notified() => {}
            }
        });
        // Reap finished connections so the set does not grow for the whole test.
        while connections.try_join_next().is_some() {}
    }
}

/// What a handler decided before its endpoint-specific work.
enum Gate {
    Proceed,
    Answer(Response, Option<Fault>),
    Drop,
}

/// Applies the delay, injected faults and the API key check, in that order.
async fn gate(shared: &Shared, endpoint: Endpoint, headers: &HeaderMap) -> Gate {
    let delay = shared.lock().delay;
    if let Some(delay) = delay {
        // Fault injection, not synchronisation: a slow backend is the scenario.
        tokio::time::sleep(delay).await;
    }
    let fault = {
        let mut inner = shared.lock();
        let planned = inner
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && (f.endpoint == endpoint || f.endpoint == Endpoint::Any));
        planned.map(|f| {
            f.remaining -= 1;
            f.fault
        })
    };
    match fault {
        Some(Fault::Drop) => return Gate::Drop,
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = Json(json!({ "error": format!("injected fault {code}") }));
            return Gate::Answer((status, body).into_response(), fault);
        }
        None => {}
    }
    if header(headers, "x-api-key").as_deref() != Some(shared.api_key.as_str()) {
        let body = Json(json!({ "error": "missing or wrong x-api-key" }));
        return Gate::Answer((StatusCode::UNAUTHORIZED, body).into_response(), None);
    }
    Gate::Proceed
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Records one answered request and wakes the waiters.
#[allow(clippy::too_many_arguments)]
fn record(
    shared: &Shared,
    at: (SystemTime, Instant),
    method: &Method,
    uri: &Uri,
    endpoint: Endpoint,
    provider_id: Option<String>,
    headers: &HeaderMap,
    raw_body: String,
    status: Option<u16>,
    fault: Option<Fault>,
    violations: Vec<String>,
) {
    let body = serde_json::from_str(&raw_body).ok();
    let mut inner = shared.lock();
    let seq = inner.history.len();
    inner.history.push(RecordedRequest {
        seq,
        at: at.0,
        since_start: at.1.saturating_duration_since(shared.started),
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        endpoint,
        provider_id,
        api_key: header(headers, "x-api-key"),
        content_type: header(headers, "content-type"),
        body,
        raw_body,
        status,
        fault,
        violations,
    });
    drop(inner);
    shared.changes.send_modify(|n| *n += 1);
}

/// The common shape of every handler: gate, then the endpoint's own answer.
async fn handle(
    shared: &Shared,
    kill: &DropConnection,
    request: (Method, Uri, HeaderMap, String),
    endpoint: Endpoint,
    provider_id: Option<String>,
    answer: impl FnOnce(&mut Inner, &str) -> (Response, Vec<String>),
) -> Response {
    let (method, uri, headers, body) = request;
    let at = (SystemTime::now(), Instant::now());
    let (response, fault, violations) = match gate(shared, endpoint, &headers).await {
        Gate::Drop => {
            record(
                shared,
                at,
                &method,
                &uri,
                endpoint,
                provider_id,
                &headers,
                body,
                None,
                Some(Fault::Drop),
                Vec::new(),
            );
            kill.0.notify_one();
            // The connection task drops the connection; this answer never goes out.
            return std::future::pending().await;
        }
        Gate::Answer(response, fault) => (response, fault, Vec::new()),
        Gate::Proceed => {
            let (response, violations) = answer(&mut shared.lock(), &body);
            (response, None, violations)
        }
    };
    record(
        shared,
        at,
        &method,
        &uri,
        endpoint,
        provider_id,
        &headers,
        body,
        Some(response.status().as_u16()),
        fault,
        violations,
    );
    response
}

async fn list_providers(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<DropConnection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = (method, uri, headers, body);
    handle(
        &shared,
        &kill,
        request,
        Endpoint::ProviderList,
        None,
        |inner, _| (Json(inner.providers.clone()).into_response(), Vec::new()),
    )
    .await
}

async fn patch_provider(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<DropConnection>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let content_type = header(&headers, "content-type");
    let request = (method, uri, headers, body);
    let answer_id = id.clone();
    handle(
        &shared,
        &kill,
        request,
        Endpoint::ProviderPatch,
        Some(id),
        move |inner, body| {
            let mut violations = check_patch_body(body);
            if !content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/json"))
            {
                violations.push(format!(
                    "content-type is {content_type:?}, not application/json"
                ));
            }
            let known = inner
                .providers
                .iter()
                .any(|p| p.get("id").and_then(Value::as_str) == Some(answer_id.as_str()));
            let response = if known {
                let mut echoed = serde_json::from_str(body).unwrap_or(Value::Null);
                if let Some(object) = echoed.as_object_mut() {
                    object.insert("id".to_owned(), Value::String(answer_id));
                }
                (StatusCode::OK, Json(echoed)).into_response()
            } else {
                // CONTRACT.md §3: 404 means the provider no longer exists.
                (
                    StatusCode::NOT_FOUND,
                    Json(json!({ "error": "no such provider" })),
                )
                    .into_response()
            };
            (response, violations)
        },
    )
    .await
}

async fn sip_config(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<DropConnection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = (method, uri, headers, body);
    handle(
        &shared,
        &kill,
        request,
        Endpoint::Config,
        None,
        |inner, _| match &inner.config {
            Some(config) => (Json(config.clone()).into_response(), Vec::new()),
            None => (StatusCode::NOT_FOUND.into_response(), Vec::new()),
        },
    )
    .await
}

async fn destination(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<DropConnection>,
    Path(did): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = (method, uri, headers, body);
    handle(
        &shared,
        &kill,
        request,
        Endpoint::Destination,
        None,
        move |inner, _| match inner.destinations.get(&did) {
            Some(uri) => (
                Json(json!({ "destinationUri": uri })).into_response(),
                Vec::new(),
            ),
            None => (StatusCode::NOT_FOUND.into_response(), Vec::new()),
        },
    )
    .await
}

async fn other(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<DropConnection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let violation = format!(
        "{method} {} is not an endpoint of CONTRACT.md §3",
        uri.path()
    );
    let request = (method, uri, headers, body);
    handle(
        &shared,
        &kill,
        request,
        Endpoint::Other,
        None,
        move |_, _| (StatusCode::NOT_FOUND.into_response(), vec![violation]),
    )
    .await
}

/// Checks a PATCH body against CONTRACT.md §3: exactly `registerStatus`,
/// `registerError` and `lastRegisterAt`, with their types.
pub fn check_patch_body(body: &str) -> Vec<String> {
    let mut violations = Vec::new();
    let value: Value = match serde_json::from_str(body) {
        Ok(value) => value,
        Err(e) => return vec![format!("body is not JSON ({e})")],
    };
    let Some(object) = value.as_object() else {
        return vec!["body is not a JSON object".to_owned()];
    };
    for key in object.keys() {
        if !["registerStatus", "registerError", "lastRegisterAt"].contains(&key.as_str()) {
            violations.push(format!("unexpected field {key:?}"));
        }
    }
    match object.get("registerStatus") {
        Some(Value::String(s)) if ["pending", "registered", "failed"].contains(&s.as_str()) => {}
        other => violations.push(format!(
            "registerStatus must be pending, registered or failed, is {other:?}"
        )),
    }
    match object.get("registerError") {
        Some(Value::Null | Value::String(_)) => {}
        other => violations.push(format!(
            "registerError must be a string or null, is {other:?}"
        )),
    }
    match object.get("lastRegisterAt") {
        Some(Value::Null) => {}
        Some(Value::String(s)) => match time::OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) if t.offset().is_utc() => {}
            Ok(_) => violations.push(format!("lastRegisterAt {s:?} is not UTC")),
            Err(e) => violations.push(format!("lastRegisterAt {s:?} is not RFC 3339 ({e})")),
        },
        other => violations.push(format!(
            "lastRegisterAt must be an RFC 3339 string or null, is {other:?}"
        )),
    }
    if object.get("registerStatus").and_then(Value::as_str) == Some("registered")
        && object.get("lastRegisterAt").is_none_or(Value::is_null)
    {
        violations.push("registered without lastRegisterAt".to_owned());
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::check_patch_body;

    #[test]
    fn accepts_contract_bodies() {
        let ok = [
            r#"{"registerStatus":"registered","registerError":null,"lastRegisterAt":"2026-01-02T03:04:05Z"}"#,
            r#"{"registerStatus":"failed","registerError":"authentication failed","lastRegisterAt":null}"#,
            r#"{"registerStatus":"pending","registerError":"unregistered at shutdown","lastRegisterAt":"2026-01-02T03:04:05.123Z"}"#,
        ];
        for body in ok {
            assert_eq!(check_patch_body(body), Vec::<String>::new(), "{body}");
        }
    }

    #[test]
    fn rejects_bodies_outside_the_contract() {
        let bad = [
            r#"{"registerStatus":"ok","registerError":null,"lastRegisterAt":null}"#,
            r#"{"registerStatus":"failed","registerError":null}"#,
            r#"{"registerStatus":"failed","registerError":null,"lastRegisterAt":"yesterday"}"#,
            r#"{"registerStatus":"registered","registerError":null,"lastRegisterAt":null}"#,
            r#"{"registerStatus":"failed","registerError":null,"lastRegisterAt":null,"password":"x"}"#,
            r#"{"registerStatus":"failed","registerError":null,"lastRegisterAt":"2026-01-02T03:04:05+01:00"}"#,
            "not json",
        ];
        for body in bad {
            assert!(!check_patch_body(body).is_empty(), "{body}");
        }
    }
}

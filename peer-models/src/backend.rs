//! A model of trunkline's HTTP backend (CONTRACT.md §3): serves the provider list, which
//! may change during a run, stores status PATCHes and keeps them in order, and can be
//! down, answer errors or answer slowly.
//!
//! It speaks HTTP terms ([`Backend::handle_http`]: method, path, body → status, body),
//! so `trunkline demo` can mount it behind a real HTTP server and the simulator drives
//! the core's own mapping (`sip_core::backend::http`) both ways — the same code the
//! production driver runs. [`Backend::handle`] wraps that for callers holding a
//! `BackendOp`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sip_core::backend::http::{http_call, http_reply, PROVIDERS_PATH};
use sip_core::{BackendOp, BackendReply, ProviderSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How the backend answers right now (changed by a fault schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendMode {
    /// Answers correctly at once.
    Up,
    /// Refuses connections: no HTTP answer at all.
    Down,
    /// Answers every request with this status (500, 503…) and stores nothing.
    Error {
        /// HTTP status.
        status: u16,
    },
    /// Answers every PATCH `404` — the contract's "this provider no longer exists" —
    /// although the provider is still in the list (a half-deployed backend, a race with
    /// a re-created account); the list is still served.
    NotFound,
    /// Answers every request `401` (the API key was revoked).
    Unauthorized,
    /// Answers correctly, after this long.
    Slow {
        /// Delay before the answer leaves.
        delay: Duration,
    },
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A status the backend stored for a provider (the three keys of the contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStatus {
    /// `registerStatus`.
    pub register_status: String,
    /// `registerError`.
    pub register_error: Option<String>,
    /// `lastRegisterAt`.
    pub last_register_at: Option<String>,
}

/// One accepted PATCH, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchRecord {
    /// When it arrived.
    pub at: Instant,
    /// The provider id from the path.
    pub provider_id: String,
    /// The body as received.
    pub body: String,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Provider-list fetches answered 200.
    pub fetches: u64,
    /// PATCHes stored.
    pub patches: u64,
    /// PATCHes for unknown providers (answered 404).
    pub unknown_provider: u64,
    /// PATCHes with a body that breaks the contract (answered 400).
    pub bad_bodies: u64,
    /// Requests answered by a fault mode instead.
    pub faulted: u64,
}

/// The backend model. See the module docs.
#[derive(Debug, Clone)]
pub struct Backend {
    providers: Vec<ProviderSpec>,
    ids: BTreeSet<String>,
    /// The list as JSON, rendered once per change (a list of ten thousand is fetched
    /// every few minutes).
    list_body: Option<Vec<u8>>,
    statuses: BTreeMap<String, StoredStatus>,
    last_bodies: BTreeMap<String, Vec<u8>>,
    patches: Vec<PatchRecord>,
    keep_log: bool,
    mode: BackendMode,
    stats: BackendStats,
}

/// The contract's JSON for one provider (what the real backend serves).
pub fn provider_json(p: &ProviderSpec) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(p.id.clone()));
    m.insert("name".into(), Value::String(p.name.clone()));
    m.insert("host".into(), Value::String(p.host.clone()));
    m.insert("username".into(), Value::String(p.username.clone()));
    m.insert(
        "password".into(),
        Value::String(p.password.expose().to_owned()),
    );
    let opt_str = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let opt_int = |v: Option<i64>| v.map_or(Value::Null, |n| Value::Number(n.into()));
    m.insert("port".into(), opt_int(p.port));
    m.insert("transport".into(), opt_str(&p.transport));
    m.insert("expiresIn".into(), opt_int(p.expires));
    m.insert("enabled".into(), p.enabled.map_or(Value::Null, Value::Bool));
    m.insert("authUsername".into(), opt_str(&p.auth_username));
    m.insert("realm".into(), opt_str(&p.realm));
    m.insert("outboundProxy".into(), opt_str(&p.outbound_proxy));
    Value::Object(m)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a PATCH body strictly: exactly the three keys, with the contract's types.
fn parse_status(body: &[u8]) -> Option<StoredStatus> {
    let Value::Object(m) = serde_json::from_slice::<Value>(body).ok()? else {
        return None;
    };
    if m.len() != 3 {
        return None;
    }
    let status = match m.get("registerStatus")? {
        Value::String(s) if matches!(s.as_str(), "pending" | "registered" | "failed") => s.clone(),
        _ => return None,
    };
    let opt = |v: &Value| match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        _ => None,
    };
    Some(StoredStatus {
        register_status: status,
        register_error: opt(m.get("registerError")?)?,
        last_register_at: opt(m.get("lastRegisterAt")?)?,
    })
}

impl Backend {
    /// A backend serving `providers`, up, with an empty status store.
    pub fn new(providers: Vec<ProviderSpec>) -> Self {
        Self {
            list_body: None,
            ids: providers.iter().map(|p| p.id.clone()).collect(),
            providers,
            statuses: BTreeMap::new(),
            last_bodies: BTreeMap::new(),
            patches: Vec::new(),
            keep_log: true,
            mode: BackendMode::Up,
            stats: BackendStats::default(),
        }
    }

    /// Whether every accepted PATCH is kept in [`Backend::patches`] (on by default; a
    /// long benchmark turns it off to bound memory).
    pub fn keep_patch_log(&mut self, keep: bool) {
        self.keep_log = keep;
    }

    /// The list served now.
    pub fn providers(&self) -> &[ProviderSpec] {
        &self.providers
    }

    /// Replaces the list served from now on.
    pub fn set_providers(&mut self, providers: Vec<ProviderSpec>) {
        self.ids = providers.iter().map(|p| p.id.clone()).collect();
        self.list_body = None;
        self.providers = providers;
    }

    /// The current mode.
    pub fn mode(&self) -> &BackendMode {
        &self.mode
    }

    /// Changes the mode.
    pub fn set_mode(&mut self, mode: BackendMode) {
        self.mode = mode;
    }

    /// How long an answer takes to leave (non-zero only in [`BackendMode::Slow`]).
    pub fn response_delay(&self) -> Duration {
        match self.mode {
            BackendMode::Slow { delay } => delay,
            _ => Duration::ZERO,
        }
    }

    /// The stored status of a provider.
    pub fn status(&self, provider_id: &str) -> Option<&StoredStatus> {
        self.statuses.get(provider_id)
    }

    /// The body of the last PATCH stored for a provider, as received.
    pub fn last_body(&self, provider_id: &str) -> Option<&[u8]> {
        self.last_bodies.get(provider_id).map(Vec::as_slice)
    }

    /// Every stored status, by provider id.
    pub fn statuses(&self) -> &BTreeMap<String, StoredStatus> {
        &self.statuses
    }

    /// Every accepted PATCH, in arrival order.
    pub fn patches(&self) -> &[PatchRecord] {
        &self.patches
    }

    /// Counters.
    pub fn stats(&self) -> &BackendStats {
        &self.stats
    }

    /// One HTTP request. `None` means the connection was refused ([`BackendMode::Down`]).
    pub fn handle_http(
        &mut self,
        now: Instant,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Option<HttpResponse> {
        let fixed = |status: u16| {
            Some(HttpResponse {
                status,
                body: format!("{{\"error\":\"HTTP {status}\"}}").into_bytes(),
            })
        };
        match self.mode {
            BackendMode::Down => {
                self.stats.faulted += 1;
                return None;
            }
            BackendMode::Error { status } => {
                self.stats.faulted += 1;
                return fixed(status);
            }
            BackendMode::NotFound if method == "PATCH" => {
                self.stats.faulted += 1;
                return fixed(404);
            }
            BackendMode::Unauthorized => {
                self.stats.faulted += 1;
                return fixed(401);
            }
            BackendMode::Up | BackendMode::NotFound | BackendMode::Slow { .. } => {}
        }
        if method == "GET" && path == PROVIDERS_PATH {
            self.stats.fetches += 1;
            let providers = &self.providers;
            let body = self
                .list_body
                .get_or_insert_with(|| {
                    let list: Vec<Value> = providers.iter().map(provider_json).collect();
                    serde_json::to_vec(&Value::Array(list)).unwrap_or_default()
                })
                .clone();
            return Some(HttpResponse { status: 200, body });
        }
        let id = path
            .strip_prefix(PROVIDERS_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(percent_decode);
        match (method, id) {
            ("PATCH", Some(id)) => {
                if !self.ids.contains(&id) {
                    self.stats.unknown_provider += 1;
                    return fixed(404);
                }
                let raw = body.unwrap_or_default();
                let Some(status) = parse_status(raw) else {
                    self.stats.bad_bodies += 1;
                    return fixed(400);
                };
                self.stats.patches += 1;
                if self.keep_log {
                    self.patches.push(PatchRecord {
                        at: now,
                        provider_id: id.clone(),
                        body: String::from_utf8_lossy(raw).into_owned(),
                    });
                }
                self.last_bodies.insert(id.clone(), raw.to_vec());
                self.statuses.insert(id, status);
                Some(HttpResponse {
                    status: 204,
                    body: Vec::new(),
                })
            }
            _ => fixed(404),
        }
    }

    /// One backend operation through the core's HTTP mapping; a refused connection
    /// becomes the `Failed` reply the HTTP driver would produce.
    pub fn handle(&mut self, now: Instant, op: &BackendOp) -> BackendReply {
        let call = http_call(op);
        match self.handle_http(now, call.method, &call.path, call.body.as_deref()) {
            Some(resp) => http_reply(op, resp.status, &resp.body),
            None => BackendReply::Failed("connection refused".to_owned()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use sip_core::{RegisterStatus, StatusReport};

    #[allow(clippy::disallowed_methods)]
    fn now() -> Instant {
        Instant::now()
    }

    fn spec(id: &str) -> ProviderSpec {
        ProviderSpec {
            id: id.into(),
            name: id.into(),
            host: "reg.example".into(),
            username: "u".into(),
            password: "pw~sim~x".into(),
            ..ProviderSpec::default()
        }
    }

    #[test]
    fn serves_list_and_stores_patches_in_order() {
        let t = now();
        let mut b = Backend::new(vec![spec("a b")]);
        let BackendReply::Providers(list) = b.handle(t, &BackendOp::FetchProviders) else {
            panic!("no list");
        };
        assert_eq!(list, vec![spec("a b")]);
        let op = BackendOp::ReportStatus {
            provider_id: "a b".into(),
            report: StatusReport {
                register_status: RegisterStatus::Failed,
                register_error: Some("x".into()),
                last_register_at: None,
            },
        };
        assert_eq!(b.handle(t, &op), BackendReply::Delivered);
        assert_eq!(b.status("a b").unwrap().register_status, "failed");
        assert_eq!(b.patches().len(), 1);
        let unknown = BackendOp::ReportStatus {
            provider_id: "zzz".into(),
            report: StatusReport {
                register_status: RegisterStatus::Pending,
                register_error: None,
                last_register_at: None,
            },
        };
        assert_eq!(b.handle(t, &unknown), BackendReply::NotFound);
        b.set_mode(BackendMode::Down);
        assert!(matches!(b.handle(t, &op), BackendReply::Failed(_)));
        b.set_mode(BackendMode::Error { status: 503 });
        assert!(matches!(b.handle(t, &op), BackendReply::Failed(_)));
        assert_eq!(b.patches().len(), 1);
    }

    #[test]
    fn strict_body_check() {
        assert!(parse_status(
            br#"{"registerStatus":"registered","registerError":null,"lastRegisterAt":"x"}"#
        )
        .is_some());
        assert!(parse_status(br#"{"registerStatus":"registered","registerError":null}"#).is_none());
        assert!(parse_status(
            br#"{"registerStatus":"ok","registerError":null,"lastRegisterAt":null}"#
        )
        .is_none());
    }
}

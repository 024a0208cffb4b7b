//! The backend operations as HTTP (CONTRACT.md §3), as pure functions that every driver
//! shares: which method and path, which body, and what a status code and body mean.

use crate::io::{BackendOp, BackendReply};
use crate::provider::ProviderSpec;
use crate::secret::Secret;
use serde_json::Value;

/// Path of the provider list.
pub const PROVIDERS_PATH: &str = "/api/sip/provider-registration";
/// Path of the backend's SIP settings.
pub const CONFIG_PATH: &str = "/api/sip/config";
/// Path prefix of the per-DID destination.
pub const DESTINATION_PATH: &str = "/api/sip/destination";

/// An HTTP request to make against the backend base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// `GET` or `PATCH`.
    pub method: &'static str,
    /// Path below the base URL, percent-encoded.
    pub path: String,
    /// JSON body, if any.
    pub body: Option<Vec<u8>>,
}

/// Percent-encodes a path segment (ids come from the backend and may hold anything).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The HTTP request for an operation.
pub fn http_call(op: &BackendOp) -> HttpCall {
    match op {
        BackendOp::FetchProviders => HttpCall {
            method: "GET",
            path: PROVIDERS_PATH.to_owned(),
            body: None,
        },
        BackendOp::ReportStatus {
            provider_id,
            report,
        } => HttpCall {
            method: "PATCH",
            path: format!("{PROVIDERS_PATH}/{}", encode_segment(provider_id)),
            body: Some(serde_json::to_vec(report).unwrap_or_default()),
        },
        BackendOp::FetchConfig => HttpCall {
            method: "GET",
            path: CONFIG_PATH.to_owned(),
            body: None,
        },
        BackendOp::LookupDestination { did } => HttpCall {
            method: "GET",
            path: format!("{DESTINATION_PATH}/{}", encode_segment(did)),
            body: None,
        },
    }
}

/// What an HTTP answer means for an operation.
pub fn http_reply(op: &BackendOp, status: u16, body: &[u8]) -> BackendReply {
    match status {
        401 | 403 => BackendReply::Unauthorized { status },
        404 => BackendReply::NotFound,
        200..=299 => match op {
            BackendOp::ReportStatus { .. } => BackendReply::Delivered,
            BackendOp::FetchProviders => match parse_providers(body) {
                Ok(list) => BackendReply::Providers(list),
                Err(e) => BackendReply::Failed(e),
            },
            BackendOp::FetchConfig => match parse_config(body) {
                Ok(livekit_domain) => BackendReply::Config { livekit_domain },
                Err(e) => BackendReply::Failed(e),
            },
            BackendOp::LookupDestination { .. } => match parse_destination(body) {
                Ok(uri) => BackendReply::Destination { uri },
                Err(e) => BackendReply::Failed(e),
            },
        },
        _ => BackendReply::Failed(format!("backend answered HTTP {status}")),
    }
}

fn text(v: &Value, key: &str) -> Result<Option<String>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{key}` should be a string, got {}", kind(other))),
    }
}

fn int(v: &Value, key: &str) -> Result<Option<i64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` should be an integer, got {n}")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("`{key}` should be an integer, got {s:?}")),
        Some(other) => Err(format!("`{key}` should be an integer, got {}", kind(other))),
    }
}

fn boolean(v: &Value, key: &str) -> Result<Option<bool>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!(
            "`{key}` should be true or false, got {}",
            kind(other)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads one provider entry. An entry with a field of the wrong type still yields a
/// spec (so it is reported as failed with a precise error) when it has an id.
fn provider_entry(v: &Value) -> Option<ProviderSpec> {
    let id = text(v, "id").ok().flatten()?;
    let mut problem = None;
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r {
            problem.get_or_insert(e);
        }
    };
    let mut spec = ProviderSpec {
        id,
        ..ProviderSpec::default()
    };
    macro_rules! field {
        ($target:expr, $getter:ident, $key:literal) => {
            note($getter(v, $key).map(|x| $target = x))
        };
    }
    let mut name = None;
    let mut host = None;
    let mut username = None;
    let mut password = None;
    field!(name, text, "name");
    field!(host, text, "host");
    field!(username, text, "username");
    field!(password, text, "password");
    field!(spec.port, int, "port");
    field!(spec.transport, text, "transport");
    field!(spec.expires, int, "expiresIn");
    field!(spec.enabled, boolean, "enabled");
    field!(spec.auth_username, text, "authUsername");
    field!(spec.realm, text, "realm");
    field!(spec.outbound_proxy, text, "outboundProxy");
    spec.name = name.unwrap_or_default();
    spec.host = host.unwrap_or_default();
    spec.username = username.unwrap_or_default();
    spec.password = Secret::new(password.unwrap_or_default());
    spec.problem = problem;
    Some(spec)
}

fn object(body: &[u8], what: &str) -> Result<Value, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("{what} is not valid JSON: {e}"))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(format!(
            "{what} should be a JSON object, got {}",
            kind(&value)
        ))
    }
}

/// Reads `livekitDomain` from the SIP settings (absent, null or empty: none).
pub fn parse_config(body: &[u8]) -> Result<Option<String>, String> {
    let v = object(body, "GET /api/sip/config answer")?;
    Ok(text(&v, "livekitDomain")?.filter(|d| !d.trim().is_empty()))
}

/// Reads `destinationUri` from a destination answer; its use is checked by the caller.
pub fn parse_destination(body: &[u8]) -> Result<String, String> {
    let v = object(body, "destination answer")?;
    text(&v, "destinationUri")?
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| "destination answer has no `destinationUri`".to_owned())
}

/// Parses the provider list. The list must be a JSON array; entries that are not
/// objects with an `id` are skipped (they cannot be reported without an id).
pub fn parse_providers(body: &[u8]) -> Result<Vec<ProviderSpec>, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("provider list is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err(format!(
            "provider list should be a JSON array, got {}",
            kind(&value)
        ));
    };
    Ok(items.iter().filter_map(provider_entry).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::io::{RegisterStatus, StatusReport};

    #[test]
    fn patch_body_has_exactly_three_keys() {
        let op = BackendOp::ReportStatus {
            provider_id: "a b/c".into(),
            report: StatusReport {
                register_status: RegisterStatus::Registered,
                register_error: None,
                last_register_at: Some("2026-11-24T00:00:00.000Z".into()),
            },
        };
        let call = http_call(&op);
        assert_eq!(call.method, "PATCH");
        assert_eq!(call.path, "/api/sip/provider-registration/a%20b%2Fc");
        let v: Value = serde_json::from_slice(&call.body.unwrap()).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 3);
        assert_eq!(obj["registerStatus"], "registered");
        assert_eq!(obj["registerError"], Value::Null);
        assert_eq!(obj["lastRegisterAt"], "2026-11-24T00:00:00.000Z");
    }

    #[test]
    fn providers_parse_leniently_and_report_bad_fields() {
        let body = br#"[
          {"id":"p1","name":"A","host":"h","port":5060,"username":"u","password":"pw",
           "transport":"SIP_TRANSPORT_UDP","expiresIn":"300","enabled":true,"extra":1},
          {"id":2,"host":"h2","username":"u2","password":"x","port":"abc"},
          {"name":"no id"},
          7
        ]"#;
        let list = parse_providers(body).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, "p1");
        assert_eq!(list[0].expires, Some(300));
        assert_eq!(list[0].password.expose(), "pw");
        assert!(list[0].problem.is_none());
        assert_eq!(list[1].id, "2");
        assert!(list[1].problem.as_deref().unwrap().contains("`port`"));
    }

    #[test]
    fn status_codes_map_to_outcomes() {
        let op = BackendOp::FetchProviders;
        assert_eq!(
            http_reply(&op, 401, b""),
            BackendReply::Unauthorized { status: 401 }
        );
        assert_eq!(http_reply(&op, 404, b""), BackendReply::NotFound);
        assert!(matches!(http_reply(&op, 503, b""), BackendReply::Failed(_)));
        assert!(matches!(
            http_reply(&op, 200, b"{}"),
            BackendReply::Failed(_)
        ));
        assert_eq!(http_reply(&op, 200, b"[]"), BackendReply::Providers(vec![]));
    }

    #[test]
    fn config_and_destination_map_onto_http() {
        let cfg = BackendOp::FetchConfig;
        assert_eq!(http_call(&cfg).path, "/api/sip/config");
        assert_eq!(
            http_reply(
                &cfg,
                200,
                br#"{"livekitDomain":"p.sip.livekit.cloud","x":1}"#
            ),
            BackendReply::Config {
                livekit_domain: Some("p.sip.livekit.cloud".into())
            }
        );
        assert_eq!(
            http_reply(&cfg, 200, br#"{"livekitDomain":null}"#),
            BackendReply::Config {
                livekit_domain: None
            }
        );
        assert!(matches!(
            http_reply(&cfg, 200, b"[]"),
            BackendReply::Failed(_)
        ));
        assert_eq!(http_reply(&cfg, 404, b""), BackendReply::NotFound);

        let dest = BackendOp::LookupDestination {
            did: "+55 11/9".into(),
        };
        let call = http_call(&dest);
        assert_eq!(call.method, "GET");
        assert_eq!(call.path, "/api/sip/destination/%2B55%2011%2F9");
        assert_eq!(
            http_reply(&dest, 200, br#"{"destinationUri":"sip:+5511@lk.example"}"#),
            BackendReply::Destination {
                uri: "sip:+5511@lk.example".into()
            }
        );
        assert!(matches!(
            http_reply(&dest, 200, br#"{"destinationUri":""}"#),
            BackendReply::Failed(e) if e.contains("destinationUri")
        ));
        assert!(matches!(
            http_reply(&dest, 200, b"not json"),
            BackendReply::Failed(_)
        ));
        assert_eq!(http_reply(&dest, 404, b""), BackendReply::NotFound);
    }
}

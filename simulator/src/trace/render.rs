//! One-line summaries of SIP messages, backend exchanges and core events, with symbolic
//! ids and secrets redacted (`response=<redacted>`): passwords never reach a message,
//! and digest responses are derived from them, so neither is printed.

use super::names::Names;
use crate::check::wire::{self, Scanned, Start};
use crate::models::digest::parse_credentials;
use sip_core::{BackendOp, BackendReply, Event};
use std::fmt::Write;
use std::time::Duration;

fn secs(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

fn credentials(names: &mut Names, header: &str, value: &str) -> String {
    let (scheme, p) = parse_credentials(value);
    let mut out = format!("{header}={scheme}(");
    let mut parts = Vec::new();
    if let Some(u) = p.get("username") {
        parts.push(format!("user={u}"));
    }
    parts.push(format!(
        "alg={}",
        p.get("algorithm").map_or("-", String::as_str)
    ));
    if let Some(q) = p.get("qop") {
        parts.push(format!("qop={q}"));
    }
    if let Some(nc) = p.get("nc") {
        parts.push(format!("nc={nc}"));
    }
    if let Some(n) = p.get("nonce") {
        parts.push(format!("nonce={}", names.name("nonce", n)));
    }
    if let Some(c) = p.get("cnonce") {
        parts.push(format!("cnonce={}", names.name("cnonce", c)));
    }
    if p.contains_key("response") {
        parts.push("response=<redacted>".to_owned());
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        // Whatever a non-digest scheme carries may be the password itself.
        parts = vec!["<redacted>".to_owned()];
    }
    out.push_str(&parts.join(","));
    out.push(')');
    out
}

fn challenge(names: &mut Names, value: &str) -> String {
    let (scheme, p) = parse_credentials(value);
    let mut parts = vec![format!(
        "alg={}",
        p.get("algorithm").map_or("-", String::as_str)
    )];
    if let Some(q) = p.get("qop") {
        parts.push(format!("qop={q}"));
    }
    if let Some(n) = p.get("nonce") {
        parts.push(format!("nonce={}", names.name("nonce", n)));
    }
    if p.get("stale")
        .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    {
        parts.push("stale".to_owned());
    }
    format!("challenge={scheme}({})", parts.join(","))
}

fn contact(names: &mut Names, value: &str) -> String {
    let uri = wire::contact_uri(value);
    let who = match wire::param(uri, "line") {
        Some(line) => names.name("line", line),
        None if uri.contains("other@") => "foreign".to_owned(),
        None => uri.to_owned(),
    };
    match wire::contact_expires(value) {
        Some(e) => format!("{who};expires={e}"),
        None => who,
    }
}

/// Summarizes one SIP datagram.
pub fn sip(names: &mut Names, bytes: &[u8]) -> String {
    let Some(m) = wire::scan(bytes) else {
        return format!("<unreadable {} bytes>", bytes.len());
    };
    let mut out = match m.start {
        Start::Request { method, uri } => format!("{method} {uri}"),
        Start::Response { status, reason } => format!("{status} {reason}"),
    };
    summary_fields(names, &m, &mut out);
    out
}

fn summary_fields(names: &mut Names, m: &Scanned<'_>, out: &mut String) {
    if let Some((n, method)) = m.cseq() {
        let _ = write!(out, " cseq={n}");
        if method != "REGISTER" {
            let _ = write!(out, "/{method}");
        }
    }
    if let Some(c) = m.call_id() {
        let _ = write!(out, " call={}", names.name("call", c));
    }
    if let Some(b) = m.branch() {
        let _ = write!(out, " branch={}", names.name("branch", b));
    }
    let contacts: Vec<String> = m.contacts().iter().map(|c| contact(names, c)).collect();
    if !contacts.is_empty() {
        let _ = write!(out, " contact=[{}]", contacts.join(", "));
    }
    for (name, label) in [
        ("Expires", "expires"),
        ("Min-Expires", "min-expires"),
        ("Retry-After", "retry-after"),
    ] {
        if let Some(v) = m.header(name) {
            let _ = write!(out, " {label}={v}");
        }
    }
    for (header, label) in [
        ("Authorization", "auth"),
        ("Proxy-Authorization", "proxy-auth"),
    ] {
        if let Some(v) = m.header(header) {
            let _ = write!(out, " {}", credentials(names, label, v));
        }
    }
    for header in ["WWW-Authenticate", "Proxy-Authenticate"] {
        for v in m.headers(header) {
            let _ = write!(out, " {}", challenge(names, v));
        }
    }
}

/// One stream connection line: `conn#N` (the core's name for it) first, so a connection's story greps as one.
pub fn stream(names: &mut Names, conn: u64, line: super::StreamLine<'_>) -> String {
    use super::StreamLine as L;
    match line {
        L::Connect { peer, transport } => {
            format!("conn#{conn} trunkline -> {peer}  connect {transport}")
        }
        L::Unanswered => format!("conn#{conn}  handshake partitioned (no answer)"),
        L::Refused => format!("conn#{conn}  refused"),
        L::Connected => format!("conn#{conn}  connected"),
        L::Message {
            from,
            to,
            bytes,
            note,
        } => format!("conn#{conn} {from} => {to}  {}{note}", sip(names, bytes)),
        L::Read {
            bytes,
            messages,
            partial,
        } => format!(
            "conn#{conn} trunkline  read {bytes} bytes: {messages} message(s){}",
            if partial { " + partial" } else { "" }
        ),
        L::Closed { by, error } => match error {
            Some(e) => format!("conn#{conn}  closed by {by} ({e})"),
            None => format!("conn#{conn}  closed by {by}"),
        },
    }
}

/// Summarizes a backend request.
pub fn backend_op(op: &BackendOp) -> String {
    match op {
        BackendOp::FetchProviders => "GET providers".to_owned(),
        BackendOp::FetchConfig => "GET config".to_owned(),
        BackendOp::LookupDestination { did } => format!("GET destination {did}"),
        BackendOp::ReportStatus { provider_id, .. } => {
            let call = sip_core::backend::http::http_call(op);
            let body = call
                .body
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            format!("PATCH {provider_id} {body}")
        }
    }
}

/// Summarizes a backend reply.
pub fn backend_reply(reply: &BackendReply) -> String {
    match reply {
        BackendReply::Providers(list) => {
            let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
            format!("providers=[{}]", ids.join(","))
        }
        BackendReply::Delivered => "delivered".to_owned(),
        BackendReply::Config { livekit_domain } => {
            format!("config domain={}", opt(livekit_domain.as_deref()))
        }
        BackendReply::Destination { uri } => format!("destination {uri}"),
        BackendReply::NotFound => "404 not found".to_owned(),
        BackendReply::Unauthorized { status } => format!("{status} unauthorized"),
        BackendReply::Failed(e) => format!("failed: {e}"),
    }
}

/// The variant name of an event's Debug form (for events this renderer does not know:
/// their fields may hold raw random ids that would churn snapshots).
fn variant_name(e: &Event) -> String {
    let d = format!("{e:?}");
    d.split(['(', '{', ' '])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn opt(s: Option<&str>) -> String {
    s.map_or("-".to_owned(), |s| format!("{s:?}"))
}

/// Summarizes a core event.
pub fn event(e: &Event) -> String {
    match e {
        Event::RegistrationChanged(v) => format!(
            "{} status={} error={}",
            v.id,
            v.status.as_str(),
            opt(v.error.as_deref())
        ),
        Event::ProvidersApplied {
            total,
            added,
            removed,
            changed,
            invalid,
        } => format!(
            "providers-applied total={total} added={added} removed={removed} changed={changed} invalid={invalid}"
        ),
        Event::ProvidersFetchFailed { error, retry_in } => {
            format!("fetch-failed retry_in={} error={error:?}", secs(*retry_in))
        }
        Event::ReportFailed {
            provider_id,
            error,
            retry_in,
        } => format!(
            "report-failed {provider_id} retry_in={} error={error:?}",
            secs(*retry_in)
        ),
        Event::ApiKeyRejected { status } => format!("api-key-rejected status={status}"),
        Event::MessageDropped { remote, reason } => {
            format!("message-dropped from={remote} reason={reason:?}")
        }
        Event::RegisterOutcome {
            provider_id,
            outcome,
            ..
        } => format!("outcome {provider_id} {}", outcome.as_str()),
        Event::ShutdownComplete => "shutdown-complete".to_owned(),
        #[allow(unreachable_patterns)]
        other => variant_name(other),
    }
}

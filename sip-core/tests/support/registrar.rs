//! A scripted registrar for the core's scenario tests: challenges with digest, verifies
//! answers with its own digest code (independent of the core's), keeps bindings.

use md5::{Digest, Md5};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Binding {
    pub contact: String,
    pub call_id: String,
    pub cseq: u32,
    pub expires_at: Duration,
}

/// What the registrar does.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub realm: String,
    pub sha256: bool,
    pub qop: bool,
    /// Grant at most this many seconds.
    pub max_expires: u32,
    /// Demand at least this many seconds (423 below).
    pub min_expires: Option<u32>,
    /// Answer nothing at all.
    pub silent: bool,
    /// Answer every REGISTER with this status line and extra header lines.
    pub fixed: Option<(u16, &'static str, Vec<String>)>,
    /// A nonce older than this is stale (answered with `stale=true`).
    pub nonce_ttl: Option<Duration>,
    /// Put the expiry only in the Expires header, not in Contact.
    pub expires_header_only: bool,
    /// Requests arrive from this address, as through a NAT: answers carry it in the top
    /// Via's `received` and `rport` (RFC 3581).
    pub nat: Option<std::net::SocketAddr>,
    /// The NAT maps each request anew: `nat`'s port moves on by this after each answer.
    pub nat_port_step: u16,
    /// Ignores a Contact's `expires=0` beside a new one (a registrar that keeps the
    /// binding being replaced): lists it first, with 20 s left, then the new one.
    pub keep_removed: bool,
    /// Answers OPTIONS with 200 (else, like many registrars' scripts, not at all).
    pub answer_options: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            realm: "example.test".into(),
            sha256: false,
            qop: true,
            max_expires: 3600,
            min_expires: None,
            silent: false,
            fixed: None,
            nonce_ttl: None,
            expires_header_only: false,
            nat: None,
            nat_port_step: 0,
            keep_removed: false,
            answer_options: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Registrar {
    pub accounts: BTreeMap<String, String>,
    pub behaviour: Behaviour,
    pub bindings: BTreeMap<String, Binding>,
    /// Nonces issued, with the time they were issued.
    nonces: BTreeMap<String, Duration>,
    pub received: usize,
    /// Authorization header values seen.
    pub authorizations: Vec<String>,
    /// OPTIONS requests received.
    pub options: usize,
    /// With [`Behaviour::keep_removed`]: the binding it kept, and when it lapses.
    pub kept: Option<(String, Duration)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Registrar {
    pub fn new(accounts: &[(&str, &str)], behaviour: Behaviour) -> Self {
        Self {
            accounts: accounts
                .iter()
                .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                .collect(),
            behaviour,
            ..Self::default()
        }
    }

    fn h(&self, s: &str) -> String {
        if self.behaviour.sha256 {
            hex(&Sha256::digest(s.as_bytes()))
        } else {
            hex(&Md5::digest(s.as_bytes()))
        }
    }

    fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
        super::header(msg, name)
    }

    fn auth_params(value: &str) -> BTreeMap<String, String> {
        let rest = value.trim().strip_prefix("Digest").unwrap_or(value).trim();
        let mut out = BTreeMap::new();
        let mut cur = String::new();
        let mut in_q = false;
        let mut parts = Vec::new();
        for c in rest.chars() {
            match c {
                '"' => {
                    in_q = !in_q;
                    cur.push(c);
                }
                ',' if !in_q => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                out.insert(
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_owned(),
                );
            }
        }
        out
    }

    fn challenge(&mut self, now: Duration, stale: bool) -> String {
        let nonce = format!("nonce{}", self.nonces.len() + 1);
        self.nonces.insert(nonce.clone(), now);
        let mut v = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\"",
            self.behaviour.realm
        );
        if self.behaviour.sha256 {
            v.push_str(", algorithm=SHA-256");
        }
        if self.behaviour.qop {
            v.push_str(", qop=\"auth\"");
        }
        if stale {
            v.push_str(", stale=true");
        }
        v
    }

    fn response(req: &str, status: u16, reason: &str, extra: &[String]) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {status} {reason}\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = Self::header(req, name) {
                if name == "To" && status != 100 {
                    out.push_str(&format!("To: {v};tag=reg1\r\n"));
                } else {
                    out.push_str(&format!("{name}: {v}\r\n"));
                }
            }
        }
        for e in extra {
            out.push_str(e);
            out.push_str("\r\n");
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        out.into_bytes()
    }

    /// Handles one datagram; returns the responses to send back.
    pub fn handle(&mut self, bytes: &[u8], now: Duration) -> Vec<Vec<u8>> {
        let answers = self.answer(bytes, now);
        let Some(seen) = self.behaviour.nat else {
            return answers;
        };
        // What a registrar behind which our requests came through a NAT writes.
        let (ip, port) = (seen.ip(), seen.port());
        let step = self.behaviour.nat_port_step;
        self.behaviour.nat = Some(std::net::SocketAddr::new(ip, port.wrapping_add(step)));
        answers
            .into_iter()
            .map(|a| {
                String::from_utf8_lossy(&a)
                    .replacen(";rport\r\n", &format!(";received={ip};rport={port}\r\n"), 1)
                    .into_bytes()
            })
            .collect()
    }

    fn answer(&mut self, bytes: &[u8], now: Duration) -> Vec<Vec<u8>> {
        let req = String::from_utf8_lossy(bytes).into_owned();
        if req.starts_with("OPTIONS ") && self.behaviour.answer_options {
            self.options += 1;
            return vec![Self::response(&req, 200, "OK", &[])];
        }
        if req.starts_with("OPTIONS ") {
            self.options += 1;
        }
        if !req.starts_with("REGISTER ") {
            return vec![];
        }
        self.received += 1;
        if self.behaviour.silent {
            return vec![];
        }
        if let Some((status, reason, extra)) = self.behaviour.fixed.clone() {
            return vec![Self::response(&req, status, reason, &extra)];
        }
        let uri = req.split(' ').nth(1).unwrap_or("").to_owned();
        let Some(auth) = Self::header(&req, "Authorization").map(str::to_owned) else {
            let ch = self.challenge(now, false);
            return vec![Self::response(
                &req,
                401,
                "Unauthorized",
                &[format!("WWW-Authenticate: {ch}")],
            )];
        };
        self.authorizations.push(auth.clone());
        let p = Self::auth_params(&auth);
        let get = |k: &str| p.get(k).cloned().unwrap_or_default();
        let user = get("username");
        let nonce = get("nonce");
        let Some(issued) = self.nonces.get(&nonce).copied() else {
            let ch = self.challenge(now, false);
            return vec![Self::response(
                &req,
                401,
                "Unauthorized",
                &[format!("WWW-Authenticate: {ch}")],
            )];
        };
        let password = self.accounts.get(&user).cloned().unwrap_or_default();
        let ha1 = self.h(&format!("{user}:{}:{password}", self.behaviour.realm));
        let ha2 = self.h(&format!("REGISTER:{}", get("uri")));
        let expected = if self.behaviour.qop {
            self.h(&format!(
                "{ha1}:{nonce}:{}:{}:auth:{ha2}",
                get("nc"),
                get("cnonce")
            ))
        } else {
            self.h(&format!("{ha1}:{nonce}:{ha2}"))
        };
        if get("response") != expected || get("uri") != uri {
            let ch = self.challenge(now, false);
            return vec![Self::response(
                &req,
                401,
                "Unauthorized",
                &[format!("WWW-Authenticate: {ch}")],
            )];
        }
        if let Some(ttl) = self.behaviour.nonce_ttl {
            if now.saturating_sub(issued) > ttl {
                let ch = self.challenge(now, true);
                return vec![Self::response(
                    &req,
                    401,
                    "Unauthorized",
                    &[format!("WWW-Authenticate: {ch}")],
                )];
            }
        }
        let asked: u32 = Self::header(&req, "Expires")
            .and_then(|v| v.parse().ok())
            .unwrap_or(3600);
        let contact = Self::header(&req, "Contact").unwrap_or("").to_owned();
        let call_id = Self::header(&req, "Call-ID").unwrap_or("").to_owned();
        let cseq: u32 = Self::header(&req, "CSeq")
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if asked == 0 {
            self.bindings.remove(&user);
            return vec![Self::response(&req, 200, "OK", &[])];
        }
        if let Some(min) = self.behaviour.min_expires {
            if asked < min {
                return vec![Self::response(
                    &req,
                    423,
                    "Interval Too Brief",
                    &[format!("Min-Expires: {min}")],
                )];
            }
        }
        let granted = asked.min(self.behaviour.max_expires);
        let bare = contact.split(";expires").next().unwrap_or("").to_owned();
        self.bindings.insert(
            user,
            Binding {
                contact: bare.clone(),
                call_id,
                cseq,
                expires_at: now + Duration::from_secs(u64::from(granted)),
            },
        );
        let removal = contact
            .split_once(", ")
            .filter(|(_, old)| old.ends_with(";expires=0"));
        if let (true, Some((_, old))) = (self.behaviour.keep_removed, removal) {
            let old = old.trim_end_matches(";expires=0").to_owned();
            self.kept = Some((old, now + Duration::from_secs(20)));
        }
        let kept = self
            .kept
            .as_ref()
            .filter(|(_, lapses)| *lapses > now)
            .map(|(old, lapses)| (old.clone(), (*lapses - now).as_secs().max(1)));
        let extra = if let Some((old, left)) = kept {
            let new = removal.map_or(bare.as_str(), |(new, _)| new);
            vec![format!(
                "Contact: {old};expires={left}, {new};expires={granted}"
            )]
        } else if self.behaviour.expires_header_only {
            vec![format!("Contact: {bare}"), format!("Expires: {granted}")]
        } else {
            // A second, foreign binding as registrars list all bindings of the AoR.
            vec![format!(
                "Contact: {bare};expires={granted}, <sip:other@203.0.113.9>;expires=999"
            )]
        };
        vec![Self::response(&req, 200, "OK", &extra)]
    }
}

//! A registrar model (RFC 3261 §10.3) serving many accounts: digest challenges (MD5 or
//! SHA-256, with or without `qop`, nonce lifetime and `stale=true`), bindings that lapse,
//! grants shorter than asked, `423 Min-Expires`, and scripted misbehaviour — rejections
//! with `Retry-After`, silence, slowness, a restart that forgets every binding — and a
//! finite capacity: requests are served one after another at a fixed rate from a queue
//! of bounded length, and what arrives at a full queue is dropped, as a real registrar's
//! socket buffer does.
//!
//! Sans-IO: [`Registrar::handle_datagram`] takes bytes and returns datagrams to send;
//! [`Registrar::poll_timeout`] / [`Registrar::handle_timeout`] release slow answers and
//! expire bindings. It reads no clock and owns no socket, so the simulator runs it in
//! virtual time and `trunkline demo` on a loopback socket.

use crate::digest::{self, Algorithm, QopAuth, ResponseInput};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sip_core::message::{self, Message, MessageBuilder, Request};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long an answered transaction is remembered, so retransmissions get the same
/// answer (64·T1 plus the longest network delay we model).
const ANSWER_MEMORY: Duration = Duration::from_secs(40);

/// Where the granted expiry is written in a 200 OK (RFC 3261 §10.2.4 allows both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpiresPlacement {
    /// `;expires=` on each Contact.
    ContactParam,
    /// Only an `Expires` header.
    Header,
    /// Both.
    Both,
}

/// The registrar's fixed personality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrarConfig {
    /// The digest realm.
    pub realm: String,
    /// The algorithm challenged with.
    pub algorithm: Algorithm,
    /// RFC 8760: after a SHA-256 challenge, offer a second one with MD5.
    pub also_md5: bool,
    /// Offer `qop="auth"`.
    pub qop: bool,
    /// Challenge with `407 Proxy-Authenticate` instead of `401 WWW-Authenticate`.
    pub proxy_challenge: bool,
    /// A nonce older than this is answered with `stale=true`; `None`: nonces never expire.
    pub nonce_ttl: Option<Duration>,
    /// Grants at most this many seconds.
    pub max_expires: u32,
    /// Requests asking for less are answered `423` with this `Min-Expires`.
    pub min_expires: Option<u32>,
    /// Where the 200 OK states the grant.
    pub expires_in: ExpiresPlacement,
    /// The 200 OK lists a second, foreign binding of the AoR (as real registrars list all).
    pub foreign_binding: bool,
    /// How much it can take; `None`: unlimited, every request answered at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

/// A registrar's throughput: `per_second` requests served one after another, at most
/// `queue` waiting; a request arriving at a full queue is dropped unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Requests served per second (at least 1).
    pub per_second: u32,
    /// Requests that may wait to be served.
    pub queue: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            realm: "sim.test".to_owned(),
            algorithm: Algorithm::Md5,
            also_md5: false,
            qop: true,
            proxy_challenge: false,
            nonce_ttl: None,
            max_expires: 3600,
            min_expires: None,
            expires_in: ExpiresPlacement::ContactParam,
            foreign_binding: false,
            capacity: None,
        }
    }
}

/// What the registrar does with requests right now (changed by a fault schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Behaves as configured.
    Normal,
    /// Answers nothing.
    Silent,
    /// Answers every REGISTER with this status (403, 404, 5xx…), with `Retry-After`.
    Reject {
        /// Status code.
        status: u16,
        /// `Retry-After` seconds, if any.
        retry_after: Option<u32>,
    },
    /// Answers correctly, but only after this long.
    Slow {
        /// Processing delay.
        delay: Duration,
    },
}

/// One binding of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The AoR's user part.
    pub aor: String,
    /// The Contact URI as registered.
    pub contact: String,
    /// Call-ID of the registration that made it.
    pub call_id: String,
    /// Its last CSeq.
    pub cseq: u32,
    /// Seconds granted at the last refresh.
    pub granted: u32,
    /// When it was last refreshed.
    pub refreshed_at: Instant,
    /// When it lapses unless refreshed.
    pub expires_at: Instant,
}

/// A binding that lapsed because no refresh came in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lapse {
    /// The binding as it was.
    pub binding: Binding,
}

/// Counters, for tests and the demo's status page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrarStats {
    /// REGISTER requests received (retransmissions included).
    pub requests: u64,
    /// Retransmissions answered from memory (or absorbed while slow).
    pub retransmissions: u64,
    /// Challenges sent (401/407).
    pub challenges: u64,
    /// Challenges with `stale=true`.
    pub stale: u64,
    /// Answers whose digest did not verify.
    pub bad_digest: u64,
    /// Requests that carried `Basic` (or any non-Digest) credentials.
    pub non_digest: u64,
    /// Requests answered `400` (malformed credentials, qop not offered, wrong uri…).
    pub bad_requests: u64,
    /// Successful registrations and refreshes.
    pub registered: u64,
    /// Bindings removed by `Expires: 0`.
    pub unregistered: u64,
    /// `423` answers.
    pub too_brief: u64,
    /// Requests dropped while silent.
    pub ignored: u64,
    /// Requests answered by a [`Mode::Reject`].
    pub rejected: u64,
    /// Bindings that lapsed.
    pub lapsed: u64,
    /// Requests dropped because the queue of a limited [`Capacity`] was full.
    pub overflowed: u64,
    /// When it first held a binding for every account it has (how long a burst of
    /// first registrations took to reach it).
    pub all_bound_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct NonceState {
    issued_at: Instant,
    algorithms: Vec<Algorithm>,
    qop: bool,
    last_nc: u32,
}

/// A datagram to send: destination and bytes.
pub type Datagram = (SocketAddr, Vec<u8>);

/// The registrar model. See the module docs.
#[derive(Debug, Clone)]
pub struct Registrar {
    config: RegistrarConfig,
    mode: Mode,
    accounts: BTreeMap<String, String>,
    bindings: BTreeMap<(String, String), Binding>,
    expiry: BTreeSet<(Instant, String, String)>,
    nonces: BTreeMap<String, NonceState>,
    nonce_order: VecDeque<String>,
    answered: BTreeMap<String, Option<Datagram>>,
    answered_order: VecDeque<(Instant, String)>,
    delayed: BTreeMap<(Instant, u64), (String, Datagram)>,
    delayed_seq: u64,
    /// With a [`Capacity`]: when the last request queued will have been served.
    busy_until: Option<Instant>,
    lapses: Vec<Lapse>,
    rng: ChaCha8Rng,
    counter: u64,
    stats: RegistrarStats,
}

/// The user part of a `name-addr` or URI (`"A" <sip:user@host>;tag=x` → `user`).
fn uri_user(value: &str) -> Option<&str> {
    let start = value
        .find("sip:")
        .map(|i| i + 4)
        .or_else(|| value.find("sips:").map(|i| i + 5))?;
    let rest = value.get(start..)?;
    let at = rest.find('@')?;
    let user = rest.get(..at)?;
    (!user.is_empty() && !user.contains(['>', ';'])).then_some(user)
}

impl Registrar {
    /// A registrar with `config`, no accounts yet; `seed` feeds its nonces and tags.
    pub fn new(config: RegistrarConfig, seed: u64) -> Self {
        Self {
            config,
            mode: Mode::Normal,
            accounts: BTreeMap::new(),
            bindings: BTreeMap::new(),
            expiry: BTreeSet::new(),
            nonces: BTreeMap::new(),
            nonce_order: VecDeque::new(),
            answered: BTreeMap::new(),
            answered_order: VecDeque::new(),
            delayed: BTreeMap::new(),
            delayed_seq: 0,
            busy_until: None,
            lapses: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            counter: 0,
            stats: RegistrarStats::default(),
        }
    }

    /// Adds (or replaces) an account: digest `username` and its password.
    pub fn add_account(&mut self, username: &str, password: &str) {
        self.accounts
            .insert(username.to_owned(), password.to_owned());
    }

    /// The fixed personality.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// The current mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Changes the mode (a fault starts or ends).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// A restart: every binding, nonce, remembered answer and pending slow answer is
    /// forgotten (accounts and configuration stay, as they live in a database).
    pub fn restart(&mut self) {
        self.bindings.clear();
        self.expiry.clear();
        self.nonces.clear();
        self.nonce_order.clear();
        self.answered.clear();
        self.answered_order.clear();
        self.delayed.clear();
        self.busy_until = None;
    }

    /// Every current binding, by `(aor, contact)`.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values()
    }

    /// The bindings of one AoR user.
    pub fn bindings_of<'a>(&'a self, aor: &'a str) -> impl Iterator<Item = &'a Binding> + 'a {
        self.bindings
            .range((aor.to_owned(), String::new())..)
            .take_while(move |((a, _), _)| a == aor)
            .map(|(_, b)| b)
    }

    /// Bindings that lapsed since the last call.
    pub fn take_lapses(&mut self) -> Vec<Lapse> {
        std::mem::take(&mut self.lapses)
    }

    /// Counters.
    pub fn stats(&self) -> &RegistrarStats {
        &self.stats
    }

    /// When [`Registrar::handle_timeout`] has work: a slow answer or a binding expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let answer = self.delayed.keys().next().map(|(t, _)| *t);
        let expiry = self.expiry.first().map(|(t, _, _)| *t);
        match (answer, expiry) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        }
    }

    /// Releases slow answers that are due and expires lapsed bindings.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Datagram> {
        self.expire(now);
        let mut out = Vec::new();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (branch, datagram) = entry.remove();
            if let Some(slot) = self.answered.get_mut(&branch) {
                *slot = Some(datagram.clone());
            }
            out.push(datagram);
        }
        out
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, aor, contact)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            if let Some(binding) = self.bindings.remove(&(aor, contact)) {
                self.stats.lapsed += 1;
                self.lapses.push(Lapse { binding });
            }
        }
        while let Some((at, branch)) = self.answered_order.front() {
            if now.saturating_duration_since(*at) < ANSWER_MEMORY {
                break;
            }
            // A slow answer still pending keeps its entry until released.
            if matches!(self.answered.get(branch), Some(Some(_))) {
                self.answered.remove(branch);
            }
            self.answered_order.pop_front();
        }
    }

    /// Handles one datagram from `from`; returns the datagrams to send now.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Datagram> {
        self.expire(now);
        let Ok(Message::Request(req)) = message::parse(bytes) else {
            return Vec::new();
        };
        if req.method != "REGISTER" {
            let (status, reason) = if req.method == "OPTIONS" {
                (200, "OK")
            } else {
                (405, "Method Not Allowed")
            };
            let tag = self.tag();
            let resp = message::response_to(&req, status, reason, Some(&tag))
                .header("Allow", "REGISTER, OPTIONS")
                .to_bytes();
            return vec![(from, resp)];
        }
        self.stats.requests += 1;
        // Retransmissions take their place in the queue too: the registrar reads them.
        let served_at = match self.config.capacity {
            Some(c) => match self.admit(now, c) {
                Some(at) => Some(at),
                None => {
                    self.stats.overflowed += 1;
                    return Vec::new();
                }
            },
            None => None,
        };
        let branch = req
            .headers
            .top_via()
            .and_then(|v| v.branch)
            .unwrap_or_default();
        if let Some(previous) = self.answered.get(&branch) {
            // A retransmission: the transaction layer answers it from memory.
            self.stats.retransmissions += 1;
            return previous.iter().cloned().collect();
        }
        let response = match self.mode.clone() {
            Mode::Silent => {
                self.stats.ignored += 1;
                return Vec::new();
            }
            Mode::Reject {
                status,
                retry_after,
            } => {
                self.stats.rejected += 1;
                let tag = self.tag();
                let mut b = message::response_to(&req, status, reason_of(status), Some(&tag));
                if let Some(s) = retry_after {
                    b = b.header("Retry-After", s.to_string());
                }
                b.to_bytes()
            }
            Mode::Normal | Mode::Slow { .. } => self.process(now, &req),
        };
        self.answered_order.push_back((now, branch.clone()));
        let slow = match self.mode {
            Mode::Slow { delay } => Some(now + delay),
            _ => None,
        };
        let answer_at = match (slow, served_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b).filter(|at| *at > now),
        };
        if let Some(at) = answer_at {
            self.answered.insert(branch.clone(), None);
            self.delayed_seq += 1;
            self.delayed
                .insert((at, self.delayed_seq), (branch, (from, response)));
            return Vec::new();
        }
        self.answered.insert(branch, Some((from, response.clone())));
        vec![(from, response)]
    }

    /// Queues a request arriving at `now`: when it will have been served, or `None` when
    /// the queue is full.
    fn admit(&mut self, now: Instant, c: Capacity) -> Option<Instant> {
        let service = Duration::from_secs(1) / c.per_second.max(1);
        let start = self.busy_until.filter(|b| *b > now).unwrap_or(now);
        // Requests still waiting: the backlog in front of this one, rounded down.
        let waiting = start.saturating_duration_since(now).as_nanos() / service.as_nanos().max(1);
        if waiting > u128::from(c.queue) {
            return None;
        }
        let done = start + service;
        self.busy_until = Some(done);
        Some(done)
    }

    fn tag(&mut self) -> String {
        format!("{:012x}", self.rng.next_u64() >> 16)
    }

    fn challenge(&mut self, now: Instant, req: &Request, stale: bool) -> Vec<u8> {
        self.counter += 1;
        let nonce = format!("{:016x}{:x}", self.rng.next_u64(), self.counter);
        let mut algorithms = vec![self.config.algorithm];
        if self.config.also_md5 && self.config.algorithm != Algorithm::Md5 {
            algorithms.push(Algorithm::Md5);
        }
        self.remember_nonce(now, nonce.clone(), algorithms.clone());
        self.stats.challenges += 1;
        if stale {
            self.stats.stale += 1;
        }
        let (status, reason, header) = if self.config.proxy_challenge {
            (407, "Proxy Authentication Required", "Proxy-Authenticate")
        } else {
            (401, "Unauthorized", "WWW-Authenticate")
        };
        let tag = self.tag();
        let mut b = message::response_to(req, status, reason, Some(&tag));
        for (i, alg) in algorithms.iter().enumerate() {
            let mut v = format!("Digest realm=\"{}\", nonce=\"{nonce}\"", self.config.realm);
            // A lone MD5 challenge often omits the token (RFC 2617 default); name it
            // whenever there is a choice.
            if *alg != Algorithm::Md5 || i > 0 {
                v.push_str(", algorithm=");
                v.push_str(alg.token());
            }
            if self.config.qop {
                v.push_str(", qop=\"auth\"");
            }
            if stale {
                v.push_str(", stale=true");
            }
            b = b.header(header, v);
        }
        b.to_bytes()
    }

    fn remember_nonce(&mut self, now: Instant, nonce: String, algorithms: Vec<Algorithm>) {
        self.nonces.insert(
            nonce.clone(),
            NonceState {
                issued_at: now,
                algorithms,
                qop: self.config.qop,
                last_nc: 0,
            },
        );
        self.nonce_order.push_back(nonce);
        // Bounded memory: a client holding a nonce this old gets a fresh challenge.
        let cap = self.accounts.len() * 4 + 1024;
        while self.nonce_order.len() > cap {
            if let Some(old) = self.nonce_order.pop_front() {
                self.nonces.remove(&old);
            }
        }
    }

    fn bad_request(&mut self, req: &Request, why: &str) -> Vec<u8> {
        self.stats.bad_requests += 1;
        let tag = self.tag();
        message::response_to(req, 400, why, Some(&tag)).to_bytes()
    }

    /// Authenticates and applies one REGISTER in normal mode.
    fn process(&mut self, now: Instant, req: &Request) -> Vec<u8> {
        let header = if self.config.proxy_challenge {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let Some(credentials) = req.headers.get(header) else {
            return self.challenge(now, req, false);
        };
        let (scheme, p) = digest::parse_credentials(credentials);
        if !scheme.eq_ignore_ascii_case("Digest") {
            self.stats.non_digest += 1;
            return self.challenge(now, req, false);
        }
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let Some(nonce_state) = self.nonces.get(get("nonce")).cloned() else {
            // Unknown (or forgotten after a restart): a fresh challenge, not stale.
            return self.challenge(now, req, false);
        };
        let algorithm = match p.get("algorithm") {
            None => Algorithm::Md5,
            Some(t) => match Algorithm::from_token(t) {
                Some(a) => a,
                None => return self.bad_request(req, "Unsupported Algorithm"),
            },
        };
        if !nonce_state.algorithms.contains(&algorithm) {
            return self.bad_request(req, "Algorithm Not Offered");
        }
        if get("realm") != self.config.realm {
            return self.challenge(now, req, false);
        }
        if get("uri") != req.uri {
            return self.bad_request(req, "Digest URI Mismatch");
        }
        let qop = match (nonce_state.qop, p.get("qop")) {
            (true, Some(q)) if q == "auth" => {
                let nc = get("nc");
                let Ok(nc_value) = u32::from_str_radix(nc, 16) else {
                    return self.bad_request(req, "Bad Nonce Count");
                };
                if nc.len() != 8 || get("cnonce").is_empty() {
                    return self.bad_request(req, "Bad Nonce Count");
                }
                Some((
                    nc_value,
                    QopAuth {
                        nc,
                        cnonce: get("cnonce"),
                    },
                ))
            }
            (true, _) => return self.bad_request(req, "Qop Required"),
            (false, Some(_)) => return self.bad_request(req, "Qop Not Offered"),
            (false, None) => None,
        };
        let user = get("username");
        let password = self.accounts.get(user).cloned().unwrap_or_default();
        let expected = digest::expected_response(&ResponseInput {
            algorithm,
            username: user,
            realm: &self.config.realm,
            password: &password,
            method: &req.method,
            uri: get("uri"),
            nonce: get("nonce"),
            qop: qop.map(|(_, q)| q),
        });
        if !self.accounts.contains_key(user) || !expected.eq_ignore_ascii_case(get("response")) {
            self.stats.bad_digest += 1;
            return self.challenge(now, req, false);
        }
        if let Some((nc, _)) = qop {
            if nc <= nonce_state.last_nc {
                // A replayed nonce count: treat as an attack, demand fresh credentials.
                return self.challenge(now, req, false);
            }
            if let Some(s) = self.nonces.get_mut(get("nonce")) {
                s.last_nc = nc;
            }
        }
        if let Some(ttl) = self.config.nonce_ttl {
            if now.saturating_duration_since(nonce_state.issued_at) > ttl {
                return self.challenge(now, req, true);
            }
        }
        self.apply(now, req)
    }

    /// Applies the Contact bindings of an authenticated REGISTER (RFC 3261 §10.3 steps
    /// 6–8) and writes the answer.
    fn apply(&mut self, now: Instant, req: &Request) -> Vec<u8> {
        let Some(aor) = req.headers.get("To").and_then(uri_user).map(str::to_owned) else {
            return self.bad_request(req, "Bad To");
        };
        let call_id = req.headers.call_id().unwrap_or_default().to_owned();
        let cseq = req.headers.cseq().map(|(n, _)| n).unwrap_or(0);
        let header_expires = req.headers.expires();
        let contacts = req.headers.contacts();
        if contacts.iter().any(|c| c.uri == "*") {
            if header_expires != Some(0) || contacts.len() != 1 {
                return self.bad_request(req, "Wildcard Needs Expires 0");
            }
            let keys: Vec<(String, String)> = self
                .bindings_of(&aor)
                .map(|b| (b.aor.clone(), b.contact.clone()))
                .collect();
            for key in keys {
                self.remove_binding(&key);
                self.stats.unregistered += 1;
            }
            return self.ok(now, req, &aor, None);
        }
        let mut wanted = Vec::new();
        for c in &contacts {
            let asked = c.expires.or(header_expires).unwrap_or(3600);
            if asked > 0 {
                if let Some(min) = self.config.min_expires {
                    if asked < min {
                        self.stats.too_brief += 1;
                        let tag = self.tag();
                        return message::response_to(req, 423, "Interval Too Brief", Some(&tag))
                            .header("Min-Expires", min.to_string())
                            .to_bytes();
                    }
                }
            }
            let key = (aor.clone(), c.uri.clone());
            if let Some(existing) = self.bindings.get(&key) {
                if existing.call_id == call_id && existing.cseq >= cseq {
                    // §10.3 step 7: an out-of-order request for the same registration.
                    let tag = self.tag();
                    return message::response_to(req, 500, "Out Of Order", Some(&tag)).to_bytes();
                }
            }
            wanted.push((key, asked));
        }
        let mut granted_first = None;
        for (key, asked) in wanted {
            if asked == 0 {
                if self.remove_binding(&key) {
                    self.stats.unregistered += 1;
                }
                continue;
            }
            let granted = asked.min(self.config.max_expires);
            granted_first.get_or_insert(granted);
            self.remove_binding(&key);
            let expires_at = now + Duration::from_secs(u64::from(granted));
            self.expiry
                .insert((expires_at, key.0.clone(), key.1.clone()));
            self.bindings.insert(
                key.clone(),
                Binding {
                    aor: key.0,
                    contact: key.1,
                    call_id: call_id.clone(),
                    cseq,
                    granted,
                    refreshed_at: now,
                    expires_at,
                },
            );
            self.stats.registered += 1;
        }
        if self.stats.all_bound_at.is_none() && self.bindings.len() >= self.accounts.len() {
            self.stats.all_bound_at = Some(now);
        }
        self.ok(now, req, &aor, granted_first)
    }

    fn remove_binding(&mut self, key: &(String, String)) -> bool {
        match self.bindings.remove(key) {
            Some(b) => {
                self.expiry.remove(&(b.expires_at, b.aor, b.contact));
                true
            }
            None => false,
        }
    }

    fn ok(&mut self, now: Instant, req: &Request, aor: &str, granted: Option<u32>) -> Vec<u8> {
        let with_param = self.config.expires_in != ExpiresPlacement::Header;
        let with_header = self.config.expires_in != ExpiresPlacement::ContactParam;
        let mut listed: Vec<String> = self
            .bindings_of(aor)
            .map(|b| {
                let left = b.expires_at.saturating_duration_since(now);
                // Round up: a binding with 0.4 s left is still there.
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                if with_param {
                    format!("<{}>;expires={secs}", b.contact)
                } else {
                    format!("<{}>", b.contact)
                }
            })
            .collect();
        if self.config.foreign_binding && !listed.is_empty() {
            listed.push(if with_param {
                "<sip:other@203.0.113.9:5060>;expires=999".to_owned()
            } else {
                "<sip:other@203.0.113.9:5060>".to_owned()
            });
        }
        let tag = self.tag();
        let mut b: MessageBuilder = message::response_to(req, 200, "OK", Some(&tag));
        if !listed.is_empty() {
            b = b.header("Contact", listed.join(", "));
        }
        if with_header {
            if let Some(g) = granted {
                b = b.header("Expires", g.to_string());
            }
        }
        b.to_bytes()
    }
}

/// A reason phrase for the statuses the model sends.
fn reason_of(status: u16) -> &'static str {
    match status {
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        _ => "Failure",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn uri_user_reads_name_addr() {
        assert_eq!(uri_user("<sip:alice@example.com>;tag=1"), Some("alice"));
        assert_eq!(uri_user("\"A\" <sip:bob@h:5060>"), Some("bob"));
        assert_eq!(uri_user("<sip:example.com>"), None);
    }

    fn register(branch: &str) -> Vec<u8> {
        format!(
            "REGISTER sip:sim.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
             From: <sip:u1@sim.test>;tag=1\r\nTo: <sip:u1@sim.test>\r\nCall-ID: c-{branch}\r\n\
             CSeq: 1 REGISTER\r\nContact: <sip:u1@127.0.0.1>\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the test anchors virtual time once
    fn a_limited_registrar_serves_in_turn_and_drops_at_a_full_queue() {
        let config = RegistrarConfig {
            capacity: Some(Capacity {
                per_second: 1_000,
                queue: 2,
            }),
            ..RegistrarConfig::default()
        };
        let mut r = Registrar::new(config, 1);
        r.add_account("u1", "pw");
        let t0 = Instant::now();
        let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        // Five at once: one served, two wait, two dropped; none answered at once.
        for i in 0..5 {
            assert!(r
                .handle_datagram(t0, from, &register(&format!("z9hG4bK{i}")))
                .is_empty());
        }
        assert_eq!((r.stats().requests, r.stats().overflowed), (5, 2));
        // Answers leave one per millisecond.
        let ms = Duration::from_millis;
        assert_eq!(r.poll_timeout(), Some(t0 + ms(1)));
        assert_eq!(r.handle_timeout(t0 + ms(1)).len(), 1);
        assert_eq!(r.handle_timeout(t0 + ms(3)).len(), 2);
        // The queue has drained: the next is taken again.
        r.handle_datagram(t0 + ms(3), from, &register("z9hG4bK9"));
        assert_eq!(r.stats().overflowed, 2);
    }
}

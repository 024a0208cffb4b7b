//! REGISTER invariants, read off the wire: one transaction in flight per registration,
//! Call-ID constant and CSeq increasing, retransmissions identical, digest only, `qop`
//! and algorithm as challenged, `nc` increasing; and the refresh-before-expiry check
//! for lapsed bindings.

use super::wire::{self, Scanned};
use super::{Findings, Invariant, KnownIssues};
use crate::models::digest::parse_credentials;
use crate::models::registrar::Binding;
use crate::trace::Fnv;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How long after it was sent a REGISTER's answer may still reach the core: a
/// datagram's delay is bounded well within 64·T1, but a partition holds a
/// connection's bytes for up to its give-up time (120 s) before they move on.
const LATE_ANSWERS: Duration = Duration::from_secs(180);

#[derive(Debug, Clone)]
struct Txn {
    call_id: String,
    cseq: u32,
    /// The earliest it may have begun in the core (its expiry for the overlap check).
    sent_at: Instant,
    /// When it was written (the latest it may have begun: answers are taken as
    /// reaching it until 64·T1 after this).
    written_at: Instant,
    final_delivered: bool,
    fingerprint: u64,
    /// The request carried credentials.
    authorized: bool,
    /// Past 64·T1: the core gave it up (a late answer is only recognised).
    expired: bool,
    /// The stream connection it went on (`None`: a datagram): when that connection
    /// goes, the transaction ends at once (RFC 3261 §17.1.4, a transport error).
    conn: Option<u64>,
}

#[derive(Debug, Clone)]
struct Challenge {
    nonce: String,
    algorithms: Vec<String>,
    qop: Vec<String>,
}

#[derive(Debug, Clone)]
struct Call {
    provider: String,
    last_cseq: u32,
    open: Vec<String>,
    challenges: VecDeque<Challenge>,
    last_nc: BTreeMap<String, u32>,
    retired: bool,
    /// The last 2xx for this Call-ID reached the core after it had given the transaction
    /// up (Timer F): the registrar holds a binding the core does not know it has, and
    /// owes no refresh for (it registers again on its own schedule).
    late_success: bool,
    /// The registrar refused the credentials of the last REGISTER (its answer to our
    /// answer was another challenge, or 403/404): a refresh was tried and refused, so a
    /// lapse is the registrar's verdict, not a missing refresh. A credential change
    /// refreshes the same binding in place with the new password; while the provider
    /// has not taken that password yet, the old binding runs out.
    refused: bool,
}

#[derive(Debug, Clone, Default)]
struct ProviderState {
    current_call: Option<String>,
    /// The provider's entry changed in a list the core accepted: its next registration
    /// may (must) use a new Call-ID.
    change_allowed: bool,
    /// Valid, enabled and listed in the last accepted list.
    active: bool,
}

/// The REGISTER checker.
#[derive(Debug, Clone)]
pub struct RegisterChecks {
    span: Duration,
    accounts: BTreeMap<(usize, String), String>,
    txns: BTreeMap<String, Txn>,
    txn_order: VecDeque<(Instant, String)>,
    /// Transactions the core gave up, until no late answer can come.
    expired_order: VecDeque<(Instant, String)>,
    calls: BTreeMap<String, Call>,
    providers: BTreeMap<String, ProviderState>,
    open: usize,
    known: KnownIssues,
    reregister: Option<(String, Instant)>,
    tolerated: u64,
}

fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.write(bytes);
    h.finish()
}

impl RegisterChecks {
    /// A checker. `t1` gives the transaction span (64·T1); `accounts` maps
    /// `(registrar index, SIP user)` to provider id.
    pub fn new(
        t1: Duration,
        accounts: BTreeMap<(usize, String), String>,
        known: KnownIssues,
    ) -> Self {
        Self {
            known,
            reregister: None,
            tolerated: 0,
            span: t1 * 64,
            accounts,
            txns: BTreeMap::new(),
            txn_order: VecDeque::new(),
            expired_order: VecDeque::new(),
            calls: BTreeMap::new(),
            providers: BTreeMap::new(),
            open: 0,
        }
    }

    /// A `Command::Reregister` for `provider` is being issued at `now`.
    pub fn reregister_commanded(&mut self, provider: &str, now: Instant) {
        self.reregister = Some((provider.to_owned(), now));
    }

    /// Violations of known issues that were tolerated.
    pub fn tolerated(&self) -> u64 {
        self.tolerated
    }

    /// REGISTER transactions with neither a final response nor a timeout yet.
    pub fn open_transactions(&self) -> usize {
        self.open
    }

    /// The Call-ID a provider registers with now.
    pub fn current_call(&self, provider: &str) -> Option<&str> {
        self.providers
            .get(provider)
            .and_then(|p| p.current_call.as_deref())
    }

    /// The provider's entry changed (or appeared) in an accepted list.
    pub fn allow_call_change(&mut self, provider: &str) {
        self.providers
            .entry(provider.to_owned())
            .or_default()
            .change_allowed = true;
    }

    /// Whether the provider is valid, enabled and listed in the last accepted list.
    pub fn set_active(&mut self, provider: &str, active: bool) {
        self.providers
            .entry(provider.to_owned())
            .or_default()
            .active = active;
    }

    /// Closes transactions past 64·T1 (they timed out at the core), and forgets them
    /// once no late answer can still come ([`LATE_ANSWERS`]).
    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.txn_order.front() {
            if now.saturating_duration_since(*at) < self.span + Duration::from_secs(1) {
                break;
            }
            let Some((at, branch)) = self.txn_order.pop_front() else {
                break;
            };
            if let Some(t) = self.txns.get_mut(&branch) {
                if !t.final_delivered && !t.expired {
                    self.open = self.open.saturating_sub(1);
                }
                t.expired = true;
                if let Some(c) = self.calls.get_mut(&t.call_id) {
                    c.open.retain(|b| *b != branch);
                }
            }
            self.expired_order.push_back((at, branch));
        }
        while let Some((at, _)) = self.expired_order.front() {
            if now.saturating_duration_since(*at) < LATE_ANSWERS {
                break;
            }
            if let Some((_, branch)) = self.expired_order.pop_front() {
                self.txns.remove(&branch);
            }
        }
    }

    /// A message trunkline sent to registrar `registrar`, as a datagram (`conn`:
    /// `None`) or on stream connection `conn`. `began` is when its transaction may
    /// have begun in the core: `now`, except for a message the core held for a
    /// connection that was still opening (its Timer F runs from before the write).
    #[allow(clippy::too_many_arguments)]
    pub fn on_transmit(
        &mut self,
        f: &mut Findings,
        now: Instant,
        began: Instant,
        registrar: usize,
        bytes: &[u8],
        conn: Option<u64>,
    ) {
        self.prune(now);
        let Some(m) = wire::scan(bytes) else {
            f.push(
                Invariant::MalformedRegister,
                "trunkline sent an unreadable datagram",
            );
            return;
        };
        if m.method() != Some("REGISTER") {
            return;
        }
        let (Some(branch), Some(call_id), Some((cseq, method)), Some(user)) =
            (m.branch(), m.call_id(), m.cseq(), m.to_user())
        else {
            f.push(
                Invariant::MalformedRegister,
                "REGISTER without Via branch, Call-ID, CSeq or To user",
            );
            return;
        };
        if method != "REGISTER" || !branch.starts_with("z9hG4bK") {
            f.push(
                Invariant::MalformedRegister,
                format!("REGISTER with CSeq method {method} or branch without magic cookie"),
            );
        }
        let Some(provider) = self.accounts.get(&(registrar, user.to_owned())).cloned() else {
            f.push(
                Invariant::UnknownAccount,
                format!("REGISTER for user {user} at registrar {registrar}"),
            );
            return;
        };
        let fp = fingerprint(bytes);
        if let Some(t) = self.txns.get(branch) {
            if t.call_id != call_id || t.cseq != cseq || t.fingerprint != fp {
                f.push(
                    Invariant::RetransmissionMismatch,
                    format!("{provider}: branch reused by a different request"),
                );
            }
            if t.final_delivered {
                f.push(
                    Invariant::RetransmissionAfterFinal,
                    format!(
                        "{provider}: REGISTER CSeq {cseq} retransmitted after its final response"
                    ),
                );
            }
            return;
        }
        self.new_transaction(
            f, now, began, &m, &provider, branch, call_id, cseq, fp, conn,
        );
    }

    /// Stream connection `conn` is gone for the core (it read `Closed`, or closed it
    /// itself): every transaction on it has ended with a transport error, so a new
    /// REGISTER of the same registration does not overlap them.
    pub fn on_conn_gone(&mut self, conn: u64) {
        let ended: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, t)| t.conn == Some(conn) && !t.final_delivered && !t.expired)
            .map(|(b, _)| b.clone())
            .collect();
        for branch in ended {
            let Some(t) = self.txns.get_mut(&branch) else {
                continue;
            };
            t.final_delivered = true;
            self.open = self.open.saturating_sub(1);
            if let Some(c) = self.calls.get_mut(&t.call_id) {
                c.open.retain(|b| *b != branch);
            }
        }
    }

    /// Whether a REGISTER of `provider`'s current registration awaits its answer.
    pub fn in_flight(&self, provider: &str, now: Instant) -> bool {
        let Some(call) = self.current_call(provider).and_then(|c| self.calls.get(c)) else {
            return false;
        };
        call.open.iter().any(|b| {
            self.txns
                .get(b)
                .is_some_and(|t| !t.final_delivered && now < t.written_at + self.span)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn new_transaction(
        &mut self,
        f: &mut Findings,
        now: Instant,
        began: Instant,
        m: &Scanned<'_>,
        provider: &str,
        branch: &str,
        call_id: &str,
        cseq: u32,
        fp: u64,
        conn: Option<u64>,
    ) {
        let span = self.span;
        let call = self
            .calls
            .entry(call_id.to_owned())
            .or_insert_with(|| Call {
                provider: provider.to_owned(),
                last_cseq: 0,
                open: Vec::new(),
                challenges: VecDeque::new(),
                last_nc: BTreeMap::new(),
                retired: false,
                late_success: false,
                refused: false,
            });
        if call.provider != provider {
            f.push(
                Invariant::CallIdChanged,
                format!("Call-ID used by both {} and {provider}", call.provider),
            );
        }
        let expires = m.requested_expires().unwrap_or(3600);
        let commanded = self
            .reregister
            .as_ref()
            // The new REGISTER may wait for a DNS answer or the pacer: allow a moment.
            .is_some_and(|(p, at)| {
                p == provider && now.saturating_duration_since(*at) <= Duration::from_secs(2)
            });
        let tolerate = (expires == 0 && self.known.unregister_overlaps_register)
            || (commanded && self.known.reregister_overlaps_register);
        let mut abandoned = Vec::new();
        for b in &call.open {
            if let Some(t) = self.txns.get(b) {
                if !t.final_delivered && now < t.sent_at + span {
                    if tolerate {
                        // The core abandoned it: from now on it counts as closed.
                        self.tolerated += 1;
                        abandoned.push(b.clone());
                        continue;
                    }
                    f.push(
                        Invariant::OverlappingTransaction,
                        format!(
                            "{provider}: new REGISTER (CSeq {cseq}, Expires {expires}{}) while CSeq {} sent {:.3}s ago has no final response",
                            if commanded { ", after Command::Reregister" } else { "" },
                            t.cseq,
                            (now - t.sent_at).as_secs_f64()
                        ),
                    );
                }
            }
        }
        call.open.retain(|b| !abandoned.contains(b));
        for b in &abandoned {
            if let Some(t) = self.txns.get_mut(b) {
                t.final_delivered = true;
                self.open = self.open.saturating_sub(1);
            }
        }
        if call.last_cseq != 0 && cseq <= call.last_cseq {
            f.push(
                Invariant::CseqNotIncreasing,
                format!("{provider}: CSeq {cseq} after {}", call.last_cseq),
            );
        }
        call.last_cseq = call.last_cseq.max(cseq);
        for header in ["Authorization", "Proxy-Authorization"] {
            for value in m.headers(header) {
                check_credentials(f, provider, call, value);
            }
        }
        let retired = call.retired;
        let state = self.providers.entry(provider.to_owned()).or_default();
        if expires > 0 {
            if retired {
                f.push(
                    Invariant::RetiredRegistrationRefreshed,
                    format!("{provider}: a replaced registration asked for a binding again"),
                );
            }
            match state.current_call.clone() {
                None => {
                    state.current_call = Some(call_id.to_owned());
                    state.change_allowed = false;
                }
                // The core kept this registration through the list change (the change
                // did not touch what registering depends on): nothing is pending.
                Some(c) if c == call_id => state.change_allowed = false,
                Some(old) => {
                    if !state.change_allowed {
                        f.push(
                            Invariant::CallIdChanged,
                            format!("{provider}: Call-ID changed without a change of the provider"),
                        );
                    }
                    state.change_allowed = false;
                    state.current_call = Some(call_id.to_owned());
                    if let Some(o) = self.calls.get_mut(&old) {
                        o.retired = true;
                    }
                }
            }
        }
        if let Some(call) = self.calls.get_mut(call_id) {
            call.open.push(branch.to_owned());
        }
        self.txns.insert(
            branch.to_owned(),
            Txn {
                call_id: call_id.to_owned(),
                cseq,
                // Its own deadline counts from when it may have begun (the earliest,
                // so that its expiry is never later than the core's); the overlap check
                // above uses `now`, when it surely existed.
                sent_at: began,
                written_at: now,
                final_delivered: false,
                fingerprint: fp,
                expired: false,
                conn,
                authorized: m.headers("Authorization").next().is_some()
                    || m.headers("Proxy-Authorization").next().is_some(),
            },
        );
        self.txn_order.push_back((now, branch.to_owned()));
        self.open += 1;
    }

    /// A datagram delivered to trunkline from a registrar.
    pub fn on_deliver(&mut self, now: Instant, bytes: &[u8]) {
        self.prune(now);
        let Some(m) = wire::scan(bytes) else {
            return;
        };
        let Some(status) = m.status() else {
            return;
        };
        let span = self.span;
        // Only a response to a live transaction reaches the registration; a late one is
        // a stray the core drops, and its challenge must not count as delivered.
        let mut accepted = false;
        // A final response after the core gave the transaction up (not a duplicate of
        // one it took).
        let mut late = false;
        if let Some(t) = m.branch().and_then(|b| self.txns.get_mut(b)) {
            // A transaction whose start is uncertain (held for a connection) counts as
            // live as long as it may be, and as given up as soon as it may be.
            accepted = !t.final_delivered && now < t.written_at + span;
            late = !t.final_delivered && now >= t.sent_at + span;
            if status >= 200 && accepted {
                let refused =
                    matches!(status, 403 | 404) || (t.authorized && matches!(status, 401 | 407));
                if let Some(c) = self.calls.get_mut(&t.call_id) {
                    c.refused = refused;
                }
                t.final_delivered = true;
                self.open = self.open.saturating_sub(1);
                let call_id = t.call_id.clone();
                if let (Some(c), Some(b)) = (self.calls.get_mut(&call_id), m.branch()) {
                    c.open.retain(|x| x != b);
                }
            }
        }
        if (200..300).contains(&status) && (accepted || late) {
            if let Some(call) = m.call_id().and_then(|c| self.calls.get_mut(c)) {
                call.late_success = late;
            }
        }
        if accepted && (status == 401 || status == 407) {
            let Some(call) = m.call_id().and_then(|c| self.calls.get_mut(c)) else {
                return;
            };
            for header in ["WWW-Authenticate", "Proxy-Authenticate"] {
                for value in m.headers(header) {
                    let (_, p) = parse_credentials(value);
                    let Some(nonce) = p.get("nonce") else {
                        continue;
                    };
                    let algorithm = p
                        .get("algorithm")
                        .cloned()
                        .unwrap_or_else(|| "MD5".to_owned());
                    let qop = p
                        .get("qop")
                        .map(|q| q.split(',').map(|s| s.trim().to_owned()).collect())
                        .unwrap_or_default();
                    if let Some(c) = call.challenges.iter_mut().find(|c| c.nonce == *nonce) {
                        c.algorithms.push(algorithm);
                    } else {
                        call.challenges.push_back(Challenge {
                            nonce: nonce.clone(),
                            algorithms: vec![algorithm],
                            qop,
                        });
                    }
                    while call.challenges.len() > 8 {
                        call.challenges.pop_front();
                    }
                }
            }
        }
    }

    /// A binding lapsed at registrar `registrar`. `healthy_since`: since when the link
    /// and the registrar have been healthy without a break (`None`: not healthy now).
    pub fn on_lapse(
        &mut self,
        f: &mut Findings,
        registrar: usize,
        binding: &Binding,
        healthy_since: Option<Instant>,
        shutting_down: bool,
    ) {
        let Some(provider) = self.accounts.get(&(registrar, binding.aor.clone())) else {
            return;
        };
        let Some(state) = self.providers.get(provider) else {
            return;
        };
        let current = state.current_call.as_deref() == Some(binding.call_id.as_str());
        let known = !self
            .calls
            .get(&binding.call_id)
            .is_some_and(|c| c.late_success);
        let healthy = healthy_since.is_some_and(|s| s <= binding.refreshed_at);
        let refused = self.calls.get(&binding.call_id).is_some_and(|c| c.refused);
        if current
            && known
            && !refused
            && state.active
            && !state.change_allowed
            && healthy
            && !shutting_down
        {
            f.push(
                Invariant::BindingLapsed,
                format!(
                    "{provider}: binding granted for {}s lapsed at the registrar without a refresh, link healthy throughout",
                    binding.granted
                ),
            );
        }
    }
}

fn check_credentials(f: &mut Findings, provider: &str, call: &mut Call, value: &str) {
    let (scheme, p) = parse_credentials(value);
    if !scheme.eq_ignore_ascii_case("Digest") {
        f.push(
            Invariant::NonDigestAuth,
            format!("{provider}: credentials with scheme {scheme}"),
        );
        return;
    }
    let Some(nonce) = p.get("nonce") else {
        f.push(
            Invariant::UnknownNonce,
            format!("{provider}: credentials without nonce"),
        );
        return;
    };
    let Some(ch) = call.challenges.iter().find(|c| c.nonce == *nonce) else {
        f.push(
            Invariant::UnknownNonce,
            format!("{provider}: answered a nonce never delivered to this registration"),
        );
        return;
    };
    match p.get("qop") {
        Some(q) if !ch.qop.iter().any(|o| o == q) => f.push(
            Invariant::QopMismatch,
            format!("{provider}: qop={q} but the challenge offered {:?}", ch.qop),
        ),
        None if ch.qop.iter().any(|o| o == "auth") => f.push(
            Invariant::QopMismatch,
            format!("{provider}: challenge offered qop=auth, answer used none"),
        ),
        _ => {}
    }
    let alg = p.get("algorithm").map_or("MD5", String::as_str);
    if !ch.algorithms.iter().any(|a| a.eq_ignore_ascii_case(alg)) {
        f.push(
            Invariant::AlgorithmMismatch,
            format!(
                "{provider}: algorithm {alg}, challenge named {:?}",
                ch.algorithms
            ),
        );
    }
    if p.contains_key("qop") {
        let nc = p
            .get("nc")
            .and_then(|n| u32::from_str_radix(n, 16).ok())
            .unwrap_or(0);
        let last = call.last_nc.entry(nonce.clone()).or_insert(0);
        if nc <= *last {
            f.push(
                Invariant::NcNotIncreasing,
                format!("{provider}: nc {nc} after {last} for one nonce"),
            );
        }
        *last = (*last).max(nc);
    }
}

//! A SIP provider that places inbound calls (the UAC side of RFC 3261 §13 and §17.1):
//! an INVITE with an SDP offer to a DID's Request-URI, `100`/`18x`/`2xx`/`3xx–6xx`
//! handled, the 2xx ACKed in a transaction of its own and a non-2xx ACKed hop-by-hop,
//! Timer A/B retransmission on UDP, a BYE after a configured hold time or a CANCEL
//! before answer, and in-dialog BYE, re-INVITE, REFER and OPTIONS from the far side
//! answered. Optionally it sends a re-INVITE of its own (a new SDP version, as a hold
//! would) some time after the answer, and a call still ringing after [`RING_LIMIT`] is
//! CANCELled, as a real carrier gives up on a destination that never answers.
//!
//! Sans-IO like the registrar model: [`Provider::place_call`] and
//! [`Provider::handle_datagram`] return datagrams to send; [`Provider::poll_timeout`] /
//! [`Provider::handle_timeout`] drive retransmissions and hang-ups. What it saw is kept
//! per call in a [`CallRecord`] for tests and the demo.
//!
//! Every request it sends goes to the call's `target` address (trunkline, acting as the
//! next hop); a Record-Route set is not modelled, the remote Contact only becomes the
//! Request-URI of in-dialog requests.

use crate::registrar::Datagram;
use crate::sip::{addr_uri, reason, sdp, top_branch, Credentials, TimerTable, TimerValues};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sip_core::message::{self, Message, MessageBuilder, Request, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// An answered call is probed with an in-dialog OPTIONS this often; an answer other
/// than 2xx (the far side forgot the dialog: 481) or none at all ends it with BYE, as a
/// carrier's dialog keep-alive (or its RTP timeout) ends a call whose far end is gone.
pub const KEEPALIVE: Duration = Duration::from_secs(60);

/// A call with no final response this long after its INVITE is CANCELled (a carrier's
/// own ringing limit, RFC 3261 Timer C's three minutes).
pub const RING_LIMIT: Duration = Duration::from_secs(180);

mod challenge;
mod record;
pub use record::{CallOutcome, CallRecord, StatusSeen};

/// How a call placed by the provider ends from its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Ending {
    /// Hang up with BYE this long after the 2xx.
    HangUpAfter(Duration),
    /// CANCEL this long after the INVITE left if no final response came by then (sent
    /// once a provisional arrived, as RFC 3261 §9.1 requires); a 2xx that still comes
    /// is ACKed and ended with BYE at once.
    CancelAfter(Duration),
    /// Never hang up: the far side ends the call.
    Wait,
}

/// One call to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSpec {
    /// Where every request of the call is sent (trunkline's SIP address).
    pub target: SocketAddr,
    /// The Request-URI: a DID at trunkline, e.g. `sip:+15551230000@127.0.0.1:5060`.
    pub request_uri: String,
    /// The To URI when it is not the Request-URI: a registration trunk sends the call
    /// to the Contact we registered and puts the dialed number in To only.
    pub to_uri: Option<String>,
    /// The caller's number (the From user).
    pub caller: String,
    /// The caller's display name, if any.
    pub display_name: Option<String>,
    /// Extra headers on the INVITE (P-Asserted-Identity, `X-*` …), written as given.
    pub extra_headers: Vec<(String, String)>,
    /// How the provider ends the call.
    pub ending: Ending,
    /// Answers one `401`/`407` with a new INVITE carrying these (same Call-ID, CSeq + 1);
    /// `None`: a challenge is a final error like any other.
    pub credentials: Option<Credentials>,
    /// Sends a re-INVITE (the same session, a new SDP version) this long after the 2xx.
    pub reinvite_after: Option<Duration>,
}

/// The provider's fixed personality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Its own address, for Via, Contact and SDP.
    pub local: SocketAddr,
    /// The host of its From URIs.
    pub domain: String,
    /// T1 and T2.
    pub timers: TimerValues,
}

/// Which call of a provider (handles are never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallHandle(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE sent, nothing heard (Timer A runs).
    Calling,
    /// A provisional came.
    Proceeding,
    /// A 2xx came and was ACKed.
    Confirmed,
    /// Over (final error, BYE done, timed out); late retransmissions still get an ACK.
    Terminated,
}

/// A non-INVITE request in flight (CANCEL or BYE), retransmitted per Timer E.
#[derive(Debug, Clone)]
struct Pending {
    bytes: Vec<u8>,
    interval: Duration,
    answered: bool,
}

impl Pending {
    /// `bytes` just sent, retransmitted first after `t1`.
    fn new(bytes: &[u8], t1: Duration) -> Self {
        Self {
            bytes: bytes.to_vec(),
            interval: t1,
            answered: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Call {
    spec: CallSpec,
    from: String,
    to: String,
    cseq: u32,
    /// The CSeq number of the current INVITE (2 after a challenge was answered).
    invite_cseq: u32,
    /// Whether the current INVITE got a final response.
    final_seen: bool,
    /// The ACK of a challenge, for the challenge's retransmissions.
    challenge_ack: Option<Vec<u8>>,
    session: u64,
    invite_branch: String,
    invite: Vec<u8>,
    invite_interval: Duration,
    state: State,
    remote_tag: Option<String>,
    remote_target: Option<String>,
    /// The last ACK sent, sent again for a retransmitted final.
    ack: Option<Vec<u8>>,
    /// The cancel time came before any provisional: CANCEL at the first one.
    cancel_due: bool,
    cancel: Option<Pending>,
    bye: Option<Pending>,
    /// Our re-INVITE in flight (its CSeq number; retransmitted like a BYE until a final).
    reinvite: Option<(u32, Pending)>,
    /// The ACK of the re-INVITE's final, sent again for a retransmitted one.
    reinvite_ack: Option<Vec<u8>>,
    /// The keep-alive OPTIONS in flight.
    keepalive: Option<Pending>,
    /// Answers to the far side's requests, by branch, for their retransmissions.
    answered: BTreeMap<String, Vec<u8>>,
    sdp_version: u32,
    record: CallRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Timer A: retransmit the INVITE with this CSeq while calling.
    InviteRetransmit(u32),
    /// Timer B of the INVITE with this CSeq: give up while calling.
    InviteTimeout(u32),
    /// Send the configured CANCEL.
    Cancel,
    /// Send the configured BYE.
    HangUp,
    /// Timer E of the CANCEL or BYE (`true`: BYE).
    Retransmit(bool),
    /// Timer F of the CANCEL or BYE (`true`: BYE).
    Timeout(bool),
    /// Send the configured re-INVITE.
    Reinvite,
    /// Retransmit the re-INVITE (the interval just waited).
    ReinviteRetransmit(Duration),
    /// Give the re-INVITE up.
    ReinviteTimeout,
    /// Probe the dialog with OPTIONS.
    Keepalive,
    /// Retransmit the keep-alive (the interval just waited).
    KeepaliveRetransmit(Duration),
    /// No answer to the keep-alive: the far side is gone.
    KeepaliveTimeout,
}

/// The provider model. See the module docs.
#[derive(Debug, Clone)]
pub struct Provider {
    config: ProviderConfig,
    /// Calls by handle number; ended ones leave through [`Provider::take_ended`].
    calls: BTreeMap<usize, Call>,
    next_handle: usize,
    by_call_id: BTreeMap<String, usize>,
    timers: TimerTable<(usize, Timer)>,
    rng: ChaCha8Rng,
}

impl Provider {
    /// A provider with `config`; `seed` feeds its Call-IDs, tags and branches.
    pub fn new(config: ProviderConfig, seed: u64) -> Self {
        Self {
            config,
            calls: BTreeMap::new(),
            next_handle: 0,
            by_call_id: BTreeMap::new(),
            timers: TimerTable::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Every call placed and not yet taken, in order.
    pub fn calls(&self) -> impl Iterator<Item = &CallRecord> {
        self.calls.values().map(|c| &c.record)
    }

    /// One call's record.
    pub fn call(&self, handle: CallHandle) -> Option<&CallRecord> {
        self.calls.get(&handle.0).map(|c| &c.record)
    }

    /// Removes and returns the calls that ended at least 64·T1 before `now` (late
    /// retransmissions of their finals were ACKed until then), so that a long run keeps
    /// memory bounded; a datagram for one of them afterwards is treated as unknown.
    pub fn take_ended(&mut self, now: Instant) -> Vec<CallRecord> {
        let linger = self.config.timers.timeout();
        let done: Vec<usize> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.state == State::Terminated
                    && c.record
                        .ended_at
                        .is_some_and(|at| now.saturating_duration_since(at) >= linger)
            })
            .map(|(h, _)| *h)
            .collect();
        let mut taken = Vec::with_capacity(done.len());
        for handle in done {
            if let Some(call) = self.calls.remove(&handle) {
                self.by_call_id.remove(&call.record.call_id);
                taken.push(call.record);
            }
        }
        taken
    }

    /// Calls not yet ended.
    pub fn active_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.state != State::Terminated)
            .count()
    }

    fn token(&mut self) -> String {
        format!("{:012x}", self.rng.next_u64() >> 16)
    }

    fn branch(&mut self) -> String {
        format!("z9hG4bK-prov-{}", self.token())
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch={branch};rport", self.config.local)
    }

    fn contact(&self) -> String {
        format!("<sip:provider@{}>", self.config.local)
    }

    /// Places a call: returns its handle and the INVITE to send.
    pub fn place_call(&mut self, now: Instant, spec: CallSpec) -> (CallHandle, Vec<Datagram>) {
        let call_id = format!("{}@provider.invalid", self.token());
        let from_tag = self.token();
        let branch = self.branch();
        let display = spec
            .display_name
            .as_ref()
            .map(|d| format!("\"{d}\" "))
            .unwrap_or_default();
        let from = format!(
            "{display}<sip:{}@{}>;tag={from_tag}",
            spec.caller, self.config.domain
        );
        let to = format!("<{}>", spec.to_uri.as_ref().unwrap_or(&spec.request_uri));
        let session = self.rng.next_u64() >> 16;
        let invite = self.invite(&spec, &from, &to, &call_id, 1, &branch, session, None);
        let index = self.next_handle;
        self.next_handle += 1;
        let t1 = self.config.timers.t1;
        self.timers
            .schedule(now + t1, (index, Timer::InviteRetransmit(1)));
        self.timers.schedule(
            now + self.config.timers.timeout(),
            (index, Timer::InviteTimeout(1)),
        );
        if let Ending::CancelAfter(after) = spec.ending {
            self.timers.schedule(now + after, (index, Timer::Cancel));
        }
        self.timers
            .schedule(now + RING_LIMIT, (index, Timer::Cancel));
        let target = spec.target;
        self.by_call_id.insert(call_id.clone(), index);
        self.calls.insert(
            index,
            Call {
                record: CallRecord {
                    call_id,
                    request_uri: spec.request_uri.clone(),
                    started_at: now,
                    statuses: Vec::new(),
                    invite_retransmissions: 0,
                    acks_sent: 0,
                    answered_at: None,
                    cancelled_at: None,
                    bye_sent_at: None,
                    requests_received: Vec::new(),
                    ended_at: None,
                    outcome: None,
                },
                spec,
                from,
                to,
                cseq: 1,
                invite_cseq: 1,
                final_seen: false,
                challenge_ack: None,
                session,
                invite_branch: branch,
                invite: invite.clone(),
                invite_interval: t1,
                state: State::Calling,
                remote_tag: None,
                remote_target: None,
                ack: None,
                cancel_due: false,
                cancel: None,
                bye: None,
                reinvite: None,
                reinvite_ack: None,
                keepalive: None,
                answered: BTreeMap::new(),
                sdp_version: 1,
            },
        );
        (CallHandle(index), vec![(target, invite)])
    }

    /// An INVITE of the call; `authorization`: (header name, value) after a challenge.
    #[allow(clippy::too_many_arguments)]
    fn invite(
        &self,
        spec: &CallSpec,
        from: &str,
        to: &str,
        call_id: &str,
        cseq: u32,
        branch: &str,
        session: u64,
        authorization: Option<(&str, String)>,
    ) -> Vec<u8> {
        let mut b = MessageBuilder::request("INVITE", &spec.request_uri)
            .header("Via", self.via(branch))
            .header("Max-Forwards", "70")
            .header("From", from)
            .header("To", to)
            .header("Call-ID", call_id)
            .header("CSeq", format!("{cseq} INVITE"))
            .header("Contact", self.contact())
            .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS");
        if let Some((name, value)) = authorization {
            b = b.header(name, value);
        }
        for (name, value) in &spec.extra_headers {
            b = b.header(name, value.clone());
        }
        b.header("Content-Type", "application/sdp")
            .body(sdp(self.config.local, session, 1))
            .to_bytes()
    }

    /// When [`Provider::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fires every timer due at `now`; returns the datagrams to send.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Datagram> {
        let mut out = Vec::new();
        while let Some((index, timer)) = self.timers.pop_due(now) {
            self.fire(now, index, timer, &mut out);
        }
        out
    }

    fn fire(&mut self, now: Instant, index: usize, timer: Timer, out: &mut Vec<Datagram>) {
        let timers = self.config.timers;
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        let target = call.spec.target;
        match timer {
            Timer::InviteRetransmit(cseq)
                if call.state == State::Calling && cseq == call.invite_cseq =>
            {
                call.record.invite_retransmissions += 1;
                out.push((target, call.invite.clone()));
                call.invite_interval = timers.next_interval(call.invite_interval, false);
                let at = now + call.invite_interval;
                self.timers
                    .schedule(at, (index, Timer::InviteRetransmit(cseq)));
            }
            Timer::InviteTimeout(cseq)
                if call.state == State::Calling && cseq == call.invite_cseq =>
            {
                end(call, now, CallOutcome::Timeout);
            }
            Timer::Cancel if !call.final_seen && call.cancel.is_none() => match call.state {
                State::Proceeding => self.send_cancel(now, index, out),
                State::Calling => call.cancel_due = true,
                State::Confirmed | State::Terminated => {}
            },
            Timer::HangUp if call.state == State::Confirmed && call.bye.is_none() => {
                self.send_bye(now, index, out);
            }
            Timer::Retransmit(is_bye) => {
                let pending = if is_bye {
                    &mut call.bye
                } else {
                    &mut call.cancel
                };
                if let Some(p) = pending.as_mut().filter(|p| !p.answered) {
                    out.push((target, p.bytes.clone()));
                    p.interval = timers.next_interval(p.interval, true);
                    let at = now + p.interval;
                    self.timers.schedule(at, (index, Timer::Retransmit(is_bye)));
                }
            }
            Timer::Timeout(is_bye) => {
                // Timer F: the CANCEL or BYE is given up (no more retransmissions).
                let pending = if is_bye {
                    &mut call.bye
                } else {
                    &mut call.cancel
                };
                let unanswered = pending.as_ref().is_some_and(|p| !p.answered);
                if let Some(p) = pending.as_mut() {
                    p.answered = true;
                }
                if call.state != State::Terminated {
                    if is_bye && unanswered {
                        end(call, now, CallOutcome::HungUp { bye_status: None });
                    } else if !is_bye && !call.final_seen {
                        // RFC 3261 §9.1: no final within 64·T1 of the CANCEL, answered
                        // or not: the INVITE transaction is destroyed.
                        end(call, now, CallOutcome::Timeout);
                    }
                }
            }
            Timer::Reinvite if call.state == State::Confirmed && call.bye.is_none() => {
                self.send_reinvite(now, index, out);
            }
            Timer::ReinviteRetransmit(interval) => {
                if let Some((_, p)) = call.reinvite.as_mut().filter(|(_, p)| !p.answered) {
                    out.push((target, p.bytes.clone()));
                    let next = timers.next_interval(interval, false);
                    self.timers
                        .schedule(now + next, (index, Timer::ReinviteRetransmit(next)));
                }
            }
            Timer::ReinviteTimeout => {
                if let Some((_, p)) = call.reinvite.as_mut() {
                    p.answered = true;
                }
            }
            Timer::Keepalive if call.state == State::Confirmed && call.bye.is_none() => {
                self.send_keepalive(now, index, out);
            }
            Timer::KeepaliveRetransmit(interval) => {
                if let Some(p) = call.keepalive.as_mut().filter(|p| !p.answered) {
                    out.push((target, p.bytes.clone()));
                    let next = timers.next_interval(interval, true);
                    self.timers
                        .schedule(now + next, (index, Timer::KeepaliveRetransmit(next)));
                }
            }
            Timer::KeepaliveTimeout => {
                let unanswered = call.keepalive.as_ref().is_some_and(|p| !p.answered);
                call.keepalive = None;
                if unanswered && call.state == State::Confirmed && call.bye.is_none() {
                    self.send_bye(now, index, out);
                }
            }
            _ => {}
        }
    }

    fn send_keepalive(&mut self, now: Instant, index: usize, out: &mut Vec<Datagram>) {
        let branch = self.branch();
        let via = self.via(&branch);
        let t1 = self.config.timers.t1;
        let timeout = self.config.timers.timeout();
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        call.cseq += 1;
        let bytes = call.in_dialog("OPTIONS", via, call.cseq).to_bytes();
        call.keepalive = Some(Pending::new(&bytes, t1));
        out.push((call.spec.target, bytes));
        self.timers
            .schedule(now + t1, (index, Timer::KeepaliveRetransmit(t1)));
        self.timers
            .schedule(now + timeout, (index, Timer::KeepaliveTimeout));
    }

    fn send_reinvite(&mut self, now: Instant, index: usize, out: &mut Vec<Datagram>) {
        let branch = self.branch();
        let via = self.via(&branch);
        let contact = self.contact();
        let local = self.config.local;
        let t1 = self.config.timers.t1;
        let timeout = self.config.timers.timeout();
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        call.cseq += 1;
        call.sdp_version += 1;
        let bytes = call
            .in_dialog("INVITE", via, call.cseq)
            .header("Contact", contact)
            .header("Content-Type", "application/sdp")
            .body(sdp(local, call.session, call.sdp_version))
            .to_bytes();
        call.reinvite = Some((call.cseq, Pending::new(&bytes, t1)));
        call.reinvite_ack = None;
        out.push((call.spec.target, bytes));
        self.timers
            .schedule(now + t1, (index, Timer::ReinviteRetransmit(t1)));
        self.timers
            .schedule(now + timeout, (index, Timer::ReinviteTimeout));
    }

    /// A response to our re-INVITE (CSeq `number`): a final is ACKed — a 2xx in a
    /// transaction of its own, a non-2xx hop-by-hop — and its retransmissions again.
    fn on_reinvite_response(
        &mut self,
        index: usize,
        number: u32,
        resp: &Response,
        out: &mut Vec<Datagram>,
    ) {
        let ack_branch = self.branch();
        let ack_via = self.via(&ack_branch);
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        let Some((_, pending)) = call.reinvite.as_mut().filter(|(n, _)| *n == number) else {
            return;
        };
        if resp.status < 200 {
            return;
        }
        pending.answered = true;
        let target = call.spec.target;
        if let Some(ack) = call.reinvite_ack.clone() {
            out.push((target, ack));
            return;
        }
        let via = if resp.status < 300 {
            ack_via
        } else {
            resp.headers.get("Via").unwrap_or_default().to_owned()
        };
        let ack = call.in_dialog("ACK", via, number).to_bytes();
        call.record.acks_sent += 1;
        call.reinvite_ack = Some(ack.clone());
        out.push((target, ack));
    }

    fn send_cancel(&mut self, now: Instant, index: usize, out: &mut Vec<Datagram>) {
        let via = match self.calls.get(&index) {
            Some(c) => self.via(&c.invite_branch),
            None => return,
        };
        let t1 = self.config.timers.t1;
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        // RFC 3261 §9.1: Request-URI, Call-ID, To, From, Via and CSeq number of the INVITE.
        let bytes = MessageBuilder::request("CANCEL", &call.spec.request_uri)
            .header("Via", via)
            .header("Max-Forwards", "70")
            .header("From", call.from.clone())
            .header("To", call.to.clone())
            .header("Call-ID", call.record.call_id.clone())
            .header("CSeq", format!("{} CANCEL", call.invite_cseq))
            .to_bytes();
        call.record.cancelled_at = Some(now);
        call.cancel = Some(Pending::new(&bytes, t1));
        out.push((call.spec.target, bytes));
        self.arm_non_invite(now, index, false);
    }

    fn send_bye(&mut self, now: Instant, index: usize, out: &mut Vec<Datagram>) {
        let branch = self.branch();
        let via = self.via(&branch);
        let t1 = self.config.timers.t1;
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        call.cseq += 1;
        let bytes = call.in_dialog("BYE", via, call.cseq).to_bytes();
        call.record.bye_sent_at = Some(now);
        call.bye = Some(Pending::new(&bytes, t1));
        out.push((call.spec.target, bytes));
        self.arm_non_invite(now, index, true);
    }

    /// Timer E (first retransmission after T1) and Timer F (64·T1) for call `index`'s
    /// CANCEL (`bye` false) or BYE just sent.
    fn arm_non_invite(&mut self, now: Instant, index: usize, bye: bool) {
        let t1 = self.config.timers.t1;
        let timeout = self.config.timers.timeout();
        self.timers
            .schedule(now + t1, (index, Timer::Retransmit(bye)));
        self.timers
            .schedule(now + timeout, (index, Timer::Timeout(bye)));
    }

    /// Handles one datagram from `from`; returns the datagrams to send now.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Datagram> {
        let mut out = Vec::new();
        match message::parse(bytes) {
            Ok(Message::Response(resp)) => self.on_response(now, &resp, &mut out),
            Ok(Message::Request(req)) => self.on_request(now, from, &req, &mut out),
            Err(_) => {}
        }
        out
    }

    fn on_response(&mut self, now: Instant, resp: &Response, out: &mut Vec<Datagram>) {
        let Some(&index) = resp
            .headers
            .call_id()
            .and_then(|id| self.by_call_id.get(id))
        else {
            return;
        };
        let Some((number, method)) = resp.headers.cseq() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        match method {
            "INVITE" if number == call.invite_cseq => {
                self.on_invite_response(now, index, resp, out)
            }
            "INVITE" if call.reinvite.as_ref().is_some_and(|(n, _)| *n == number) => {
                self.on_reinvite_response(index, number, resp, out)
            }
            "INVITE" if resp.status >= 200 => {
                // A retransmitted challenge of the first INVITE: ACK it again.
                if let Some(ack) = call.challenge_ack.clone() {
                    call.record.acks_sent += 1;
                    out.push((call.spec.target, ack));
                }
            }
            "CANCEL" => {
                if let Some(p) = call.cancel.as_mut().filter(|_| resp.status >= 200) {
                    p.answered = true;
                }
            }
            "OPTIONS" if resp.status >= 200 => {
                let live = call.keepalive.as_ref().is_some_and(|p| !p.answered);
                if let Some(p) = call.keepalive.as_mut() {
                    p.answered = true;
                }
                if live && call.state == State::Confirmed && call.bye.is_none() {
                    if resp.status < 300 {
                        self.timers
                            .schedule(now + KEEPALIVE, (index, Timer::Keepalive));
                    } else {
                        self.send_bye(now, index, out);
                    }
                }
            }
            "BYE" if resp.status >= 200 => {
                if let Some(p) = call.bye.as_mut() {
                    p.answered = true;
                }
                if call.state != State::Terminated {
                    end(
                        call,
                        now,
                        CallOutcome::HungUp {
                            bye_status: Some(resp.status),
                        },
                    );
                }
            }
            _ => {}
        }
    }

    fn on_invite_response(
        &mut self,
        now: Instant,
        index: usize,
        resp: &Response,
        out: &mut Vec<Datagram>,
    ) {
        let ack_branch = self.branch();
        let ack_via = self.via(&ack_branch);
        let hop_via = match self.calls.get(&index) {
            Some(c) => self.via(&c.invite_branch),
            None => return,
        };
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        let status = resp.status;
        let repeated_final = status >= 200 && call.final_seen;
        if !repeated_final {
            call.record.statuses.push(StatusSeen {
                at: now,
                status,
                with_body: !resp.body.is_empty(),
            });
        }
        let target = call.spec.target;
        if status < 200 {
            if call.state == State::Calling {
                call.state = State::Proceeding;
                if call.cancel_due {
                    call.cancel_due = false;
                    self.send_cancel(now, index, out);
                }
            }
            return;
        }
        if repeated_final {
            // A retransmitted final: our ACK was lost (or is in flight); send it again.
            if let Some(ack) = call.ack.clone() {
                call.record.acks_sent += 1;
                out.push((target, ack));
            }
            return;
        }
        call.final_seen = true;
        call.remote_tag = resp.headers.to_tag().map(str::to_owned);
        let to = dialog_to(&call.to, call.remote_tag.as_deref());
        if status < 300 {
            // RFC 3261 §13.2.2.4: the 2xx's ACK is a new transaction to the remote target.
            call.remote_target = resp.headers.get("Contact").map(|c| addr_uri(c).to_owned());
            let uri = call
                .remote_target
                .clone()
                .unwrap_or_else(|| call.spec.request_uri.clone());
            let ack = send_ack(call, &uri, ack_via, to, out);
            call.ack = Some(ack);
            call.record.answered_at = Some(now);
            call.state = State::Confirmed;
            if let Some(after) = call.spec.reinvite_after {
                self.timers.schedule(now + after, (index, Timer::Reinvite));
            }
            self.timers
                .schedule(now + KEEPALIVE, (index, Timer::Keepalive));
            match call.spec.ending {
                // Answered after (or while) we cancelled: the CANCEL/2xx race, end it.
                Ending::CancelAfter(_) => self.send_bye(now, index, out),
                Ending::HangUpAfter(hold) => {
                    self.timers.schedule(now + hold, (index, Timer::HangUp));
                }
                Ending::Wait => {}
            }
        } else {
            // RFC 3261 §17.1.1.3: the non-2xx ACK is hop-by-hop, in the INVITE's transaction.
            let uri = call.spec.request_uri.clone();
            let ack = send_ack(call, &uri, hop_via, to, out);
            call.ack = Some(ack);
            if matches!(status, 401 | 407)
                && call.invite_cseq == 1
                && call.spec.credentials.is_some()
            {
                self.answer_challenge(now, index, resp, out);
                return;
            }
            let outcome = if status == 487 && call.record.cancelled_at.is_some() {
                CallOutcome::Cancelled
            } else {
                CallOutcome::Rejected(status)
            };
            end(call, now, outcome);
        }
    }

    /// Sends the INVITE again with credentials for the challenge in `resp` (RFC 3261
    /// §22.2: same Call-ID and From tag, CSeq + 1, a new branch).
    fn answer_challenge(
        &mut self,
        now: Instant,
        index: usize,
        resp: &Response,
        out: &mut Vec<Datagram>,
    ) {
        let cnonce = self.token();
        let branch = self.branch();
        let Some(call) = self.calls.get(&index) else {
            return;
        };
        let Some(creds) = call.spec.credentials.as_ref() else {
            return;
        };
        let authorization = challenge::authorization(resp, creds, &call.spec.request_uri, &cnonce);
        let invite = self.invite(
            &call.spec,
            &call.from,
            &call.to,
            &call.record.call_id,
            2,
            &branch,
            call.session,
            Some(authorization),
        );
        let t1 = self.config.timers.t1;
        let timeout = self.config.timers.timeout();
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        call.challenge_ack = call.ack.take();
        call.cseq = 2;
        call.invite_cseq = 2;
        call.final_seen = false;
        call.remote_tag = None;
        call.invite_branch = branch;
        call.invite = invite.clone();
        call.invite_interval = t1;
        call.state = State::Calling;
        out.push((call.spec.target, invite));
        self.timers
            .schedule(now + t1, (index, Timer::InviteRetransmit(2)));
        self.timers
            .schedule(now + timeout, (index, Timer::InviteTimeout(2)));
    }

    fn on_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        req: &Request,
        out: &mut Vec<Datagram>,
    ) {
        let index = req
            .headers
            .call_id()
            .and_then(|id| self.by_call_id.get(id))
            .copied();
        let ours = index.and_then(|i| self.calls.get(&i)).is_some_and(|c| {
            c.record.answered_at.is_some()
                && req
                    .headers
                    .to_tag()
                    .is_some_and(|t| c.from.ends_with(&format!(";tag={t}")))
        });
        let (Some(index), true) = (index, ours) else {
            if req.method != "ACK" {
                let resp = message::response_to(req, 481, reason(481), None).to_bytes();
                out.push((from, resp));
            }
            return;
        };
        let contact = self.contact();
        let local = self.config.local;
        let Some(call) = self.calls.get_mut(&index) else {
            return;
        };
        if req.method == "ACK" {
            return;
        }
        let branch = top_branch(&req.headers);
        if let Some(previous) = call.answered.get(&branch) {
            out.push((from, previous.clone()));
            return;
        }
        call.record
            .requests_received
            .push((now, req.method.clone()));
        let resp = match req.method.as_str() {
            "BYE" => {
                if call.state == State::Confirmed {
                    end(call, now, CallOutcome::RemoteHangUp);
                }
                message::response_to(req, 200, reason(200), None).to_bytes()
            }
            "INVITE" => {
                call.sdp_version += 1;
                message::response_to(req, 200, reason(200), None)
                    .header("Contact", contact)
                    .header("Content-Type", "application/sdp")
                    .body(sdp(local, call.session, call.sdp_version))
                    .to_bytes()
            }
            "OPTIONS" | "INFO" | "UPDATE" | "NOTIFY" => {
                message::response_to(req, 200, reason(200), None).to_bytes()
            }
            // A transfer asked by the far side: accepted (the NOTIFYs are not modelled).
            "REFER" => message::response_to(req, 202, reason(202), None).to_bytes(),
            _ => message::response_to(req, 501, reason(501), None).to_bytes(),
        };
        call.answered.insert(branch, resp.clone());
        out.push((from, resp));
    }
}

impl Call {
    /// A request inside the call's dialog with CSeq `cseq`: to the remote target (the
    /// Request-URI before an answer named one), our From, the To with the remote tag.
    fn in_dialog(&self, method: &str, via: String, cseq: u32) -> MessageBuilder {
        let uri = self
            .remote_target
            .clone()
            .unwrap_or_else(|| self.spec.request_uri.clone());
        MessageBuilder::request(method, &uri)
            .header("Via", via)
            .header("Max-Forwards", "70")
            .header("From", self.from.clone())
            .header("To", dialog_to(&self.to, self.remote_tag.as_deref()))
            .header("Call-ID", self.record.call_id.clone())
            .header("CSeq", format!("{cseq} {method}"))
    }
}

/// The To of an in-dialog request: the INVITE's To plus the remote tag.
/// Sends the ACK of `call`'s INVITE to `uri` with `via` and To `to` (the 2xx's ACK and
/// the non-2xx's differ only there), counted; returns it for retransmitted finals.
fn send_ack(
    call: &mut Call,
    uri: &str,
    via: String,
    to: String,
    out: &mut Vec<Datagram>,
) -> Vec<u8> {
    let ack = MessageBuilder::request("ACK", uri)
        .header("Via", via)
        .header("Max-Forwards", "70")
        .header("From", call.from.clone())
        .header("To", to)
        .header("Call-ID", call.record.call_id.clone())
        .header("CSeq", format!("{} ACK", call.invite_cseq))
        .to_bytes();
    call.record.acks_sent += 1;
    out.push((call.spec.target, ack.clone()));
    ack
}

fn dialog_to(to: &str, remote_tag: Option<&str>) -> String {
    match remote_tag {
        Some(tag) => format!("{to};tag={tag}"),
        None => to.to_owned(),
    }
}

fn end(call: &mut Call, now: Instant, outcome: CallOutcome) {
    call.state = State::Terminated;
    call.record.ended_at = Some(now);
    call.record.outcome = Some(outcome);
}

#[cfg(test)]
mod tests;

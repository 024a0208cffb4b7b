//! A LiveKit-like UAS (the far side of trunkline's outbound leg, RFC 3261 §13.3 and
//! §17.2.1): `100 Trying` at once, `180 Ringing` and then `200 OK` with an SDP answer
//! after configured delays — or a configured final error such as `486`, or no answer at
//! all. Optionally it challenges each new INVITE with `407 Proxy-Authenticate`, realm
//! `LiveKit` and no `qop`, as LiveKit's inbound trunks do, and checks the digest against
//! a configured username and password (with the model crate's own digest code).
//!
//! Its 2xx is retransmitted until the ACK (T1 doubling to T2; no ACK within 64·T1 →
//! BYE), a non-2xx final likewise until its ACK (Timer G; given up at Timer H). It
//! answers CANCEL (`200`, then `487` to the INVITE), BYE (`200`), re-INVITE (`200` with
//! SDP), REFER (`202`), OPTIONS (`200`), and can hang up itself after a hold time or
//! ask for a transfer (REFER) after the ACK. A call still ringing after
//! [`RING_LIMIT`] (its CANCEL lost, say) gets `480`, as LiveKit's own ringing timeout
//! does.
//! Each initial INVITE it got is recorded — Request-URI, Call-ID, every header (the
//! `X-Trunkline-*` ones of CONTRACT.md §6 among them) — in an [`InviteSeen`].
//!
//! Sans-IO like the registrar model; responses go back to the address the request came
//! from, its own requests (BYE) to the address the INVITE came from.

use crate::registrar::Datagram;
use crate::sip::{addr_uri, reason, sdp, top_branch, Credentials, TimerTable, TimerValues};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sip_core::message::{self, Message, MessageBuilder, Request, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod challenge;
mod record;

/// A call that is up is probed with an in-dialog OPTIONS this often; an answer other
/// than 2xx (481: trunkline forgot the dialog) or none at all ends it with BYE, as
/// LiveKit ends a call whose media stopped.
pub const KEEPALIVE: Duration = Duration::from_secs(60);

/// An INVITE without a final response this long after it came gets `480`.
pub const RING_LIMIT: Duration = Duration::from_secs(180);
pub use challenge::REALM;
use challenge::{Challenges, Verdict};
pub use record::{InviteSeen, LiveKitStats};

/// What the UAS does with a call it accepted (after any challenge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Answer {
    /// `200 OK` with SDP after `answer_after`.
    Accept,
    /// This final status (`486`, `603`, `480` …) after `answer_after`.
    Reject(u16),
    /// No final response ever (the caller's ringing timeout must end it).
    Never,
}

/// The UAS's fixed personality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKitConfig {
    /// Its own address, for Contact and SDP.
    pub local: SocketAddr,
    /// `180 Ringing` this long after the INVITE; `None`: no 180.
    pub ring_after: Option<Duration>,
    /// The final response this long after the INVITE.
    pub answer_after: Duration,
    /// Which final response.
    pub answer: Answer,
    /// Challenge new INVITEs with `407` and check the digest against these.
    pub auth: Option<Credentials>,
    /// BYE this long after the ACK of its 2xx; `None`: the caller hangs up.
    pub hang_up_after: Option<Duration>,
    /// REFER (a transfer to another number) this long after the ACK of its 2xx.
    pub refer_after: Option<Duration>,
    /// T1 and T2.
    pub timers: TimerValues,
}

impl LiveKitConfig {
    /// Answers after 180 at 100 ms and 200 at 300 ms, no challenge, never hangs up.
    pub fn answering(local: SocketAddr) -> Self {
        Self {
            local,
            ring_after: Some(Duration::from_millis(100)),
            answer_after: Duration::from_millis(300),
            answer: Answer::Accept,
            auth: None,
            hang_up_after: None,
            refer_after: None,
            timers: TimerValues::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No final response yet.
    Proceeding,
    /// A non-2xx final sent, waiting for its ACK.
    Completed,
    /// A 2xx sent, waiting for its ACK.
    Accepted,
    /// ACKed: the call is up.
    Confirmed,
    /// Over.
    Ended,
}

#[derive(Debug, Clone)]
struct Session {
    invite: Request,
    invite_branch: String,
    source: SocketAddr,
    local_tag: String,
    state: State,
    /// The last response to the INVITE, sent again for a retransmission of it.
    last: Vec<u8>,
    interval: Duration,
    record: usize,
    local_cseq: u32,
    /// Our own requests in flight (BYE, REFER, keep-alive), until answered or given up.
    pending: BTreeMap<Own, Vec<u8>>,
    sdp_version: u32,
    /// Answers to in-dialog requests, by branch, for their retransmissions.
    answered: BTreeMap<String, Vec<u8>>,
}

/// The requests the UAS sends itself inside a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Own {
    Bye,
    Refer,
    /// The keep-alive OPTIONS.
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Ring,
    Final,
    /// Timer G (or the 2xx's own doubling).
    Retransmit,
    /// 64·T1 without an ACK.
    GiveUp,
    HangUp,
    /// Timer E of one of our requests, with the interval just waited.
    Resend(Own, Duration),
    /// Timer F of one of our requests.
    Abandon(Own),
    /// An ended session has absorbed its stragglers: forget it (bounded memory).
    Forget,
    /// No final response by [`RING_LIMIT`]: `480`.
    RingLimit,
    /// Send the configured REFER.
    Refer,
    /// Probe the dialog with OPTIONS.
    Keepalive,
}

/// The LiveKit-like UAS model. See the module docs.
#[derive(Debug, Clone)]
pub struct LiveKit {
    config: LiveKitConfig,
    sessions: BTreeMap<String, Session>,
    invites: Vec<InviteSeen>,
    /// How many records [`LiveKit::take_invites`] handed out.
    invites_taken: usize,
    /// Nonces issued and challenges answered.
    challenges: Challenges,
    timers: TimerTable<(String, Timer)>,
    rng: ChaCha8Rng,
    stats: LiveKitStats,
}

impl LiveKit {
    /// A UAS with `config`; `seed` feeds its tags, nonces and branches.
    pub fn new(config: LiveKitConfig, seed: u64) -> Self {
        Self {
            config,
            sessions: BTreeMap::new(),
            invites: Vec::new(),
            invites_taken: 0,
            challenges: Challenges::default(),
            timers: TimerTable::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            stats: LiveKitStats::default(),
        }
    }

    /// Every initial INVITE received, in order.
    pub fn invites(&self) -> &[InviteSeen] {
        &self.invites
    }

    /// Removes and returns the INVITEs recorded so far (a long run keeps memory bounded;
    /// sessions themselves are forgotten 64·T1 after they end).
    pub fn take_invites(&mut self) -> Vec<InviteSeen> {
        // Sessions name their record by an absolute number; this offset keeps it valid
        // (a record taken before its final is simply not updated).
        self.invites_taken += self.invites.len();
        std::mem::take(&mut self.invites)
    }

    /// Counters.
    pub fn stats(&self) -> &LiveKitStats {
        &self.stats
    }

    /// Calls neither ended nor rejected.
    pub fn active_calls(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| {
                matches!(
                    s.state,
                    State::Proceeding | State::Accepted | State::Confirmed
                )
            })
            .count()
    }

    /// When [`LiveKit::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn token(&mut self) -> String {
        format!("{:012x}", self.rng.next_u64() >> 16)
    }

    /// Fires every timer due at `now`; returns the datagrams to send.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Datagram> {
        let mut out = Vec::new();
        while let Some((call_id, timer)) = self.timers.pop_due(now) {
            self.fire(now, &call_id, timer, &mut out);
        }
        out
    }

    fn fire(&mut self, now: Instant, call_id: &str, timer: Timer, out: &mut Vec<Datagram>) {
        let timers = self.config.timers;
        let contact = self.contact();
        let local = self.config.local;
        let answer = self.config.answer;
        let Some(s) = self.sessions.get_mut(call_id) else {
            return;
        };
        let key = call_id.to_owned();
        match timer {
            Timer::Ring if s.state == State::Proceeding => {
                let resp = message::response_to(&s.invite, 180, reason(180), Some(&s.local_tag))
                    .header("Contact", contact)
                    .to_bytes();
                s.last = resp.clone();
                out.push((s.source, resp));
            }
            Timer::Refer if s.state == State::Confirmed => {
                let refer_to = ("Refer-To", "<sip:+15557777@transfer.invalid>".to_owned());
                self.stats.refers_sent += 1;
                self.send_own(now, &key, Own::Refer, &[refer_to], out);
            }
            Timer::Keepalive if s.state == State::Confirmed => {
                self.send_own(now, &key, Own::Probe, &[], out);
            }
            Timer::Resend(which, interval) => {
                if let Some(bytes) = s.pending.get(&which).cloned() {
                    out.push((s.source, bytes));
                    let next = timers.next_interval(interval, true);
                    self.timers
                        .schedule(now + next, (key, Timer::Resend(which, next)));
                }
            }
            Timer::Abandon(which) => {
                let unanswered = s.pending.remove(&which).is_some();
                // No answer to the keep-alive: the caller is gone.
                if which == Own::Probe && unanswered && s.state == State::Confirmed {
                    self.send_bye(now, &key, out);
                }
            }
            Timer::Final | Timer::RingLimit if s.state == State::Proceeding => {
                // Still ringing at the limit: refused like a busy destination would be.
                let answer = if timer == Timer::RingLimit {
                    Answer::Reject(480)
                } else {
                    answer
                };
                let resp = match answer {
                    Answer::Accept => {
                        s.state = State::Accepted;
                        s.sdp_version += 1;
                        message::response_to(&s.invite, 200, reason(200), Some(&s.local_tag))
                            .header("Contact", contact)
                            .header("Content-Type", "application/sdp")
                            .body(sdp(local, 2, s.sdp_version))
                            .to_bytes()
                    }
                    Answer::Reject(status) => {
                        s.state = State::Completed;
                        message::response_to(&s.invite, status, reason(status), Some(&s.local_tag))
                            .to_bytes()
                    }
                    Answer::Never => return,
                };
                let status = if let Answer::Reject(status) = answer {
                    status
                } else {
                    200
                };
                if let Some(r) = record_mut(&mut self.invites, self.invites_taken, s.record) {
                    r.answered = Some(status);
                }
                s.last = resp.clone();
                s.interval = timers.t1;
                out.push((s.source, resp));
                self.timers
                    .schedule(now + timers.t1, (key.clone(), Timer::Retransmit));
                self.timers
                    .schedule(now + timers.timeout(), (key, Timer::GiveUp));
            }
            Timer::Retransmit if matches!(s.state, State::Accepted | State::Completed) => {
                self.stats.final_retransmissions += 1;
                out.push((s.source, s.last.clone()));
                s.interval = timers.next_interval(s.interval, true);
                self.timers
                    .schedule(now + s.interval, (key, Timer::Retransmit));
            }
            Timer::GiveUp if s.state == State::Accepted => {
                // No ACK for our 2xx: the dialog is up for us, so end it (RFC 3261 §13.3.1.4).
                self.stats.ack_timeouts += 1;
                self.send_bye(now, &key, out);
            }
            Timer::GiveUp if s.state == State::Completed => {
                s.state = State::Ended;
                self.timers
                    .schedule(now + timers.timeout(), (key, Timer::Forget));
            }
            Timer::HangUp if s.state == State::Confirmed => self.send_bye(now, &key, out),
            Timer::Forget if s.state == State::Ended => {
                self.sessions.remove(&key);
            }
            _ => {}
        }
    }

    fn contact(&self) -> String {
        format!("<sip:livekit@{}>", self.config.local)
    }

    /// Our side of the dialog of session `s`: (From with our tag, To, remote target).
    fn dialog_ends(s: &Session) -> (String, String, String) {
        let h = &s.invite.headers;
        // Our side of the dialog: From is our To (with our tag), To is their From.
        let from = format!("{};tag={}", h.get("To").unwrap_or_default(), s.local_tag);
        let to = h.get("From").unwrap_or_default().to_owned();
        let target = h
            .get("Contact")
            .map(|c| addr_uri(c).to_owned())
            .unwrap_or_else(|| addr_uri(&to).to_owned());
        (from, to, target)
    }

    /// Sends our own request `which` in session `call_id`'s dialog (with `extra`
    /// headers), retransmitted per Timer E until answered or Timer F.
    fn send_own(
        &mut self,
        now: Instant,
        call_id: &str,
        which: Own,
        extra: &[(&str, String)],
        out: &mut Vec<Datagram>,
    ) {
        let branch = format!("z9hG4bK-lk-{}", self.token());
        let via = format!("SIP/2.0/UDP {};branch={branch};rport", self.config.local);
        let contact = self.contact();
        let t1 = self.config.timers.t1;
        let timeout = self.config.timers.timeout();
        let Some(s) = self.sessions.get_mut(call_id) else {
            return;
        };
        let method = match which {
            Own::Bye => "BYE",
            Own::Refer => "REFER",
            Own::Probe => "OPTIONS",
        };
        let (from, to, target) = Self::dialog_ends(s);
        s.local_cseq += 1;
        let mut b = MessageBuilder::request(method, &target)
            .header("Via", via)
            .header("Max-Forwards", "70")
            .header("From", from)
            .header("To", to)
            .header("Call-ID", call_id.to_owned())
            .header("CSeq", format!("{} {method}", s.local_cseq))
            .header("Contact", contact);
        for (name, value) in extra {
            b = b.header(name, value.clone());
        }
        let bytes = b.to_bytes();
        s.pending.insert(which, bytes.clone());
        out.push((s.source, bytes));
        let key = call_id.to_owned();
        self.timers
            .schedule(now + t1, (key.clone(), Timer::Resend(which, t1)));
        self.timers
            .schedule(now + timeout, (key, Timer::Abandon(which)));
    }

    /// Ends session `call_id` with our BYE.
    fn send_bye(&mut self, now: Instant, call_id: &str, out: &mut Vec<Datagram>) {
        let Some(s) = self.sessions.get_mut(call_id) else {
            return;
        };
        s.state = State::Ended;
        self.stats.byes_sent += 1;
        self.send_own(now, call_id, Own::Bye, &[], out);
        let forget = now + self.config.timers.timeout();
        self.timers
            .schedule(forget, (call_id.to_owned(), Timer::Forget));
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
            Ok(Message::Request(req)) => self.on_request(now, from, req, &mut out),
            Ok(Message::Response(resp)) => self.on_response(now, &resp, &mut out),
            Err(_) => {}
        }
        out
    }

    fn on_response(&mut self, now: Instant, resp: &Response, out: &mut Vec<Datagram>) {
        let method = resp.headers.cseq().map(|(_, m)| m).unwrap_or_default();
        let Some(s) = resp
            .headers
            .call_id()
            .and_then(|id| self.sessions.get_mut(id))
            .filter(|_| resp.status >= 200)
        else {
            return;
        };
        match method {
            "BYE" => {
                s.pending.remove(&Own::Bye);
            }
            "REFER" => {
                s.pending.remove(&Own::Refer);
                self.stats.refer_answers.push(resp.status);
            }
            "OPTIONS" if s.pending.remove(&Own::Probe).is_some() => {
                let key = resp.headers.call_id().unwrap_or_default().to_owned();
                if s.state == State::Confirmed {
                    if resp.status < 300 {
                        self.timers
                            .schedule(now + KEEPALIVE, (key, Timer::Keepalive));
                    } else {
                        self.send_bye(now, &key, out);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        req: Request,
        out: &mut Vec<Datagram>,
    ) {
        let call_id = req.headers.call_id().unwrap_or_default().to_owned();
        let in_dialog = req.headers.to_tag().is_some_and(|tag| {
            self.sessions
                .get(&call_id)
                .is_some_and(|s| s.local_tag == tag)
        });
        match req.method.as_str() {
            "INVITE" if !in_dialog && req.headers.to_tag().is_none() => {
                self.on_invite(now, from, req, out)
            }
            "ACK" => self.on_ack(now, &call_id, &req),
            "CANCEL" => self.on_cancel(now, &call_id, from, &req, out),
            _ if in_dialog => self.in_dialog(now, &call_id, from, &req, out),
            "OPTIONS" => {
                let resp = message::response_to(&req, 200, reason(200), None)
                    .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER")
                    .to_bytes();
                out.push((from, resp));
            }
            _ => {
                self.stats.unknown += 1;
                out.push((
                    from,
                    message::response_to(&req, 481, reason(481), None).to_bytes(),
                ));
            }
        }
    }

    fn on_invite(&mut self, now: Instant, from: SocketAddr, req: Request, out: &mut Vec<Datagram>) {
        let branch = top_branch(&req.headers);
        let call_id = req.headers.call_id().unwrap_or_default().to_owned();
        if let Some(challenge) = self.challenges.answer_for(&branch) {
            self.stats.invite_retransmissions += 1;
            out.push((from, challenge.clone()));
            return;
        }
        if let Some(s) = self.sessions.get(&call_id) {
            // A retransmission (or a second INVITE of a call we already took): the
            // transaction's last response, as RFC 3261 §17.2.1 has it.
            if s.invite_branch == branch {
                self.stats.invite_retransmissions += 1;
                out.push((from, s.last.clone()));
            }
            return;
        }
        let record = self.invites_taken + self.invites.len();
        self.invites.push(InviteSeen {
            at: now,
            source: from,
            request_uri: req.uri.clone(),
            call_id: call_id.clone(),
            cseq: req.headers.cseq().map(|(n, _)| n).unwrap_or(0),
            headers: req
                .headers
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            body: req.body.clone(),
            answered: None,
        });
        if let Some(creds) = self.config.auth.clone() {
            let tag = self.token();
            match self.challenges.check(&req, &creds) {
                Verdict::Good => {}
                Verdict::Missing => {
                    let nonce = self.challenges.new_nonce(self.rng.next_u64());
                    let resp = message::response_to(&req, 407, reason(407), Some(&tag))
                        .header(
                            "Proxy-Authenticate",
                            format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5"),
                        )
                        .to_bytes();
                    self.stats.challenges += 1;
                    self.finish_unsessioned(record, 407, branch, from, resp, out);
                    return;
                }
                Verdict::Bad => {
                    self.stats.bad_digest += 1;
                    let resp = message::response_to(&req, 403, reason(403), Some(&tag)).to_bytes();
                    self.finish_unsessioned(record, 403, branch, from, resp, out);
                    return;
                }
            }
        }
        let trying = message::response_to(&req, 100, reason(100), None).to_bytes();
        out.push((from, trying.clone()));
        if let Some(ring) = self.config.ring_after {
            self.timers
                .schedule(now + ring, (call_id.clone(), Timer::Ring));
        }
        self.timers.schedule(
            now + self.config.answer_after,
            (call_id.clone(), Timer::Final),
        );
        // Only a call that would otherwise ring on needs the limit.
        if self.config.answer == Answer::Never || self.config.answer_after >= RING_LIMIT {
            self.timers
                .schedule(now + RING_LIMIT, (call_id.clone(), Timer::RingLimit));
        }
        let local_tag = self.token();
        self.sessions.insert(
            call_id,
            Session {
                invite: req,
                invite_branch: branch,
                source: from,
                local_tag,
                state: State::Proceeding,
                last: trying,
                interval: self.config.timers.t1,
                record,
                local_cseq: 0,
                pending: BTreeMap::new(),
                sdp_version: 1,
                answered: BTreeMap::new(),
            },
        );
    }

    /// A challenge or a refusal: answered once, remembered by branch for retransmissions
    /// (its ACK is absorbed); no session is made.
    fn finish_unsessioned(
        &mut self,
        record: usize,
        status: u16,
        branch: String,
        from: SocketAddr,
        resp: Vec<u8>,
        out: &mut Vec<Datagram>,
    ) {
        if let Some(r) = record_mut(&mut self.invites, self.invites_taken, record) {
            r.answered = Some(status);
        }
        self.challenges.remember(branch, resp.clone());
        out.push((from, resp));
    }

    fn on_ack(&mut self, now: Instant, call_id: &str, req: &Request) {
        let number = |r: &Request| r.headers.cseq().map(|(n, _)| n);
        let Some(s) = self
            .sessions
            .get_mut(call_id)
            .filter(|s| number(&s.invite) == number(req))
        else {
            // The ACK of a challenge or refusal (an earlier CSeq): absorbed.
            return;
        };
        let key = call_id.to_owned();
        match s.state {
            State::Accepted => {
                s.state = State::Confirmed;
                self.stats.acks += 1;
                if let Some(after) = self.config.hang_up_after {
                    self.timers
                        .schedule(now + after, (key.clone(), Timer::HangUp));
                }
                if let Some(after) = self.config.refer_after {
                    self.timers
                        .schedule(now + after, (key.clone(), Timer::Refer));
                }
                self.timers
                    .schedule(now + KEEPALIVE, (key, Timer::Keepalive));
            }
            State::Completed => {
                // Timer I is zero on UDP for our purpose: keep it only to absorb stragglers.
                s.state = State::Ended;
                let forget = now + self.config.timers.timeout();
                self.timers.schedule(forget, (key, Timer::Forget));
            }
            _ => {}
        }
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        call_id: &str,
        from: SocketAddr,
        req: &Request,
        out: &mut Vec<Datagram>,
    ) {
        let branch = top_branch(&req.headers);
        let Some(s) = self
            .sessions
            .get_mut(call_id)
            .filter(|s| s.invite_branch == branch)
        else {
            self.stats.unknown += 1;
            out.push((
                from,
                message::response_to(req, 481, reason(481), None).to_bytes(),
            ));
            return;
        };
        out.push((
            from,
            message::response_to(req, 200, reason(200), Some(&s.local_tag)).to_bytes(),
        ));
        if s.state != State::Proceeding {
            return; // already answered: the CANCEL has no effect (RFC 3261 §9.2)
        }
        self.stats.cancelled += 1;
        let resp = message::response_to(&s.invite, 487, reason(487), Some(&s.local_tag)).to_bytes();
        s.state = State::Completed;
        s.last = resp.clone();
        s.interval = self.config.timers.t1;
        if let Some(r) = record_mut(&mut self.invites, self.invites_taken, s.record) {
            r.answered = Some(487);
        }
        out.push((s.source, resp));
        let t1 = self.config.timers.t1;
        let timeout = self.config.timers.timeout();
        let key = call_id.to_owned();
        self.timers
            .schedule(now + t1, (key.clone(), Timer::Retransmit));
        self.timers.schedule(now + timeout, (key, Timer::GiveUp));
    }

    fn in_dialog(
        &mut self,
        now: Instant,
        call_id: &str,
        from: SocketAddr,
        req: &Request,
        out: &mut Vec<Datagram>,
    ) {
        let contact = self.contact();
        let local = self.config.local;
        let Some(s) = self.sessions.get_mut(call_id) else {
            return;
        };
        let branch = top_branch(&req.headers);
        if let Some(previous) = s.answered.get(&branch) {
            out.push((from, previous.clone()));
            return;
        }
        let resp = match req.method.as_str() {
            "BYE" => {
                self.stats.byes_received += 1;
                if s.state != State::Ended {
                    s.state = State::Ended;
                    let forget = now + self.config.timers.timeout();
                    self.timers
                        .schedule(forget, (call_id.to_owned(), Timer::Forget));
                }
                message::response_to(req, 200, reason(200), None).to_bytes()
            }
            "INVITE" => {
                self.stats.reinvites += 1;
                s.sdp_version += 1;
                message::response_to(req, 200, reason(200), None)
                    .header("Contact", contact)
                    .header("Content-Type", "application/sdp")
                    .body(sdp(local, 2, s.sdp_version))
                    .to_bytes()
            }
            "REFER" => {
                self.stats.refers += 1;
                message::response_to(req, 202, reason(202), None).to_bytes()
            }
            "OPTIONS" | "INFO" | "UPDATE" | "NOTIFY" => {
                message::response_to(req, 200, reason(200), None).to_bytes()
            }
            _ => message::response_to(req, 501, reason(501), None).to_bytes(),
        };
        s.answered.insert(branch, resp.clone());
        out.push((from, resp));
    }
}

/// The record numbered `record` (absolute), if it was not taken yet.
fn record_mut(invites: &mut [InviteSeen], taken: usize, record: usize) -> Option<&mut InviteSeen> {
    invites.get_mut(record.checked_sub(taken)?)
}

#[cfg(test)]
mod tests;

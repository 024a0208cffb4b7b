//! One registration per provider (RFC 3261 §10): register, answer the challenge, refresh
//! before the granted expiry, back off on failure, un-register.
//!
//! The machine decides; the [`Ctx`] carries its decisions out (sends through the pacer and
//! the transaction layer, timers, status reports). Failure policy, because none of the
//! anchors gets it right (Asterisk stops after 10 tries, Kamailio's uac disables a record
//! after one failure, jambonz waits a flat 5 minutes): every outcome is classified, every
//! class is retried with exponential backoff and jitter, a temporary failure is never given
//! up for good, and the error text names the class and the cause.

mod cleanup;
mod targets;

use crate::auth::{self, Challenge, DigestInput};
use crate::ctx::Ctx;
use crate::io::{
    BindingIdentity, Event, FailureNotice, LeftBehind, Output, RegisterOutcome, RegisterStatus,
    RegistrationView, StatusReport,
};
use crate::message::{MessageBuilder, Response};
use crate::provider::Provider;
use crate::secret::Secret;
use crate::time::{RetryCounts, TimerKey};
use crate::transaction::{Owner, TxnEvent};
use crate::transport::{Link, Transport};
use crate::wallclock::WallClock;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// The longest a UDP transaction can take (64·T1): a refresh must start at least this long
/// before the binding lapses.
const TRANSACTION_SPAN: Duration = Duration::from_secs(32);
/// Challenges answered within one attempt before we call it a rejection (a first answer,
/// one more for a fresh nonce without `stale`, and stale rounds).
const MAX_CHALLENGE_ROUNDS: u8 = 4;
/// An unchanged error is announced again (with its count) at most this often: a
/// registration retried every 5 minutes for a day is one warning an hour, not 288.
pub const FAILURE_REPEAT_EVERY: Duration = Duration::from_secs(3600);
/// Re-registers an operator asks for are at least this far apart per registration:
/// 200 requests in 2 s cost 3 REGISTER attempts, not 200.
pub const REREGISTER_SPACING: Duration = Duration::from_secs(1);

/// How a failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Network or server trouble: retried with the normal backoff.
    Temporary,
    /// The provider refused the credentials or the account: someone must act, so retried
    /// slowly (a fix at the provider then heals without a restart).
    Rejected,
}

/// What the machine is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the registrar's address.
    Resolving,
    /// Waiting for the pacer to release a REGISTER.
    Queued,
    /// A REGISTER transaction is in flight.
    InFlight(u64),
    /// Waiting for the registration timer (refresh or retry).
    Waiting,
    /// Nothing more will be sent (un-registered, or given up at shutdown).
    Stopped,
}

/// What the registration is working towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Keep a binding.
    Registered,
    /// Remove the binding; `report` says whether the outcome is reported to the backend
    /// (shutdown: yes; a provider that was removed from the backend: no).
    Unregistered { report: bool },
}

/// Credentials of the provider entry that replaced a registration's, kept for the old
/// binding's un-REGISTER: a rotation usually changes the password at the provider
/// first, so the old one may already be refused.
#[derive(Debug, Clone)]
struct Credentials {
    auth_username: String,
    password: Secret,
}

/// A run of failed attempts with the same error: counted, and announced when it starts
/// and then at most every [`FAILURE_REPEAT_EVERY`].
#[derive(Debug, Clone)]
struct FailureRun {
    since: Instant,
    attempts: u32,
    announced_at: Instant,
}

/// What varies between the REGISTERs of one binding (see [`Registration::compose`]).
struct Parts<'a> {
    /// Our `host:port` in Via and Contact.
    local: &'a str,
    branch: &'a str,
    expires: u32,
    /// `host:port` of an older Contact of ours to remove in the same request.
    stale: Option<&'a str>,
    /// The challenge to answer, if any.
    auth: Option<&'a mut AuthCache>,
}

#[derive(Debug, Clone)]
struct AuthCache {
    challenge: Challenge,
    /// Answered a 407 (Proxy-Authorization) rather than a 401.
    proxy: bool,
    nc: u32,
}

/// One provider's registration.
///
/// 100,000 of these live at once, each in its own allocation, so the fields are kept
/// compact (issue 8 "Memory"; `tests::registration_stays_compact` pins the size): strings
/// that never change are boxed, times are `Instant`s (formatted when shown), and what can
/// be derived from the config or from another field is not stored.
#[derive(Debug)]
pub struct Registration {
    pub slot: u32,
    pub provider: Provider,
    pub status: RegisterStatus,
    pub phase: Phase,
    pub goal: Goal,
    /// Call-ID, From tag and the `;line=` token of our Contact (to match inbound
    /// requests and our own binding in the registrar's 200 OK).
    ids: BindingIds,
    cseq: u32,
    /// CSeq values below this are reserved in persisted state (see [`CSEQ_BLOCK`]).
    cseq_reserved: u32,
    /// The registrar's (or outbound proxy's) address in use: one of its RFC 3263
    /// targets, kept while it answers (see [`targets`]).
    target_ip: Option<IpAddr>,
    /// Its port (an IP and a port beside it: 20 bytes, an `Option<SocketAddr>` 32).
    target_port: u16,
    /// Our address in Contact and Via, unless `SIP_PUBLIC_ADDRESS` is set.
    address: OurAddress,
    requested_expires: u32,
    /// `Expires` of the request in flight (0: an un-REGISTER).
    sent_expires: u32,
    auth: Option<AuthCache>,
    /// A hash of the nonce our last request answered, if it carried credentials: only
    /// compared with the next challenge's nonce, so the nonce itself (often 40+ bytes) is
    /// not kept a second time beside the cached challenge.
    answered_nonce: Option<NonZeroU64>,
    challenge_rounds: u8,
    /// When the binding the registrar granted lapses.
    pub bound_until: Option<Instant>,
    /// When the last registration succeeded; shown as RFC 3339 wall time by
    /// [`Registration::last_register_at`] (an `Instant` is 16 bytes, the text 56).
    registered_at: Option<Instant>,
    /// When the registration timer fires next.
    pub next_at: Option<Instant>,
    /// Failures of the current runs, backed off with the config's delays.
    retries: RetryCounts,
    /// A re-register was asked while an attempt was running: one more attempt when it
    /// ends. At most one attempt runs and one waits, however often it is asked.
    rerun: bool,
    /// When the last attempt was released to the wire (spacing of re-registers).
    attempt_started: Option<Instant>,
    /// The error, failure run and successor credentials, when there are any.
    rare: Option<Box<Rare>>,
}

/// What a registration holds only while it has an error, is failing, or un-registers a
/// replaced provider: one box, absent in the steady state (40 bytes less inline).
#[derive(Debug, Default)]
struct Rare {
    /// The status's error text.
    error: Option<String>,
    /// The current run of failures, if the registration is failing.
    failures: Option<FailureRun>,
    /// See [`Credentials`]; set only while un-registering a replaced provider.
    successor: Option<Credentials>,
    /// `host:port` of a binding we made before a NAT's public address was learnt, to
    /// remove with the next REGISTER (see [`Registration::learn_address`]).
    stale_contact: Option<Box<str>>,
    /// Targets moved to after failures in the current round (see [`targets`]).
    failovers: u8,
    /// A failover waiting for DNS answers (see [`targets`]).
    failing_over: Option<Box<targets::FailingOver>>,
    /// Targets left that may still hold our binding, until they answer an
    /// un-REGISTER or the binding lapses there (see [`cleanup`]).
    cleanups: Vec<cleanup::Cleanup>,
    /// The run of failures the last success ended, when that success was on a
    /// connection: it is only over once the binding outlives 64·T1, so a connection
    /// lost before that continues it (see [`Registration::on_flow_lost`]).
    unconfirmed: Option<RetryCounts>,
}

/// Our address as the registrar should reach us, in Contact and Via (unless
/// `SIP_PUBLIC_ADDRESS` is set, which always wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OurAddress {
    /// Not resolved yet.
    Unknown,
    /// Our source IP towards the registrar (with the configured port).
    Local(IpAddr),
    /// What the registrar saw our requests come from, when it differs: a NAT's public
    /// address and port (see [`Registration::learn_address`]).
    Learned(IpAddr, u16),
}

/// The binding's Call-ID, From tag and Contact token in one allocation (they never
/// change): 24 bytes inline instead of 48.
#[derive(Debug)]
struct BindingIds {
    text: Box<str>,
    call_id_end: u32,
    tag_end: u32,
}

impl BindingIds {
    fn new(call_id: &str, from_tag: &str, line: &str) -> Self {
        let end = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            text: [call_id, from_tag, line].concat().into(),
            call_id_end: end(call_id.len()),
            tag_end: end(call_id.len() + from_tag.len()),
        }
    }

    fn call_id(&self) -> &str {
        self.text.get(..self.call_id_end as usize).unwrap_or("")
    }

    fn tag(&self) -> &str {
        let range = self.call_id_end as usize..self.tag_end as usize;
        self.text.get(range).unwrap_or("")
    }

    fn line(&self) -> &str {
        self.text.get(self.tag_end as usize..).unwrap_or("")
    }
}

/// CSeq values are reserved in blocks, so persisting the identity costs one write per
/// this many requests, and a restart never reuses a CSeq.
pub const CSEQ_BLOCK: u32 = 100;

/// FNV-1a of a nonce: deterministic (no per-process hash keys), and a false match with a
/// fresh nonce (one in 2^64) would only count one refusal early.
fn nonce_hash(nonce: &str) -> NonZeroU64 {
    let h = nonce.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    NonZeroU64::new(h).unwrap_or(NonZeroU64::MIN)
}

/// `user@host:port` of a provider account.
pub fn account_key(p: &Provider) -> String {
    format!("{}@{}:{}", p.username, uri_host(&p.host), p.port())
}

fn uri_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

impl Registration {
    /// A new registration for `provider`: with the identity of a previous run when one
    /// was restored for the same account, else with fresh Call-ID, tag and Contact token.
    pub fn new(
        slot: u32,
        provider: Provider,
        ctx: &mut Ctx,
        restored: Option<BindingIdentity>,
    ) -> Self {
        let requested_expires = provider.expires;
        let account = account_key(&provider);
        let restored = restored.filter(|r| r.account == account);
        let (call_id, from_tag, line, cseq_reserved) = match restored {
            Some(r) => (r.call_id, r.from_tag, r.line, r.next_cseq),
            None => (ctx.ids.call_id(), ctx.ids.tag(), ctx.ids.token(12), 0),
        };
        let ids = BindingIds::new(&call_id, &from_tag, &line);
        // The first request then uses the first CSeq no earlier run can have used.
        let cseq = cseq_reserved.saturating_sub(1);
        Self {
            slot,
            provider,
            status: RegisterStatus::Pending,
            phase: Phase::Waiting,
            goal: Goal::Registered,
            ids,
            cseq,
            cseq_reserved,
            target_ip: None,
            target_port: 0,
            address: OurAddress::Unknown,
            requested_expires,
            sent_expires: 0,
            auth: None,
            answered_nonce: None,
            challenge_rounds: 0,
            bound_until: None,
            registered_at: None,
            next_at: None,
            retries: RetryCounts::default(),
            rerun: false,
            attempt_started: None,
            rare: None,
        }
    }

    /// Whether `new` names the same binding as this registration: the same account at
    /// the same registrar, reached the same way (so the same Contact). A change of
    /// anything else (password, auth user, realm, expiry, name) then refreshes this
    /// binding — same Call-ID, CSeq + 1 — instead of removing it and adding a second.
    pub fn same_binding(&self, new: &Provider) -> bool {
        let p = &self.provider;
        new.enabled
            && p.username == new.username
            && p.host == new.host
            && p.given_port == new.given_port
            && p.transport == new.transport
            && p.outbound_proxy == new.outbound_proxy
    }

    /// Takes the changed entry of the same binding (see [`Registration::same_binding`]):
    /// new credentials or expiry are used by a REGISTER now (or right after the one in
    /// flight); a change of name alone sends nothing.
    pub fn update(&mut self, now: Instant, ctx: &mut Ctx, new: Provider) {
        let old = &self.provider;
        let credentials_changed = old.password != new.password
            || old.auth_username() != new.auth_username()
            || old.realm != new.realm;
        let expires_changed = old.expires != new.expires;
        if credentials_changed {
            // A cached challenge belongs to the old credentials (or realm filter).
            self.auth = None;
        }
        if expires_changed {
            self.requested_expires = new.expires;
        }
        self.provider = new;
        if credentials_changed || expires_changed {
            // New credentials are not spaced like an operator's orders.
            self.register_again(now, ctx, now);
        } else {
            // Only the name changed: the status line carries the new one (the outbox
            // sends nothing for an unchanged status).
            self.report(now, ctx);
        }
    }

    /// Keeps the credentials of the entry that replaced this one, for the un-REGISTER.
    pub fn set_successor_credentials(&mut self, new: &Provider) {
        if new.auth_username() != self.provider.auth_username()
            || new.password != self.provider.password
        {
            self.rare_mut().successor = Some(Credentials {
                auth_username: new.auth_username().to_owned(),
                password: new.password.clone(),
            });
        }
    }

    /// An operator asks for a REGISTER now. Coalesced: while an attempt runs, one more
    /// follows it; and attempts asked this way are [`REREGISTER_SPACING`] apart.
    pub fn reregister(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.goal == Goal::Registered {
            self.register_again(now, ctx, self.spaced(now));
        }
    }

    /// A REGISTER at `at` (at once when it is due): while an attempt runs, one more
    /// follows it instead; a registration already due earlier keeps its time.
    fn register_again(&mut self, now: Instant, ctx: &mut Ctx, at: Instant) {
        match self.phase {
            Phase::Waiting if at <= now => self.start(now, ctx),
            Phase::Waiting => {
                if self.next_at.is_none_or(|t| t > at) {
                    self.wait_until(at, ctx);
                }
            }
            Phase::Stopped => {}
            Phase::Resolving | Phase::Queued | Phase::InFlight(_) => self.rerun = true,
        }
    }

    /// The earliest instant an operator's re-register may start.
    fn spaced(&self, now: Instant) -> Instant {
        self.attempt_started
            .map_or(now, |t| (t + REREGISTER_SPACING).max(now))
    }

    /// After an attempt ended: an asked-for re-register goes now (spaced), unless the
    /// registration already waits for less.
    fn take_rerun(&mut self, now: Instant, ctx: &mut Ctx) {
        if std::mem::take(&mut self.rerun) {
            let at = self.spaced(now);
            if self.next_at.is_none_or(|t| t > at) {
                self.wait_until(at, ctx);
            }
        }
    }

    /// What a restart needs to refresh this binding instead of adding one.
    pub fn identity(&self) -> BindingIdentity {
        BindingIdentity {
            provider_id: self.provider.id.clone(),
            account: account_key(&self.provider),
            call_id: self.ids.call_id().to_owned(),
            from_tag: self.ids.tag().to_owned(),
            line: self.ids.line().to_owned(),
            next_cseq: self.cseq_reserved,
        }
    }

    /// The host the REGISTER goes to (the outbound proxy's when there is one).
    pub fn next_hop(&self) -> &str {
        match &self.provider.outbound_proxy {
            Some(proxy) => &proxy.0,
            None => &self.provider.host,
        }
    }

    /// Where the REGISTER goes: the target of the next hop in use.
    fn target(&self) -> Option<SocketAddr> {
        self.target_ip
            .map(|ip| SocketAddr::new(ip, self.target_port))
    }

    fn set_target(&mut self, target: SocketAddr) {
        self.target_ip = Some(target.ip());
        self.target_port = target.port();
    }

    /// `host:port` of the registrar, for messages and the admin view (`host` alone
    /// when the entry gave no port: its SRV records say where).
    pub fn registrar(&self) -> String {
        if self.provider.given_port.is_some() || self.provider.host.parse::<IpAddr>().is_ok() {
            format!("{}:{}", uri_host(&self.provider.host), self.provider.port())
        } else {
            uri_host(&self.provider.host)
        }
    }

    /// The registrar, and the address in use when it is not what the name says
    /// (`sip.example.com (192.0.2.7:5070)`): which of its targets failed.
    fn registrar_at(&self) -> String {
        let registrar = self.registrar();
        match self.target() {
            Some(t)
                if t.to_string() != registrar
                    && format!("[{}]:{}", t.ip(), t.port()) != registrar =>
            {
                format!("{registrar} ({t})")
            }
            _ => registrar,
        }
    }

    /// Wall time of the last successful registration, RFC 3339.
    pub fn last_register_at(&self, clock: &WallClock) -> Option<String> {
        self.registered_at.map(|t| clock.rfc3339(t))
    }

    /// Our source address towards the registrar, once resolved (`None` once a NAT's
    /// public address was learnt: see [`Registration::public_address`]).
    pub fn local_ip(&self) -> Option<IpAddr> {
        match self.address {
            OurAddress::Local(ip) => Some(ip),
            OurAddress::Unknown | OurAddress::Learned(..) => None,
        }
    }

    /// The public address the registrar saw us at, when it differs from ours (we are
    /// behind a NAT); calls from this provider advertise it too.
    pub fn public_address(&self) -> Option<SocketAddr> {
        match self.address {
            OurAddress::Learned(ip, port) => Some(SocketAddr::new(ip, port)),
            OurAddress::Unknown | OurAddress::Local(_) => None,
        }
    }

    /// Unique token in our Contact URI (`;line=`), to match inbound requests and our own
    /// binding in the registrar's 200 OK.
    pub fn line(&self) -> &str {
        self.ids.line()
    }

    /// The error of the current status, if any.
    pub fn error(&self) -> Option<&str> {
        self.rare.as_deref().and_then(|r| r.error.as_deref())
    }

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// What an operator sees.
    pub fn view(&self, ctx: &Ctx) -> RegistrationView {
        RegistrationView {
            id: self.provider.id.clone(),
            name: self.provider.name.to_string(),
            status: self.status,
            error: self.error().map(str::to_owned),
            last_register_at: self.last_register_at(&ctx.clock),
            expires_at: self.bound_until.map(|t| ctx.clock.rfc3339(t)),
            next_refresh_at: match self.phase {
                Phase::Waiting => self.next_at.map(|t| ctx.clock.rfc3339(t)),
                _ => None,
            },
            registrar: self.registrar(),
            transport: self.provider.transport,
            target: self.target(),
        }
    }

    /// Announces the status and queues it for the backend.
    pub fn report(&self, now: Instant, ctx: &mut Ctx) {
        let report = StatusReport {
            register_status: self.status,
            register_error: self.error().map(str::to_owned),
            last_register_at: self.last_register_at(&ctx.clock),
        };
        ctx.report(now, self.view(ctx), report);
    }

    /// Takes our queued send out of the pacer. Only a [`Phase::Queued`] registration is in
    /// its queue (skipping the others saves a look-up per start).
    fn leave_pacer(&self, ctx: &mut Ctx) {
        if self.phase == Phase::Queued {
            ctx.pacer.remove(self.slot);
        }
    }

    /// Starts (or restarts) an attempt now: resolve if needed, then queue a REGISTER.
    pub fn start(&mut self, now: Instant, ctx: &mut Ctx) {
        ctx.timers.cancel(TimerKey::Registration(self.slot));
        self.next_at = None;
        // While the attempt runs, the registration timer stands for the binding's
        // expiry: if it passes unconfirmed, the registration is no longer `registered`.
        if let Some(until) = self.bound_until.filter(|t| *t > now) {
            if self.goal == Goal::Registered {
                ctx.timers.set(TimerKey::Registration(self.slot), until);
            }
        }
        if let Phase::InFlight(txn) = self.phase {
            ctx.txns.abandon(txn, &mut ctx.timers);
        }
        self.leave_pacer(ctx);
        self.locate_and_queue(now, ctx);
    }

    /// The pacer released our REGISTER: build it and start its transaction.
    pub fn send(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.phase != Phase::Queued {
            return;
        }
        let Some(target) = self.target() else {
            self.start(now, ctx);
            return;
        };
        if ctx.silent.is_silent(target, now) && self.skip_silent(now, ctx, target) {
            return;
        }
        let advertised = self.advertised(ctx, target);
        let expires = match self.goal {
            Goal::Registered => self.requested_expires,
            Goal::Unregistered { .. } => 0,
        };
        self.sent_expires = expires;
        self.bump_cseq(ctx);
        let branch = ctx.ids.branch();
        self.attempt_started = Some(now);
        let payload = self.build_request(ctx, &advertised, &branch, expires);
        // On TCP the connection to the registrar is shared by every registration to it
        // and opened by the first (RFC 5626's flow: INVITEs may come back on it).
        // TLS checks the certificate of the host we connect to: the outbound proxy's
        // when there is one, else the registrar's.
        let transport = self.provider.transport;
        let name = (transport == Transport::Tls).then_some(self.next_hop());
        let Some(link) = ctx.link_to(now, transport, target, name) else {
            let error = format!(
                "cannot open a connection to {}: too many connections",
                self.registrar()
            );
            self.fail(now, ctx, FailureClass::Temporary, error, None);
            return;
        };
        let txn = ctx.txns.start(
            now,
            &ctx.cfg.timers,
            &mut ctx.timers,
            Owner::Registration(self.slot),
            branch,
            "REGISTER",
            link,
            payload.clone(),
        );
        self.phase = Phase::InFlight(txn);
        ctx.transmit(link, payload);
    }

    fn request_uri(&self) -> String {
        let p = &self.provider;
        if p.port() == 5060 {
            format!("sip:{}", uri_host(&p.host))
        } else {
            format!("sip:{}:{}", uri_host(&p.host), p.port())
        }
    }

    /// `host:port` we advertise in Contact and Via towards `target`: the configured
    /// public address, else what the registrar saw (a NAT's), else our source address
    /// towards it, else (not resolved yet) the registrar's own IP family's guess.
    fn advertised(&self, ctx: &Ctx, target: SocketAddr) -> String {
        let port = ctx.cfg.listen_port(self.provider.transport);
        match (&ctx.cfg.contact_host, self.address) {
            (Some(h), _) => format!("{}:{port}", uri_host(h)),
            (None, OurAddress::Learned(ip, learned_port)) => {
                SocketAddr::new(ip, learned_port).to_string()
            }
            (None, OurAddress::Local(ip)) => SocketAddr::new(ip, port).to_string(),
            (None, OurAddress::Unknown) => SocketAddr::new(target.ip(), port).to_string(),
        }
    }

    /// The next CSeq of our Call-ID (every REGISTER of this binding, to any target,
    /// counts up: RFC 3261 §10.2.4), reserving a block in persisted state.
    fn bump_cseq(&mut self, ctx: &mut Ctx) {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        if self.cseq >= self.cseq_reserved {
            self.cseq_reserved = self.cseq.saturating_add(CSEQ_BLOCK);
            ctx.persist(self.identity());
        }
    }

    /// The REGISTER to our target, with the cached challenge answered.
    fn build_request(&mut self, ctx: &mut Ctx, local: &str, branch: &str, expires: u32) -> Vec<u8> {
        let mut auth = self.auth.take();
        let stale = self
            .rare
            .as_deref()
            .and_then(|r| r.stale_contact.as_deref())
            .filter(|stale| *stale != local);
        let (payload, answered) = self.compose(
            ctx,
            Parts {
                local,
                branch,
                expires,
                stale,
                auth: auth.as_mut(),
            },
        );
        self.auth = auth;
        self.answered_nonce = answered;
        payload
    }

    /// A REGISTER of this binding from `parts`; returns it and the hash of the nonce
    /// it answers, if it carries credentials.
    fn compose(&self, ctx: &mut Ctx, parts: Parts<'_>) -> (Vec<u8>, Option<NonZeroU64>) {
        let p = &self.provider;
        let ruri = self.request_uri();
        let aor = format!("sip:{}@{}", p.username, uri_host(&p.host));
        let line = self.ids.line();
        let local = parts.local;
        // RFC 3261 §19.1.1: the transport the registrar is to reach us over.
        let transport = p.transport.uri_param();
        let mut contact = format!("<sip:{}@{local}{transport};line={line}>", p.username);
        if parts.expires == 0 {
            contact.push_str(";expires=0");
        }
        // The binding of the address we advertised before a NAT's was learnt: removed
        // in the same REGISTER, so the registrar never holds two for us.
        if let Some(stale) = parts.stale {
            contact.push_str(&format!(
                ", <sip:{}@{stale}{transport};line={line}>;expires=0",
                p.username
            ));
        }
        let mut msg = MessageBuilder::request("REGISTER", &ruri)
            .header("Via", p.transport.via(local, parts.branch))
            .header("Max-Forwards", "70")
            .header("From", format!("<{aor}>;tag={}", self.ids.tag()))
            .header("To", format!("<{aor}>"))
            .header("Call-ID", self.ids.call_id())
            .header("CSeq", format!("{} REGISTER", self.cseq))
            .header("Contact", contact)
            .header("Expires", parts.expires.to_string());
        if let Some(proxy) = &p.outbound_proxy {
            let route = match &**proxy {
                (h, Some(port)) => format!("<sip:{}:{port};lr>", uri_host(h)),
                (h, None) => format!("<sip:{};lr>", uri_host(h)),
            };
            msg = msg.header("Route", route);
        }
        let mut answered = None;
        if let Some(cache) = parts.auth {
            cache.nc = cache.nc.wrapping_add(1);
            let cnonce = ctx.ids.cnonce();
            let value = auth::authorization_value(
                &cache.challenge,
                &DigestInput {
                    username: p.auth_username(),
                    password: p.password.expose(),
                    method: "REGISTER",
                    uri: &ruri,
                    nc: cache.nc,
                    cnonce: &cnonce,
                    body: &[],
                },
            );
            let name = if cache.proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            msg = msg.header(name, value);
            answered = Some(nonce_hash(&cache.challenge.nonce));
        }
        let payload = msg
            .header("User-Agent", ctx.cfg.user_agent.clone())
            .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
            .to_bytes();
        (payload, answered)
    }

    /// The registration timer fired: refresh or retry; or, while an attempt runs, the
    /// binding expired without a confirmed refresh.
    pub fn on_timer(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.phase == Phase::Waiting {
            self.next_at = None;
            self.start(now, ctx);
        } else {
            self.on_lapse(now, ctx);
        }
    }

    /// The granted binding has expired while the refresh is unconfirmed: the registrar
    /// may no longer route calls to us, so we must not go on saying `registered`.
    fn on_lapse(&mut self, now: Instant, ctx: &mut Ctx) {
        let Some(until) = self.bound_until.filter(|t| *t <= now) else {
            return;
        };
        if self.goal != Goal::Registered {
            return;
        }
        self.bound_until = None;
        let registrar = self.registrar();
        let why = match self.phase {
            Phase::InFlight(_) => format!("{registrar} has not answered the refresh"),
            Phase::Queued => "the refresh is still waiting for its turn (REGISTER_RATE)".to_owned(),
            Phase::Resolving => format!("the address of {registrar} is still being resolved"),
            Phase::Waiting | Phase::Stopped => return,
        };
        let at = ctx.clock.rfc3339(until);
        let error =
            format!("registration lapsed: the binding at {registrar} expired at {at} and {why}");
        self.announce_failure(now, ctx, &error, None);
        self.set_status(ctx, now, RegisterStatus::Failed, Some(error));
    }

    /// Counts and announces the outcome of the transaction that just ended, with what
    /// was sent: two "challenged" lines must be told apart.
    fn outcome(&self, ctx: &mut Ctx, outcome: RegisterOutcome) {
        ctx.outcome(
            &self.provider.id,
            outcome,
            crate::io::SentRegister {
                cseq: self.cseq,
                expires: self.sent_expires,
                // Set exactly when the request carried credentials, and read here
                // before a challenge takes it.
                credentials: self.answered_nonce.is_some(),
            },
        );
    }

    /// Our REGISTER transaction ended.
    pub fn on_transaction(&mut self, now: Instant, ctx: &mut Ctx, txn: u64, event: TxnEvent) {
        if self.phase != Phase::InFlight(txn) {
            return;
        }
        match event {
            TxnEvent::Timeout => {
                self.outcome(ctx, RegisterOutcome::Timeout);
                if let Some(target) = self.target() {
                    ctx.silent.failed(target, now);
                }
                let error = format!("no response from {}", self.registrar_at());
                // It may have made the binding and lost only the answer.
                let may_be_bound = self.sent_expires > 0;
                if !self.fail_over(now, ctx, &error, may_be_bound) {
                    self.fail(now, ctx, FailureClass::Temporary, error, None);
                }
            }
            TxnEvent::TransportError(error) => {
                self.outcome(ctx, RegisterOutcome::Failed);
                if let Some(target) = self.target() {
                    ctx.silent.failed(target, now);
                }
                let error = format!("the connection to {} failed: {error}", self.registrar_at());
                if !self.fail_over(now, ctx, &error, false) {
                    self.fail(now, ctx, FailureClass::Temporary, error, None);
                }
            }
            TxnEvent::Final(resp) => {
                if let Some(target) = self.target() {
                    ctx.silent.answered(target);
                }
                self.on_final(now, ctx, &resp);
            }
            // A registrar's 100 Trying changes nothing; NoAck is a server's event.
            TxnEvent::Provisional(_) | TxnEvent::NoAck => {}
        }
    }

    /// Where an OPTIONS keep-alive for this registration goes: its registrar, when it
    /// is bound over UDP ([`crate::keepalive`]).
    pub fn keepalive_target(&self) -> Option<SocketAddr> {
        let bound = self.status == RegisterStatus::Registered && self.goal == Goal::Registered;
        if !bound || self.provider.transport != Transport::Udp {
            return None;
        }
        self.target()
    }

    /// Our `host:port` in what we send to `target` (Via, Contact).
    pub fn advertised_to(&self, ctx: &Ctx, target: SocketAddr) -> String {
        self.advertised(ctx, target)
    }

    /// Whether this registration's requests go on `link` (its transport to its next
    /// hop): a connection closing there concerns it.
    pub fn uses(&self, link: Link) -> bool {
        self.provider.transport == link.flow.transport() && self.target() == Some(link.remote)
    }

    /// The connection our binding was made over is gone (`reason`): the registrar can
    /// no longer reach us on it (RFC 5626 §4.4: the flow failed), so register again at
    /// once over a new one, pending with the reason meanwhile. A connection that keeps
    /// closing right after a REGISTER succeeded (within 64·T1) is a failure with its
    /// backoff instead, so a registrar that drops every connection cannot make us loop.
    pub fn on_flow_lost(&mut self, now: Instant, ctx: &mut Ctx, reason: &str) {
        let registered = self.status == RegisterStatus::Registered;
        if self.phase != Phase::Waiting || self.goal != Goal::Registered || !registered {
            // In flight: its transaction reports the error. Retrying or resolving: the
            // next attempt opens a new connection anyway.
            return;
        }
        let registrar = self.registrar();
        let error = format!("the connection to {registrar} closed ({reason})");
        let just_made = self
            .registered_at
            .is_some_and(|t| now.saturating_duration_since(t) < ctx.cfg.timers.t1 * 64);
        if just_made {
            // The success did not hold: the run of failures it ended goes on.
            if let Some(run) = self.rare.as_mut().and_then(|r| r.unconfirmed.take()) {
                self.retries = run;
            }
            self.fail(now, ctx, FailureClass::Temporary, error, None);
            return;
        }
        self.set_status(
            ctx,
            now,
            RegisterStatus::Pending,
            Some(format!("{error}: registering again")),
        );
        self.wait_until(now, ctx);
    }

    fn on_final(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        let replaced = self.learn_address(ctx, resp);
        let registrar = self.registrar();
        let status_line = format!("{} {}", resp.status, resp.reason);
        match resp.status {
            200..=299 => {
                self.on_success(now, ctx, resp);
                if replaced && self.phase == Phase::Waiting {
                    // The binding just made names an address the registrar cannot reach
                    // us at: refresh at once with the learnt one (removing this one).
                    self.wait_until(now, ctx);
                }
            }
            401 | 407 => self.on_challenge(now, ctx, resp),
            423 => {
                self.outcome(ctx, RegisterOutcome::IntervalTooBrief);
                match resp.headers.min_expires() {
                    Some(min) if min > self.requested_expires => {
                        self.requested_expires = min;
                        self.requeue_now(ctx);
                    }
                    _ => self.fail(
                        now,
                        ctx,
                        FailureClass::Temporary,
                        format!("temporary failure: {registrar} answered {status_line} without a usable Min-Expires"),
                        None,
                    ),
                }
            }
            403 => {
                self.outcome(ctx, RegisterOutcome::Rejected);
                self.fail(
                    now,
                    ctx,
                    FailureClass::Rejected,
                    format!("account rejected: {registrar} answered {status_line}; check the credentials and that the account is active"),
                    None,
                );
            }
            404 => {
                self.outcome(ctx, RegisterOutcome::Rejected);
                self.fail(
                    now,
                    ctx,
                    FailureClass::Rejected,
                    format!("account rejected: {registrar} answered {status_line}; check the username and the host"),
                    None,
                );
            }
            _ => {
                self.outcome(ctx, RegisterOutcome::Failed);
                let retry_after = resp
                    .headers
                    .retry_after()
                    .map(|s| Duration::from_secs(u64::from(s)));
                let class_text = if resp.status >= 500 {
                    "temporary failure"
                } else {
                    "request refused"
                };
                let error = format!("{class_text}: {registrar} answered {status_line}");
                // RFC 3263 §4.3: a 503 sends the request to the next target.
                if resp.status != 503 || !self.fail_over(now, ctx, &error, false) {
                    self.fail(now, ctx, FailureClass::Temporary, error, retry_after);
                }
            }
        }
    }

    /// Learns our public address from the registrar's answer (RFC 3581: the top Via's
    /// `received` and `rport` say where our request came from). When it differs from
    /// what we advertised, we are behind a NAT: Contact and Via say the learnt address
    /// from the next REGISTER on, and the change is logged once (an event). Returns
    /// whether a binding at the old address must be replaced now.
    ///
    /// `SIP_PUBLIC_ADDRESS` wins: with it set nothing is learnt. The old binding is
    /// removed in the REGISTER that adds the new one (its Contact with `expires=0`),
    /// so the registrar never keeps two. Only one such replacement runs at once: if the
    /// answer to a replacement names yet another address (a NAT that maps each flow
    /// anew), that one is learnt too but waits for the normal refresh, so a changing
    /// address cannot make us re-register in a loop.
    fn learn_address(&mut self, ctx: &mut Ctx, resp: &Response) -> bool {
        let success = (200..300).contains(&resp.status) && self.sent_expires > 0;
        let replacing = self
            .rare
            .as_deref()
            .is_some_and(|r| r.stale_contact.is_some());
        if success && replacing {
            // This REGISTER carried the stale binding's removal.
            self.rare_mut().stale_contact = None;
        }
        if ctx.cfg.contact_host.is_some() {
            return false;
        }
        let (Some(target), Some(via)) = (self.target(), resp.headers.top_via()) else {
            return false;
        };
        let advertised = self.advertised(ctx, target);
        let sent_by = match via.port {
            Some(port) => format!("{}:{port}", via.host),
            None => via.host.clone(),
        };
        // An answer to a request that did not carry our current address says nothing
        // about it.
        if sent_by != advertised {
            return false;
        }
        let seen_ip = via.received_ip().or_else(|| via.host_ip());
        let (Some(ip), Some(port)) = (seen_ip, via.rport.or(via.port)) else {
            return false;
        };
        if ip.is_unspecified() {
            return false;
        }
        let seen = SocketAddr::new(ip, port);
        if seen.to_string() == advertised {
            return false;
        }
        // On a connection the source port is the connection's own, never our
        // listener's: only another IP says NAT there (and then the NAT's port is the
        // flow's, which is what the registrar can reach us on).
        let same_ip = advertised.parse::<SocketAddr>().is_ok_and(|a| a.ip() == ip);
        if self.provider.transport.is_reliable() && same_ip {
            return false;
        }
        self.address = OurAddress::Learned(ip, port);
        ctx.emit(Event::PublicAddressLearned {
            provider_id: self.provider.id.clone(),
            advertised: advertised.clone(),
            seen,
        });
        // A binding exists at the old address if this answer made one, or if an
        // earlier one did and is still held.
        let bound = success || self.status == RegisterStatus::Registered;
        if bound && !replacing {
            self.rare_mut().stale_contact = Some(advertised.into());
            return success;
        }
        false
    }

    fn requeue_now(&mut self, ctx: &mut Ctx) {
        self.phase = Phase::Queued;
        ctx.pacer.push_front(self.slot, self.target());
    }

    fn on_success(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        self.outcome(ctx, RegisterOutcome::Success);
        self.challenge_rounds = 0;
        self.targets_confirmed();
        if let Goal::Unregistered { report } = self.goal {
            if self.sent_expires > 0 {
                // A REGISTER that was in flight when we were told to un-register has
                // just created a binding: remove it now.
                self.requeue_now(ctx);
                return;
            }
            self.phase = Phase::Stopped;
            self.bound_until = None;
            if report {
                self.set_status(
                    ctx,
                    now,
                    RegisterStatus::Pending,
                    Some("unregistered: trunkline shut down".to_owned()),
                );
            }
            ctx.stopped(self.slot);
            return;
        }
        let contacts = resp.headers.contacts();
        // Ours carries our `line=` token. A registrar may also list a binding of ours
        // being replaced (a NAT's old address): the one at the address this REGISTER
        // advertised is ours, else one not being removed (`expires=0`). Reading the
        // old one's shorter grant would refresh ever faster until it lapsed (seen
        // against a registrar that kept a binding we removed).
        let line = Some(self.ids.line());
        let at = self
            .target()
            .map(|t| format!("@{}", self.advertised(ctx, t)));
        let ours = contacts
            .iter()
            .filter(|b| b.uri_param("line") == line)
            .min_by_key(|b| {
                let here = at.as_deref().is_some_and(|a| names_address(&b.uri, a));
                (!here, b.expires == Some(0))
            });
        let granted = ours
            .and_then(|b| b.expires)
            .or_else(|| resp.headers.expires())
            .unwrap_or(self.requested_expires);
        if granted == 0 {
            let registrar = self.registrar();
            self.fail(
                now,
                ctx,
                FailureClass::Temporary,
                format!(
                    "temporary failure: {registrar} accepted the REGISTER but granted 0 seconds"
                ),
                None,
            );
            return;
        }
        let ended = std::mem::take(&mut self.retries);
        if self.provider.transport.is_reliable() && ended != RetryCounts::default() {
            // Kept: a connection that closes right after each success must not start
            // the backoff from its first step every time (a registrar dropping every
            // connection would be re-registered every few seconds forever).
            self.rare_mut().unconfirmed = Some(ended);
        } else if let Some(rare) = self.rare.as_mut() {
            rare.unconfirmed = None;
        }
        if let Some(rare) = self.rare.as_mut() {
            rare.failures = None;
        }
        self.bound_until = Some(now + Duration::from_secs(u64::from(granted)));
        self.registered_at = Some(now);
        let delay = self.refresh_delay(granted, ctx);
        self.wait_until(now + delay, ctx);
        self.take_rerun(now, ctx);
        // Reported on every success, also unchanged: the backend wants `lastRegisterAt`.
        self.set_status(ctx, now, RegisterStatus::Registered, None);
    }

    /// When to refresh a binding granted for `granted` seconds: at 80 % of it, or earlier
    /// so a whole UDP transaction still fits before it lapses — never before half of it
    /// (a 20 s grant refreshes at 10 s, not in a loop). Jitter spreads refreshes over up
    /// to a tenth of the grant so that registrations made together drift apart.
    ///
    /// The first refresh of a new binding (the registration was not registered before:
    /// a start, a recovery) is drawn from a quarter of the grant (at least a transaction's
    /// span, at most half) up to that point instead: registrations made together in a burst (100,000 at start, or all of a
    /// registrar's after its outage) then refresh spread over most of a period, and the
    /// small jitter after keeps them spread. A tenth of the grant alone would keep the
    /// whole burst within a tenth of every later period (the busiest second ten times
    /// the mean); this way it is under twice, for one early refresh per binding.
    fn refresh_delay(&self, granted: u32, ctx: &mut Ctx) -> Duration {
        let g = Duration::from_secs(u64::from(granted));
        let half = g / 2;
        let base = g
            .mul_f64(0.8)
            .min(g.saturating_sub(TRANSACTION_SPAN))
            .max(half);
        let room = if self.status == RegisterStatus::Registered {
            base.saturating_sub(half).min(g / 10)
        } else {
            // Not before a whole transaction's span either: a short grant keeps half.
            base.saturating_sub((g / 4).max(TRANSACTION_SPAN).min(half))
        };
        base.saturating_sub(room.mul_f64(ctx.ids.unit()))
    }

    fn on_challenge(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        self.outcome(ctx, RegisterOutcome::Challenged);
        let proxy = resp.status == 407;
        let header = if proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let realm_filter = self.provider.realm.clone();
        let registrar = self.registrar();
        let challenge =
            match auth::select_challenge(resp.headers.get_all(header), realm_filter.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    self.auth = None;
                    self.fail(
                        now,
                        ctx,
                        FailureClass::Rejected,
                        format!("authentication impossible: {registrar}: {e}"),
                        None,
                    );
                    return;
                }
            };
        let answered = self.answered_nonce;
        let rejected = match answered {
            // We sent no credentials: this is the normal first challenge.
            None => false,
            // The nonce expired: not a failure.
            Some(_) if challenge.stale => false,
            // Same nonce after our answer: the credentials are wrong.
            Some(n) if n == nonce_hash(&challenge.nonce) => true,
            // A new nonce without `stale`: many registrars omit it, so one more try.
            Some(_) => self.challenge_rounds >= 2,
        };
        self.challenge_rounds = self.challenge_rounds.saturating_add(1);
        if rejected && matches!(self.goal, Goal::Unregistered { .. }) {
            if let Some(next) = self.rare.as_mut().and_then(|r| r.successor.take()) {
                // The old binding's un-REGISTER was refused with the old credentials:
                // the rotation reached the provider first, so try the new ones.
                self.provider.set_auth_username(&next.auth_username);
                self.provider.password = next.password;
                self.challenge_rounds = 1;
                self.auth = Some(AuthCache {
                    challenge,
                    proxy,
                    nc: 0,
                });
                self.requeue_now(ctx);
                return;
            }
        }
        if rejected || self.challenge_rounds > MAX_CHALLENGE_ROUNDS {
            self.outcome(ctx, RegisterOutcome::Rejected);
            self.auth = None;
            let user = self.provider.auth_username();
            self.fail(
                now,
                ctx,
                FailureClass::Rejected,
                format!(
                    "authentication rejected by {}: check the password of {user} (registrar {registrar})",
                    challenge.realm
                ),
                None,
            );
            return;
        }
        self.auth = Some(AuthCache {
            challenge,
            proxy,
            nc: 0,
        });
        self.requeue_now(ctx);
    }

    fn wait_until(&mut self, at: Instant, ctx: &mut Ctx) {
        self.phase = Phase::Waiting;
        self.next_at = Some(at);
        ctx.timers.set(TimerKey::Registration(self.slot), at);
    }

    /// Records a failure and schedules the retry.
    fn fail(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        class: FailureClass,
        error: String,
        retry_after: Option<Duration>,
    ) {
        self.answered_nonce = None;
        self.challenge_rounds = 0;
        if let Goal::Unregistered { report } = self.goal {
            if self.sent_expires > 0 && self.bound_until.is_some_and(|t| t > now) {
                // The failed request was the REGISTER that was in flight; an earlier
                // binding is still there to remove.
                self.requeue_now(ctx);
                return;
            }
            // Un-registering is best effort: the binding lapses at the registrar anyway.
            self.phase = Phase::Stopped;
            let error = if self.sent_expires > 0 {
                // The REGISTER in flight failed: no binding was confirmed, none to remove.
                format!("unregistered: trunkline shut down; the REGISTER got {error}, so no binding was confirmed")
            } else {
                format!("un-register failed: {error}")
            };
            if report {
                let status = if self.sent_expires > 0 {
                    RegisterStatus::Pending
                } else {
                    RegisterStatus::Failed
                };
                self.set_status(ctx, now, status, Some(error));
            } else if self.sent_expires == 0 {
                self.left_behind(ctx, error);
            }
            ctx.stopped(self.slot);
            return;
        }
        let draw = ctx.ids.unit();
        let cfg = &ctx.cfg;
        let mut delay = match class {
            FailureClass::Temporary => {
                self.retries
                    .next_temporary(cfg.retry_initial, cfg.retry_cap, draw)
            }
            FailureClass::Rejected => {
                self.retries
                    .next_rejected(cfg.rejected_retry_initial, cfg.rejected_retry_cap, draw)
            }
        };
        if let Some(ra) = retry_after {
            delay = delay.max(ra.min(ctx.cfg.max_retry_after));
        }
        self.wait_until(now + delay, ctx);
        self.take_rerun(now, ctx);
        self.announce_failure(now, ctx, &error, Some(delay));
        self.set_status(ctx, now, RegisterStatus::Failed, Some(error));
    }

    /// Counts the failure into the current run; announces it when the error is new, and
    /// an unchanged one again with its count at most every [`FAILURE_REPEAT_EVERY`].
    fn announce_failure(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        error: &str,
        retry_in: Option<Duration>,
    ) {
        let same = self.error() == Some(error) && self.status == RegisterStatus::Failed;
        let rare = self.rare_mut();
        let run = match rare.failures.as_mut() {
            Some(run) if same => {
                run.attempts = run.attempts.saturating_add(1);
                if now.saturating_duration_since(run.announced_at) < FAILURE_REPEAT_EVERY {
                    return;
                }
                run.announced_at = now;
                run
            }
            _ => rare.failures.insert(FailureRun {
                since: now,
                attempts: 1,
                announced_at: now,
            }),
        };
        let (attempts, since) = (run.attempts, run.since);
        let notice = FailureNotice {
            provider_id: self.provider.id.clone(),
            provider_name: self.provider.name.to_string(),
            registrar: self.registrar(),
            error: error.to_owned(),
            attempts,
            since: ctx.clock.rfc3339(since),
            retry_in,
        };
        ctx.out
            .push_back(Output::Event(Event::RegistrationFailing(Box::new(notice))));
    }

    /// A removed or replaced provider's binding could not be removed: say what stays at
    /// the registrar, and until when, instead of forgetting it silently.
    fn left_behind(&self, ctx: &mut Ctx, reason: String) {
        let p = &self.provider;
        let notice = LeftBehind {
            provider_id: p.id.clone(),
            provider_name: p.name.to_string(),
            registrar: self.registrar(),
            aor: format!("sip:{}@{}", p.username, uri_host(&p.host)),
            expires_at: self.bound_until.map(|t| ctx.clock.rfc3339(t)),
            reason,
        };
        ctx.out
            .push_back(Output::Event(Event::BindingLeftBehind(Box::new(notice))));
    }

    fn set_status(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        status: RegisterStatus,
        error: Option<String>,
    ) {
        self.status = status;
        match (self.rare.as_mut(), error) {
            (Some(rare), error) => rare.error = error,
            (None, None) => {}
            (None, error) => self.rare_mut().error = error,
        }
        // Nothing left in the box: the steady state holds none.
        if self.rare.as_deref().is_some_and(|r| {
            r.error.is_none()
                && r.failures.is_none()
                && r.successor.is_none()
                && r.stale_contact.is_none()
                && r.unconfirmed.is_none()
                && r.failovers == 0
                && r.failing_over.is_none()
                && r.cleanups.is_empty()
        }) {
            self.rare = None;
        }
        self.report(now, ctx);
    }

    /// The shutdown cannot wait longer for this un-REGISTER: stop, and report that the
    /// binding may outlive us until it expires at the registrar.
    pub fn give_up_unregister(&mut self, now: Instant, ctx: &mut Ctx) {
        let Goal::Unregistered { report } = self.goal else {
            return;
        };
        if self.phase == Phase::Stopped {
            return;
        }
        let registrar = self.registrar();
        let lapses = match self.bound_until.filter(|t| *t > now) {
            Some(t) => format!("the binding lapses at {}", ctx.clock.rfc3339(t)),
            None => "the binding lapses when it expires".to_owned(),
        };
        // Say what really happened: which request was outstanding, if any.
        let what = match self.phase {
            Phase::InFlight(_) if self.sent_expires == 0 => {
                format!("trunkline shut down before {registrar} confirmed the un-REGISTER; {lapses}")
            }
            Phase::InFlight(_) if self.bound_until.is_some_and(|t| t > now) => format!(
                "trunkline shut down while a refresh to {registrar} was unanswered, so no un-REGISTER could be sent; {lapses}"
            ),
            Phase::InFlight(_) => format!(
                "trunkline shut down while {registrar} had not answered the REGISTER; no binding was confirmed"
            ),
            _ => format!(
                "trunkline shut down before the un-REGISTER to {registrar} could be sent; {lapses}"
            ),
        };
        if let Phase::InFlight(txn) = self.phase {
            ctx.txns.abandon(txn, &mut ctx.timers);
        }
        self.leave_pacer(ctx);
        self.phase = Phase::Stopped;
        if report {
            self.set_status(
                ctx,
                now,
                RegisterStatus::Pending,
                Some(format!("unregistered: {what}")),
            );
        } else {
            self.left_behind(ctx, what);
        }
        ctx.stopped(self.slot);
    }

    /// Switches to un-registering: send `Expires: 0` when a binding may exist, else stop.
    pub fn unregister(&mut self, now: Instant, ctx: &mut Ctx, report: bool) {
        self.goal = Goal::Unregistered { report };
        let may_be_bound =
            self.bound_until.is_some_and(|t| t > now) || matches!(self.phase, Phase::InFlight(_));
        ctx.timers.cancel(TimerKey::Registration(self.slot));
        self.rerun = false;
        if let Phase::InFlight(txn) = self.phase {
            // Let the REGISTER in flight finish: a second transaction of the same
            // registration must not overlap it (RFC 3261 §10.2; found by the
            // simulator). Its outcome leads to the un-REGISTER.
            let bound = self.bound_until.is_some_and(|t| t > now);
            if report && self.sent_expires > 0 && !bound {
                // Shutting down with a first REGISTER unanswered (a black hole): stop
                // retransmitting it; a late 200 still leads to the un-REGISTER.
                ctx.txns.stop_retransmitting(txn, &mut ctx.timers);
            }
            return;
        }
        self.leave_pacer(ctx);
        if may_be_bound && self.target_ip.is_some() {
            self.challenge_rounds = 0;
            self.phase = Phase::Queued;
            ctx.pacer.push_back(self.slot, self.target());
        } else {
            self.phase = Phase::Stopped;
            ctx.stopped(self.slot);
        }
    }
}

/// Whether Contact URI `uri` names `at` (`@host:port`) as its host and port (not as
/// the start of a longer port).
fn names_address(uri: &str, at: &str) -> bool {
    uri.match_indices(at).any(|(i, _)| {
        matches!(
            uri.get(i + at.len()..).and_then(|r| r.chars().next()),
            None | Some(';' | '?' | '>')
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every running registration is one allocation of this size; at 100,000 of them each
    /// byte is 100 kB, and the allocator rounds up to its size class (mimalloc: 448, then
    /// 512, 640). It was 704 bytes (a 768-byte block) before the fields were compacted; a
    /// new field that pushes it past 448 costs 64 bytes per registration, so make room
    /// first (box what is rarely set, derive what can be derived) — issue 8, "Memory".
    #[test]
    fn registration_stays_compact() {
        assert!(
            size_of::<Registration>() <= 448,
            "Registration is {} bytes",
            size_of::<Registration>()
        );
        // The provider entry it holds: boxed strings, absent optionals.
        assert!(size_of::<Provider>() <= 144);
    }

    #[test]
    fn binding_ids_give_back_each_part() {
        let ids = BindingIds::new("c@h", "tag", "line1");
        assert_eq!(
            (ids.call_id(), ids.tag(), ids.line()),
            ("c@h", "tag", "line1")
        );
        let empty = BindingIds::new("", "", "");
        assert_eq!((empty.call_id(), empty.tag(), empty.line()), ("", "", ""));
    }

    #[test]
    fn nonce_hash_tells_nonces_apart_and_is_stable() {
        // A fixed value: the hash must not depend on the process (no random keys).
        assert_eq!(nonce_hash("").get(), 0xcbf2_9ce4_8422_2325);
        assert_ne!(nonce_hash("abc"), nonce_hash("abd"));
        assert_eq!(nonce_hash("5f3a"), nonce_hash("5f3a"));
    }
}

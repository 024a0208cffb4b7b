//! One registration per provider (RFC 3261 §10): register, answer the challenge, refresh
//! before the granted expiry, back off on failure, un-register.
//!
//! The machine decides; the [`Ctx`] carries its decisions out (sends through the pacer and
//! the transaction layer, timers, status reports). Failure policy, because none of the
//! anchors gets it right (Asterisk stops after 10 tries, Kamailio's uac disables a record
//! after one failure, jambonz waits a flat 5 minutes): every outcome is classified, every
//! class is retried with exponential backoff and jitter, a temporary failure is never given
//! up for good, and the error text names the class and the cause.

use crate::auth::{self, Challenge, DigestInput};
use crate::controller::Ctx;
use crate::io::{BindingIdentity, RegisterOutcome, RegisterStatus, RegistrationView};
use crate::message::{MessageBuilder, Response};
use crate::provider::Provider;
use crate::time::{Backoff, TimerKey};
use crate::transaction::{Owner, TxnEvent};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The longest a UDP transaction can take (64·T1): a refresh must start at least this long
/// before the binding lapses.
const TRANSACTION_SPAN: Duration = Duration::from_secs(32);
/// Challenges answered within one attempt before we call it a rejection (a first answer,
/// one more for a fresh nonce without `stale`, and stale rounds).
const MAX_CHALLENGE_ROUNDS: u8 = 4;

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

#[derive(Debug, Clone)]
struct AuthCache {
    challenge: Challenge,
    /// Answered a 407 (Proxy-Authorization) rather than a 401.
    proxy: bool,
    nc: u32,
}

/// One provider's registration.
#[derive(Debug)]
pub struct Registration {
    pub slot: u32,
    pub provider: Provider,
    pub status: RegisterStatus,
    pub error: Option<String>,
    pub phase: Phase,
    pub goal: Goal,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// CSeq values below this are reserved in persisted state (see [`CSEQ_BLOCK`]).
    cseq_reserved: u32,
    /// Unique token in our Contact URI (`;line=`), to match inbound requests and our own
    /// binding in the registrar's 200 OK.
    pub line: String,
    target: Option<SocketAddr>,
    local_ip: Option<IpAddr>,
    requested_expires: u32,
    /// `Expires` of the request in flight (0: an un-REGISTER).
    sent_expires: u32,
    auth: Option<AuthCache>,
    /// The nonce our last request answered, if it carried credentials.
    answered_nonce: Option<String>,
    challenge_rounds: u8,
    /// When the binding the registrar granted lapses.
    pub bound_until: Option<Instant>,
    /// Wall time of the last successful registration, RFC 3339.
    pub last_register_at: Option<String>,
    /// When the registration timer fires next.
    pub next_at: Option<Instant>,
    backoff: Backoff,
    rejected_backoff: Backoff,
}

/// CSeq values are reserved in blocks, so persisting the identity costs one write per
/// this many requests, and a restart never reuses a CSeq.
pub const CSEQ_BLOCK: u32 = 100;

/// `user@host:port` of a provider account.
pub fn account_key(p: &Provider) -> String {
    format!("{}@{}:{}", p.username, uri_host(&p.host), p.port)
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
        let cfg = &ctx.cfg;
        let backoff = Backoff::new(cfg.retry_initial, cfg.retry_cap);
        let rejected_backoff = Backoff::new(cfg.rejected_retry_initial, cfg.rejected_retry_cap);
        let account = account_key(&provider);
        let restored = restored.filter(|r| r.account == account);
        let (call_id, from_tag, line, cseq_reserved) = match restored {
            Some(r) => (r.call_id, r.from_tag, r.line, r.next_cseq),
            None => (ctx.ids.call_id(), ctx.ids.tag(), ctx.ids.token(12), 0),
        };
        // The first request then uses the first CSeq no earlier run can have used.
        let cseq = cseq_reserved.saturating_sub(1);
        Self {
            slot,
            provider,
            status: RegisterStatus::Pending,
            error: None,
            phase: Phase::Waiting,
            goal: Goal::Registered,
            call_id,
            from_tag,
            cseq,
            cseq_reserved,
            line,
            target: None,
            local_ip: None,
            requested_expires,
            sent_expires: 0,
            auth: None,
            answered_nonce: None,
            challenge_rounds: 0,
            bound_until: None,
            last_register_at: None,
            next_at: None,
            backoff,
            rejected_backoff,
        }
    }

    /// What a restart needs to refresh this binding instead of adding one.
    pub fn identity(&self) -> BindingIdentity {
        BindingIdentity {
            provider_id: self.provider.id.clone(),
            account: account_key(&self.provider),
            call_id: self.call_id.clone(),
            from_tag: self.from_tag.clone(),
            line: self.line.clone(),
            next_cseq: self.cseq_reserved,
        }
    }

    /// `host:port` the REGISTER goes to (the outbound proxy when there is one).
    pub fn next_hop(&self) -> (&str, u16) {
        match &self.provider.outbound_proxy {
            Some((h, p)) => (h.as_str(), *p),
            None => (self.provider.host.as_str(), self.provider.port),
        }
    }

    /// `host:port` of the registrar, for messages and the admin view.
    pub fn registrar(&self) -> String {
        format!("{}:{}", uri_host(&self.provider.host), self.provider.port)
    }

    /// What an operator sees.
    pub fn view(&self, ctx: &Ctx) -> RegistrationView {
        RegistrationView {
            id: self.provider.id.clone(),
            name: self.provider.name.clone(),
            status: self.status,
            error: self.error.clone(),
            last_register_at: self.last_register_at.clone(),
            expires_at: self.bound_until.map(|t| ctx.clock.rfc3339(t)),
            next_refresh_at: match self.phase {
                Phase::Waiting => self.next_at.map(|t| ctx.clock.rfc3339(t)),
                _ => None,
            },
            registrar: self.registrar(),
        }
    }

    /// Takes our queued send out of the pacer. Only a [`Phase::Queued`] registration is in
    /// its queue, and removal scans the queue: skipping it otherwise keeps starting or
    /// un-registering 10k registrations linear instead of quadratic.
    fn leave_pacer(&self, ctx: &mut Ctx) {
        if self.phase == Phase::Queued {
            ctx.pacer.remove(self.slot);
        }
    }

    /// Starts (or restarts) an attempt now: resolve if needed, then queue a REGISTER.
    pub fn start(&mut self, now: Instant, ctx: &mut Ctx) {
        ctx.timers.cancel(TimerKey::Registration(self.slot));
        self.next_at = None;
        if let Phase::InFlight(txn) = self.phase {
            ctx.txns.abandon(txn, &mut ctx.timers);
        }
        self.leave_pacer(ctx);
        let (host, port) = self.next_hop();
        let (host, port) = (host.to_owned(), port);
        match ctx.dns.lookup(&host, now) {
            crate::dns::Lookup::Ready(res) => {
                self.set_target(&res.addrs, res.local_ip, port);
                if self.target.is_some() {
                    self.phase = Phase::Queued;
                    ctx.pacer.push_back(self.slot);
                } else {
                    self.fail(
                        now,
                        ctx,
                        FailureClass::Temporary,
                        format!("temporary failure: {host} resolved to no address"),
                        None,
                    );
                }
            }
            crate::dns::Lookup::Failed(err) => {
                self.fail(
                    now,
                    ctx,
                    FailureClass::Temporary,
                    format!("temporary failure: cannot resolve {host}: {err}"),
                    None,
                );
            }
            crate::dns::Lookup::Pending => {
                self.phase = Phase::Resolving;
                ctx.dns
                    .wait(&host, self.slot, &mut ctx.out, &mut ctx.next_query);
            }
        }
    }

    fn set_target(&mut self, addrs: &[IpAddr], local_ip: Option<IpAddr>, port: u16) {
        self.target = addrs.first().map(|ip| SocketAddr::new(*ip, port));
        if local_ip.is_some() {
            self.local_ip = local_ip;
        }
    }

    /// The registrar's address is known (or not).
    pub fn on_resolved(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        result: Result<crate::io::Resolution, String>,
    ) {
        if self.phase != Phase::Resolving {
            return;
        }
        let (host, port) = self.next_hop();
        let (host, port) = (host.to_owned(), port);
        match result {
            Ok(res) if !res.addrs.is_empty() => {
                self.set_target(&res.addrs, res.local_ip, port);
                self.phase = Phase::Queued;
                ctx.pacer.push_back(self.slot);
            }
            Ok(_) => self.fail(
                now,
                ctx,
                FailureClass::Temporary,
                format!("temporary failure: {host} resolved to no address"),
                None,
            ),
            Err(e) => self.fail(
                now,
                ctx,
                FailureClass::Temporary,
                format!("temporary failure: cannot resolve {host}: {e}"),
                None,
            ),
        }
    }

    /// The pacer released our REGISTER: build it and start its transaction.
    pub fn send(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.phase != Phase::Queued {
            return;
        }
        let Some(target) = self.target else {
            self.start(now, ctx);
            return;
        };
        let contact_host = match (&ctx.cfg.contact_host, self.local_ip) {
            (Some(h), _) => h.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => target.ip().to_string(),
        };
        let expires = match self.goal {
            Goal::Registered => self.requested_expires,
            Goal::Unregistered { .. } => 0,
        };
        self.sent_expires = expires;
        self.cseq = self.cseq.wrapping_add(1).max(1);
        if self.cseq >= self.cseq_reserved {
            self.cseq_reserved = self.cseq.saturating_add(CSEQ_BLOCK);
            ctx.persist(self.identity());
        }
        let branch = ctx.ids.branch();
        let payload = self.build_request(ctx, &contact_host, &branch, expires);
        let txn = ctx.txns.start(
            now,
            &ctx.cfg.timers,
            &mut ctx.timers,
            Owner::Registration(self.slot),
            branch,
            "REGISTER",
            target,
            payload.clone(),
        );
        self.phase = Phase::InFlight(txn);
        ctx.transmit(target, payload);
    }

    fn request_uri(&self) -> String {
        let p = &self.provider;
        if p.port == 5060 {
            format!("sip:{}", uri_host(&p.host))
        } else {
            format!("sip:{}:{}", uri_host(&p.host), p.port)
        }
    }

    fn build_request(
        &mut self,
        ctx: &mut Ctx,
        contact_host: &str,
        branch: &str,
        expires: u32,
    ) -> Vec<u8> {
        let p = &self.provider;
        let ruri = self.request_uri();
        let aor = format!("sip:{}@{}", p.username, uri_host(&p.host));
        let local = format!("{}:{}", uri_host(contact_host), ctx.cfg.local_port);
        let mut contact = format!("<sip:{}@{};line={}>", p.username, local, self.line);
        if expires == 0 {
            contact.push_str(";expires=0");
        }
        let mut msg = MessageBuilder::request("REGISTER", &ruri)
            .header("Via", format!("SIP/2.0/UDP {local};branch={branch};rport"))
            .header("Max-Forwards", "70")
            .header("From", format!("<{aor}>;tag={}", self.from_tag))
            .header("To", format!("<{aor}>"))
            .header("Call-ID", self.call_id.clone())
            .header("CSeq", format!("{} REGISTER", self.cseq))
            .header("Contact", contact)
            .header("Expires", expires.to_string());
        if let Some((h, port)) = &p.outbound_proxy {
            msg = msg.header("Route", format!("<sip:{}:{port};lr>", uri_host(h)));
        }
        self.answered_nonce = None;
        if let Some(cache) = self.auth.as_mut() {
            cache.nc = cache.nc.wrapping_add(1);
            let cnonce = ctx.ids.cnonce();
            let value = auth::authorization_value(
                &cache.challenge,
                &DigestInput {
                    username: &p.auth_username,
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
            self.answered_nonce = Some(cache.challenge.nonce.clone());
        }
        msg.header("User-Agent", ctx.cfg.user_agent.clone())
            .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
            .to_bytes()
    }

    /// The registration timer fired: refresh or retry.
    pub fn on_timer(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.phase == Phase::Waiting {
            self.next_at = None;
            self.start(now, ctx);
        }
    }

    /// Our REGISTER transaction ended.
    pub fn on_transaction(&mut self, now: Instant, ctx: &mut Ctx, txn: u64, event: TxnEvent) {
        if self.phase != Phase::InFlight(txn) {
            return;
        }
        match event {
            TxnEvent::Timeout => {
                ctx.outcome(&self.provider.id, RegisterOutcome::Timeout);
                let registrar = self.registrar();
                self.fail(
                    now,
                    ctx,
                    FailureClass::Temporary,
                    format!("no response from {registrar}"),
                    None,
                );
            }
            TxnEvent::Final(resp) => self.on_final(now, ctx, &resp),
        }
    }

    fn on_final(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        let registrar = self.registrar();
        let status_line = format!("{} {}", resp.status, resp.reason);
        match resp.status {
            200..=299 => self.on_success(now, ctx, resp),
            401 | 407 => self.on_challenge(now, ctx, resp),
            423 => {
                ctx.outcome(&self.provider.id, RegisterOutcome::IntervalTooBrief);
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
                ctx.outcome(&self.provider.id, RegisterOutcome::Rejected);
                self.fail(
                    now,
                    ctx,
                    FailureClass::Rejected,
                    format!("account rejected: {registrar} answered {status_line}; check the credentials and that the account is active"),
                    None,
                );
            }
            404 => {
                ctx.outcome(&self.provider.id, RegisterOutcome::Rejected);
                self.fail(
                    now,
                    ctx,
                    FailureClass::Rejected,
                    format!("account rejected: {registrar} answered {status_line}; check the username and the host"),
                    None,
                );
            }
            _ => {
                ctx.outcome(&self.provider.id, RegisterOutcome::Failed);
                let retry_after = resp
                    .headers
                    .retry_after()
                    .map(|s| Duration::from_secs(u64::from(s)));
                let class_text = if resp.status >= 500 {
                    "temporary failure"
                } else {
                    "request refused"
                };
                self.fail(
                    now,
                    ctx,
                    FailureClass::Temporary,
                    format!("{class_text}: {registrar} answered {status_line}"),
                    retry_after,
                );
            }
        }
    }

    fn requeue_now(&mut self, ctx: &mut Ctx) {
        self.phase = Phase::Queued;
        ctx.pacer.push_front(self.slot);
    }

    fn on_success(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        ctx.outcome(&self.provider.id, RegisterOutcome::Success);
        self.challenge_rounds = 0;
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
        let ours = contacts
            .iter()
            .find(|b| b.uri_param("line") == Some(self.line.as_str()));
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
        self.backoff.reset();
        self.rejected_backoff.reset();
        self.bound_until = Some(now + Duration::from_secs(u64::from(granted)));
        self.last_register_at = Some(ctx.clock.rfc3339(now));
        let delay = self.refresh_delay(granted, ctx);
        self.wait_until(now + delay, ctx);
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
        ctx.outcome(&self.provider.id, RegisterOutcome::Challenged);
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
        let answered = self.answered_nonce.take();
        let rejected = match &answered {
            // We sent no credentials: this is the normal first challenge.
            None => false,
            // The nonce expired: not a failure.
            Some(_) if challenge.stale => false,
            // Same nonce after our answer: the credentials are wrong.
            Some(n) if *n == challenge.nonce => true,
            // A new nonce without `stale`: many registrars omit it, so one more try.
            Some(_) => self.challenge_rounds >= 2,
        };
        self.challenge_rounds = self.challenge_rounds.saturating_add(1);
        if rejected || self.challenge_rounds > MAX_CHALLENGE_ROUNDS {
            ctx.outcome(&self.provider.id, RegisterOutcome::Rejected);
            self.auth = None;
            let user = &self.provider.auth_username;
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
            if report {
                self.set_status(
                    ctx,
                    now,
                    RegisterStatus::Failed,
                    Some(format!("un-register failed: {error}")),
                );
            }
            ctx.stopped(self.slot);
            return;
        }
        let draw = ctx.ids.unit();
        let mut delay = match class {
            FailureClass::Temporary => self.backoff.next_delay(draw),
            FailureClass::Rejected => self.rejected_backoff.next_delay(draw),
        };
        if let Some(ra) = retry_after {
            delay = delay.max(ra.min(ctx.cfg.max_retry_after));
        }
        self.wait_until(now + delay, ctx);
        self.set_status(ctx, now, RegisterStatus::Failed, Some(error));
    }

    fn set_status(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        status: RegisterStatus,
        error: Option<String>,
    ) {
        self.status = status;
        self.error = error;
        ctx.report(now, self);
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
        if let Phase::InFlight(txn) = self.phase {
            ctx.txns.abandon(txn, &mut ctx.timers);
        }
        self.leave_pacer(ctx);
        self.phase = Phase::Stopped;
        if report {
            let registrar = self.registrar();
            self.set_status(
                ctx,
                now,
                RegisterStatus::Pending,
                Some(format!(
                    "unregistered: trunkline shut down before {registrar} confirmed the un-REGISTER; the binding lapses when it expires"
                )),
            );
        }
        ctx.stopped(self.slot);
    }

    /// Switches to un-registering: send `Expires: 0` when a binding may exist, else stop.
    pub fn unregister(&mut self, now: Instant, ctx: &mut Ctx, report: bool) {
        self.goal = Goal::Unregistered { report };
        let may_be_bound =
            self.bound_until.is_some_and(|t| t > now) || matches!(self.phase, Phase::InFlight(_));
        ctx.timers.cancel(TimerKey::Registration(self.slot));
        if matches!(self.phase, Phase::InFlight(_)) {
            // Let the REGISTER in flight finish: a second transaction of the same
            // registration must not overlap it (RFC 3261 §10.2; found by the
            // simulator). Its outcome leads to the un-REGISTER.
            return;
        }
        self.leave_pacer(ctx);
        if may_be_bound && self.target.is_some() {
            self.challenge_rounds = 0;
            self.phase = Phase::Queued;
            ctx.pacer.push_back(self.slot);
        } else {
            self.phase = Phase::Stopped;
            ctx.stopped(self.slot);
        }
    }
}

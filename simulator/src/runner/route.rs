//! Carrying outputs out: the core's datagrams and backend requests into the network,
//! the models' answers back, DNS answers; every crossing is checked and traced.

use super::{Pending, Sim};
use crate::check::backend::Accepted;
use crate::check::Invariant;
use crate::net::{Direction, Fate};
use crate::scenario::{registrar_addr, registrar_name, CORE_ADDR};
use crate::trace::TraceEvent;
use sip_core::ProviderSpec;
use sip_core::{
    BackendOp, BackendReply, BackendRequest, Event, Input, Output, RequestId, Resolution,
    ResolveQuery, Transmit,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Moves model `index`'s deadline in `slots` and in the ordered `set` to `next`.
pub(super) fn track_deadline(
    slots: &mut [Option<Instant>],
    set: &mut BTreeSet<(Instant, usize)>,
    index: usize,
    next: Option<Instant>,
) {
    let Some(slot) = slots.get_mut(index) else {
        return;
    };
    if *slot == next {
        return;
    }
    if let Some(old) = *slot {
        set.remove(&(old, index));
    }
    if let Some(new) = next {
        set.insert((new, index));
    }
    *slot = next;
}

/// DNS answers take this long (the resolver is not what is under test).
const DNS_DELAY: Duration = Duration::from_millis(1);

impl Sim {
    /// Drains the core's outputs until its next deadline.
    pub(super) fn drain(&mut self) {
        loop {
            let out = self.core.poll_output();
            if self.shutdown_completed.is_some() && !matches!(out, Output::Timeout(_)) {
                self.findings
                    .push(Invariant::OutputAfterShutdown, format!("{out:?}"));
            }
            match out {
                Output::Transmit(t) => match t.flow.conn() {
                    Some(conn) => self.core_stream_transmit(t, conn.0),
                    None => self.core_transmit(t),
                },
                Output::Backend(req) => self.core_backend(req),
                Output::Resolve(q) => self.core_resolve(q),
                Output::Connect(c) => self.core_connect(c),
                Output::Close { conn } => self.core_close(conn.0),
                Output::Event(e) => self.core_event(&e),
                Output::Timeout(at) => {
                    self.core_deadline = at;
                    return;
                }
            }
        }
    }

    fn check_leak(&mut self, what: &str, bytes: &[u8]) {
        if self.secrets.leaks(bytes) {
            self.findings
                .push(Invariant::PasswordLeak, format!("a password in {what}"));
        }
    }

    pub(super) fn traced(&mut self, ev: TraceEvent<'_>) {
        let at = self.clock.elapsed();
        if let Some(line) = self.trace.record(at, ev) {
            if self.secrets.leaks(line.as_bytes()) {
                self.findings
                    .push(Invariant::PasswordLeak, "a password in a trace line");
            }
        }
    }

    fn core_transmit(&mut self, t: Transmit) {
        self.stats.sip_datagrams += 1;
        self.check_leak("a datagram", &t.payload);
        if let Some(peer) = self.peers.at(t.remote) {
            self.core_to_peer(peer, &t.payload);
            return;
        }
        let Some(&index) = self.by_addr.get(&t.remote) else {
            let fate = Fate::Blocked;
            self.traced(TraceEvent::Sip {
                from: "trunkline",
                to: "nowhere",
                bytes: &t.payload,
                fate: &fate,
            });
            return;
        };
        let now = self.clock.now();
        self.register
            .on_transmit(&mut self.findings, now, now, index, &t.payload, None);
        if let Some(m) = crate::check::wire::scan(&t.payload) {
            self.stream_checks
                .on_message(&mut self.findings, index, &m, false);
        }
        if let Some(j) = self.journal.as_mut() {
            j.transmit(self.clock.offset_of(now), index, &t.payload);
        }
        if t.payload.starts_with(b"REGISTER ") {
            self.work.registers += 1;
        }
        let fate = match self.links.get(index) {
            Some(link) => link.send(Direction::ToPeer, &mut self.net_rng),
            None => Fate::Blocked,
        };
        if self.trace.is_on() {
            let name = registrar_name(index);
            self.traced(TraceEvent::Sip {
                from: "trunkline",
                to: &name,
                bytes: &t.payload,
                fate: &fate,
            });
        }
        if let Fate::Arrives(delays) = fate {
            for d in delays {
                self.queue.push(
                    now + d,
                    Pending::ToRegistrar {
                        index,
                        bytes: t.payload.clone(),
                    },
                );
            }
        }
    }

    pub(super) fn deliver_to_registrar(&mut self, index: usize, bytes: &[u8]) {
        let now = self.clock.now();
        let out = match self.registrars.get_mut(index) {
            Some(r) => r.handle_datagram(now, CORE_ADDR, bytes),
            None => Vec::new(),
        };
        self.after_registrar(index, out);
    }

    /// Sends a registrar's datagrams, records its lapses, tracks its deadline.
    pub(super) fn after_registrar(&mut self, index: usize, out: Vec<(SocketAddr, Vec<u8>)>) {
        for (to, bytes) in out {
            if let Some(conn) = self.stream_of(to) {
                self.stream_from_registrar(index, conn, bytes);
                continue;
            }
            let fate = if to == CORE_ADDR {
                match self.links.get(index) {
                    Some(link) => link.send(Direction::FromPeer, &mut self.net_rng),
                    None => Fate::Blocked,
                }
            } else {
                Fate::Blocked
            };
            self.towards_core(|| registrar_name(index), registrar_addr(index), bytes, fate);
        }
        let lapses = self
            .registrars
            .get_mut(index)
            .map(|r| r.take_lapses())
            .unwrap_or_default();
        for lapse in lapses {
            if self.trace.is_on() {
                let name = registrar_name(index);
                self.traced(TraceEvent::Lapse {
                    registrar: &name,
                    aor: &lapse.binding.aor,
                    call_id: &lapse.binding.call_id,
                });
            }
            let mut healthy = self.healthy_since.get(index).copied().flatten();
            let contact = lapse.binding.contact.as_str();
            if contact.contains(";transport=tcp") || contact.contains(";transport=tls") {
                // Reached over a connection: its listener must have been healthy too.
                let listener = self.streams.ok_since.get(index).copied().flatten();
                healthy = healthy.zip(listener).map(|(a, b)| a.max(b));
            }
            self.register.on_lapse(
                &mut self.findings,
                index,
                &lapse.binding,
                healthy,
                self.shutdown_started.is_some(),
            );
        }
        self.update_registrar_deadline(index);
    }

    /// Traces a datagram from a model (`name`, at `from`) towards the core and queues
    /// the copies the network lets through.
    pub(super) fn towards_core(
        &mut self,
        name: impl FnOnce() -> String,
        from: SocketAddr,
        bytes: Vec<u8>,
        fate: Fate,
    ) {
        if self.trace.is_on() {
            let name = name();
            self.traced(TraceEvent::Sip {
                from: &name,
                to: "trunkline",
                bytes: &bytes,
                fate: &fate,
            });
        }
        let now = self.clock.now();
        if let Fate::Arrives(delays) = fate {
            for d in delays {
                let bytes = bytes.clone();
                self.queue.push(now + d, Pending::ToCore { from, bytes });
            }
        }
    }

    pub(super) fn update_registrar_deadline(&mut self, index: usize) {
        let next = self.registrars.get(index).and_then(|r| r.poll_timeout());
        track_deadline(
            &mut self.registrar_deadline,
            &mut self.registrar_deadlines,
            index,
            next,
        );
    }

    pub(super) fn deliver_to_core(&mut self, from: SocketAddr, bytes: Vec<u8>) {
        let now = self.clock.now();
        self.register.on_deliver(now, &bytes);
        self.peer_datagram_arrives(from, &bytes);
        self.core.handle_input(
            now,
            Input::Datagram {
                local: CORE_ADDR,
                remote: from,
                payload: bytes,
            },
        );
        self.drain();
    }

    fn core_backend(&mut self, req: BackendRequest) {
        self.stats.backend_requests += 1;
        let now = self.clock.now();
        self.check_leak("a backend request", format!("{req:?}").as_bytes());
        if let BackendOp::ReportStatus { .. } = req.op {
            self.work.reports += 1;
            let body = sip_core::backend::http::http_call(&req.op)
                .body
                .unwrap_or_default();
            self.check_leak("a PATCH body", &body);
        }
        self.backend_checks
            .on_request(&mut self.findings, now, &req);
        let fate = self.backend_link.send(Direction::ToPeer, &mut self.net_rng);
        self.traced(TraceEvent::BackendRequest {
            op: &req.op,
            fate: &fate,
        });
        if let Some(j) = self.journal.as_mut() {
            j.request(self.clock.offset_of(now), &req);
        }
        // HTTP runs over TCP: a duplicated segment is not a duplicated request.
        let delay = match &fate {
            Fate::Arrives(delays) => delays.first().copied(),
            Fate::Lost | Fate::Blocked => None,
        };
        match delay {
            Some(d) => self.queue.push(
                now + d,
                Pending::BackendArrives {
                    id: req.id,
                    op: req.op,
                },
            ),
            None => self.backend_checks.never_arrives(req.id),
        }
    }

    pub(super) fn backend_arrives(&mut self, id: RequestId, op: &BackendOp) {
        let now = self.clock.now();
        let reply = self.backend.handle(now, op);
        let stored = match (op, &reply) {
            (
                BackendOp::ReportStatus {
                    provider_id,
                    report,
                },
                BackendReply::Delivered,
            ) => {
                if let Some(j) = self.journal.as_mut() {
                    j.stored(self.clock.offset_of(now), id, provider_id, report);
                }
                true
            }
            _ => false,
        };
        self.backend_checks
            .on_arrival(&mut self.findings, id, stored);
        let delay = self.backend.response_delay();
        let fate = self
            .backend_link
            .send(Direction::FromPeer, &mut self.net_rng);
        let about = match op {
            BackendOp::FetchProviders
            | BackendOp::FetchConfig
            | BackendOp::LookupDestination { .. } => None,
            BackendOp::ReportStatus { provider_id, .. } => Some(provider_id.as_str()),
        };
        if self.trace.is_on() {
            let about = about.map(str::to_owned);
            self.traced(TraceEvent::BackendReply {
                about: about.as_deref(),
                reply: &reply,
                fate: &fate,
            });
        }
        if let Fate::Arrives(delays) = fate {
            if let Some(d) = delays.first() {
                self.queue
                    .push(now + delay + *d, Pending::BackendReply { id, reply });
            }
        }
    }

    pub(super) fn backend_reply(&mut self, id: RequestId, reply: BackendReply) {
        let now = self.clock.now();
        // Only a provider list needs the previous one (cloning it per PATCH reply would
        // make the run quadratic in the number of providers).
        let previous = match reply {
            BackendReply::Providers(_) => self
                .backend_checks
                .last_list()
                .map(<[ProviderSpec]>::to_vec),
            _ => None,
        };
        let accepted = self.backend_checks.on_reply(now, id, &reply);
        if let Some(j) = self.journal.as_mut() {
            j.answer(
                self.clock.offset_of(now),
                id,
                &reply,
                accepted == Accepted::Late,
            );
        }
        if let (Accepted::List { .. }, BackendReply::Providers(list)) = (&accepted, &reply) {
            // By id, so a list of ten thousand is diffed in n·log n, not n².
            let before: BTreeMap<&str, &ProviderSpec> = previous
                .iter()
                .flatten()
                .map(|s| (s.id.as_str(), s))
                .collect();
            let now_listed: BTreeSet<&str> = list.iter().map(|s| s.id.as_str()).collect();
            for spec in list {
                if before.get(spec.id.as_str()) != Some(&spec) {
                    self.register.allow_call_change(&spec.id);
                }
                let active = spec.validate().is_ok_and(|p| p.enabled);
                self.register.set_active(&spec.id, active);
            }
            for id in before.keys() {
                if !now_listed.contains(id) {
                    self.register.set_active(id, false);
                }
            }
        }
        let timers_before = self.core.timer_count();
        self.work = Default::default();
        self.core.handle_input(now, Input::Backend { id, reply });
        self.drain();
        if accepted == (Accepted::List { unchanged: true }) {
            let w = self.work;
            let timers_after = self.core.timer_count();
            if w.registers > 0 || w.reports > 0 || w.changes > 0 || timers_after > timers_before {
                self.findings.push(
                    Invariant::ResyncCausedWork,
                    format!(
                        "unchanged list caused {} REGISTER(s), {} report(s), {} status change(s), timers {timers_before} -> {timers_after}",
                        w.registers, w.reports, w.changes
                    ),
                );
            }
        }
    }

    fn core_resolve(&mut self, q: ResolveQuery) {
        let now = self.clock.now();
        let ip = self.dns.get(&q.host).copied().or_else(|| {
            q.host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
        });
        let result = match ip {
            Some(ip) => Ok(Resolution {
                addrs: vec![ip],
                local_ip: Some(CORE_ADDR.ip()),
            }),
            None => Err(format!("{}: no such host", q.host)),
        };
        self.queue
            .push(now + DNS_DELAY, Pending::DnsAnswer { id: q.id, result });
    }

    fn core_event(&mut self, e: &Event) {
        self.check_leak("an event", format!("{e:?}").as_bytes());
        if let Some(j) = self.journal.as_mut() {
            j.event(self.clock.elapsed(), e);
        }
        match e {
            Event::RegistrationChanged(_) => self.work.changes += 1,
            Event::ShutdownComplete if self.shutdown_completed.is_none() => {
                self.shutdown_completed = Some(self.clock.now());
            }
            _ => {}
        }
        self.traced(TraceEvent::Event(e));
    }
}

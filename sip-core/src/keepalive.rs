//! OPTIONS keep-alives to UDP registrars (`SIP_KEEPALIVE_INTERVAL`, CONTRACT.md §7).
//!
//! A NAT forgets a UDP mapping after 30 s to a few minutes of silence, long before a
//! binding of an hour is refreshed; the provider's INVITEs for that binding are then
//! dropped at the NAT. So every interval each UDP registrar that holds a binding of
//! ours gets one OPTIONS from our SIP socket (one per registrar address, however many
//! accounts it holds), which keeps the mapping open and tells a registrar that stopped
//! answering long before the next refresh would: it is announced once per outage
//! ([`Event::KeepaliveUnanswered`]) and again when it answers. Any answer counts: a
//! registrar may refuse OPTIONS (405) and still be alive. TCP and TLS connections have
//! CRLF pings of their own ([`crate::connections`]).

use crate::ctx::Ctx;
use crate::io::Event;
use crate::message::MessageBuilder;
use crate::time::TimerKey;
use crate::transaction::{Owner, TxnEvent};
use crate::transport::{Link, Transport};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The keep-alive state of the core.
#[derive(Debug, Default)]
pub struct Keepalives {
    /// The OPTIONS transaction in flight per registrar.
    in_flight: BTreeMap<u64, SocketAddr>,
    /// Registrars whose last keep-alive went unanswered.
    silent: BTreeSet<SocketAddr>,
}

impl Keepalives {
    /// Arms the first round, `every` from `now`.
    pub fn start(now: Instant, ctx: &mut Ctx, every: Option<Duration>) {
        if let Some(every) = every {
            ctx.timers.set(TimerKey::Keepalive, now + every);
        }
    }

    /// A round: one OPTIONS to each of `targets` (registrar address and our
    /// `host:port` towards it) without one in flight already; the next round armed.
    pub fn round(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        every: Duration,
        targets: impl IntoIterator<Item = (SocketAddr, String)>,
    ) {
        ctx.timers.set(TimerKey::Keepalive, now + every);
        let busy: BTreeSet<SocketAddr> = self.in_flight.values().copied().collect();
        for (target, local) in targets {
            if busy.contains(&target) {
                continue;
            }
            let branch = ctx.ids.branch();
            let target_host = match target {
                SocketAddr::V4(v4) => v4.to_string(),
                SocketAddr::V6(v6) => v6.to_string(),
            };
            let options = MessageBuilder::request("OPTIONS", &format!("sip:{target_host}"))
                .header("Via", Transport::Udp.via(&local, &branch))
                .header("Max-Forwards", "70")
                .header(
                    "From",
                    format!("<sip:trunkline@{local}>;tag={}", ctx.ids.tag()),
                )
                .header("To", format!("<sip:{target_host}>"))
                .header("Call-ID", ctx.ids.call_id())
                .header("CSeq", "1 OPTIONS")
                .header("User-Agent", ctx.cfg.user_agent.clone())
                .to_bytes();
            let link = Link::udp(target);
            let id = ctx.txns.start(
                now,
                &ctx.cfg.timers,
                &mut ctx.timers,
                Owner::Keepalive,
                branch,
                "OPTIONS",
                link,
                options.clone(),
            );
            self.in_flight.insert(id, target);
            ctx.stats.keepalives_sent += 1;
            ctx.transmit(link, options);
        }
    }

    /// What keep-alive transaction `id` reports: any final answer is life, a timeout
    /// (Timer F) silence.
    pub fn on_txn(&mut self, ctx: &mut Ctx, id: u64, event: &TxnEvent) {
        let answered = match event {
            TxnEvent::Final(_) => true,
            TxnEvent::Timeout | TxnEvent::TransportError(_) => false,
            TxnEvent::Provisional(_) | TxnEvent::NoAck => return,
        };
        let Some(target) = self.in_flight.remove(&id) else {
            return;
        };
        let registrar = target.to_string();
        if answered {
            if self.silent.remove(&target) {
                ctx.emit(Event::KeepaliveAnswered { registrar });
            }
        } else if self.silent.insert(target) {
            ctx.emit(Event::KeepaliveUnanswered { registrar });
        }
    }
}

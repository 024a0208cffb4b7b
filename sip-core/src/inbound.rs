//! Requests to us, dispatched: what belongs to a call (a new INVITE admitted by
//! `b2bua::admission`, a CANCEL, a request inside a call's dialog, the ACK of a 2xx)
//! goes to the B2BUA ([`Calls`]); the rest we answer ourselves as a registered UA
//! must: OPTIONS keep-alives with 200, an INVITE from an unknown source with 403 (or
//! nothing with `SIP_REJECT_UNKNOWN=drop`), a request for no dialog of ours with 481,
//! an unknown method with 501.

use crate::b2bua::admission::Admission;
use crate::b2bua::calls::{Calls, NewCall};
use crate::b2bua::uri::{host_with_port, join_host_port};
use crate::config::RejectUnknown;
use crate::ctx::Ctx;
use crate::io::Event;
use crate::message::{self, Request};
use crate::registry::Registry;
use crate::routing::RouteLookups;
use crate::transaction::{Arrival, Room, ServerStep};
use crate::transport::Link;
use crate::triage::Dropped;
use std::net::SocketAddr;
use std::time::Instant;

/// The outcome label of calls refused because they came from no provider.
pub const REFUSED_UNKNOWN_SOURCE: &str = "refused_unknown_source";

/// What a request needs beside the core's services: who the providers are, the calls
/// and the routes.
pub struct Dispatch<'a> {
    pub providers: &'a Registry,
    pub calls: &'a mut Calls,
    pub routing: &'a mut RouteLookups,
}

/// Answers `req` that came on `from` (to our address `local`) as `received` bytes, or
/// hands it to its call.
///
/// On UDP the answer goes to a source address anyone can forge, so it is never larger
/// than the `received` bytes: when it would be, it goes without the optional
/// Allow/Accept/User-Agent, and when even that is larger it is dropped (counted). A
/// stream's peer finished a handshake with us: no such limit there.
///
/// Requests go through server transactions first (RFC 3261 §17.2): a retransmission
/// gets the response already sent, byte for byte (same To-tag), and the ACK to a non-2xx
/// final is absorbed there; a request without a magic-cookie branch (RFC 2543) gets
/// `400`, without a transaction.
pub fn answer(
    now: Instant,
    ctx: &mut Ctx,
    to: Dispatch<'_>,
    from: Link,
    local: SocketAddr,
    req: &Request,
    received: usize,
) {
    let remote = from.remote;
    let Dispatch {
        providers,
        calls,
        routing,
    } = to;
    if let Some(name) = missing_header(req) {
        // No transaction or dialog can be named without it (RFC 3261 §8.1.1): a
        // stateless 400 that says which, and never a call (found by the controller
        // fuzzer: an INVITE without Call-ID became a call with an empty one).
        if req.method != "ACK" {
            let reason = format!("Bad Request: no {name} header");
            reply(now, ctx, None, from, req, received, 400, &reason);
        }
        return;
    }
    let timers = ctx.cfg.timers;
    // Only at the cap does it matter whether the request is for a call we hold (one
    // look-up, skipped otherwise).
    let room = if ctx.txns.servers_full() && calls.holds(req) {
        Room::Call
    } else {
        Room::Shared
    };
    let arrival = Arrival { from, room };
    let step = ctx
        .txns
        .on_request(now, &timers, &mut ctx.timers, req, arrival);
    let stateless = matches!(step, ServerStep::Stateless);
    let txn = match step {
        ServerStep::Absorbed(actions) => {
            ctx.send_all(actions);
            return;
        }
        ServerStep::Ack { .. } => {
            calls.on_ack(now, ctx, req);
            return;
        }
        ServerStep::NotRfc3261 if req.method == "ACK" => return,
        ServerStep::NotRfc3261 => None,
        ServerStep::Stateless => {
            ctx.stats.stateless_answers += 1;
            None
        }
        ServerStep::New { id, actions, .. } => {
            if req.method == "CANCEL" && calls.on_cancel(now, ctx, id, req) {
                return;
            }
            if req.headers.to_tag().is_some() && calls.on_in_dialog(now, ctx, id, from, req) {
                return;
            }
            if req.method == "INVITE" && req.headers.to_tag().is_none() {
                if let Some(provider) = admitted(ctx, providers, req, remote) {
                    // The 100 Trying, at once: the route lookup may take a while.
                    ctx.send_all(actions);
                    let local = caller_local(ctx, from, local, provider.as_ref());
                    let new = NewCall {
                        txn: id,
                        request: req,
                        source: from,
                        local,
                        provider,
                    };
                    calls.on_invite(now, ctx, routing, new);
                    return;
                }
            }
            // Answered in the same instant: no 100 Trying.
            Some(id)
        }
    };
    let (status, reason) = match req.method.as_str() {
        _ if txn.is_none() && !stateless => {
            (400, "Bad Request: top Via branch must start with z9hG4bK")
        }
        "ACK" => return,
        _ if req.headers.cseq_out_of_range() => (400, "Bad CSeq: must be below 2^31"),
        "OPTIONS" => (200, "OK"),
        // Overload (RFC 3261 §21.5.4): the INVITE was not judged, so it must not be
        // counted or answered as a stranger's; the caller may try another server.
        "INVITE" if stateless => (503, "Service Unavailable: too many transactions"),
        "INVITE" if req.headers.to_tag().is_some() => (481, "Call/Transaction Does Not Exist"),
        "INVITE" => {
            // Admission said no (a provider's INVITE became a call above).
            *ctx.stats.calls.entry(REFUSED_UNKNOWN_SOURCE).or_default() += 1;
            let drop = ctx.cfg.calls.reject_unknown == RejectUnknown::Drop;
            let what = if drop { "dropped" } else { "answered 403" };
            // The drop logger keeps these to a bounded rate (a scanner sends many).
            ctx.emit(Event::MessageDropped {
                remote,
                reason: format!(
                    "INVITE from no provider's address and no SIP_ALLOWED_SOURCES entry: {what}"
                ),
            });
            if drop {
                if let Some(id) = txn {
                    ctx.txns.abandon(id, &mut ctx.timers);
                }
                return;
            }
            (403, "Forbidden")
        }
        "BYE" | "CANCEL" | "UPDATE" | "INFO" | "REFER" | "NOTIFY" | "PRACK" => {
            (481, "Call/Transaction Does Not Exist")
        }
        _ if req.headers.to_tag().is_some() => (481, "Call/Transaction Does Not Exist"),
        _ => (501, "Not Implemented"),
    };
    reply(now, ctx, txn, from, req, received, status, reason);
}

/// The first header every request must carry (RFC 3261 §8.1.1) that `req` lacks.
/// (Via is checked by the parser; Max-Forwards is optional for us to receive.)
fn missing_header(req: &Request) -> Option<&'static str> {
    let h = &req.headers;
    [
        ("Call-ID", h.call_id().is_none()),
        ("From", h.get("From").is_none()),
        ("To", h.get("To").is_none()),
        ("CSeq", h.get("CSeq").is_none()),
    ]
    .into_iter()
    .find_map(|(name, missing)| missing.then_some(name))
}

/// Our answer to `req` with `status`, through its server transaction `txn` when it
/// has one, else straight back on `from`; on UDP never larger than the request was.
#[allow(clippy::too_many_arguments)]
fn reply(
    now: Instant,
    ctx: &mut Ctx,
    txn: Option<u64>,
    from: Link,
    req: &Request,
    received: usize,
    status: u16,
    reason: &str,
) {
    let tag = ctx.ids.tag();
    let minimal = message::response_to(req, status, reason, Some(&tag));
    let mut full = minimal.clone();
    if status == 200 {
        full = full
            .header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
            .header("Accept", "application/sdp");
    }
    let full = full
        .header("User-Agent", ctx.cfg.user_agent.clone())
        .to_bytes();
    // Only a datagram's source can be forged: a stream has no amplification limit.
    let limit = if from.is_reliable() {
        usize::MAX
    } else {
        received
    };
    let bytes = if full.len() <= limit {
        full
    } else {
        minimal.to_bytes()
    };
    if bytes.len() > limit {
        *ctx.stats
            .dropped
            .entry(Dropped::Amplification.label())
            .or_default() += 1;
        if let Some(id) = txn {
            ctx.txns.abandon(id, &mut ctx.timers);
        }
        return;
    }
    // Responses go back to the source address and port (RFC 3581 symmetric response):
    // the transaction sends it and keeps it for retransmissions.
    match txn {
        Some(id) => {
            ctx.respond(now, id, status, bytes);
        }
        None => ctx.transmit(from, bytes),
    }
}

/// The provider an INVITE comes from, if admission lets it in (`Some(None)`: from a
/// provider's address or an allowed source, but no one provider can be named).
fn admitted(
    ctx: &Ctx,
    providers: &Registry,
    req: &Request,
    remote: SocketAddr,
) -> Option<Option<crate::b2bua::call::CallerProvider>> {
    let to_user = req
        .headers
        .get("To")
        .and_then(message::header_uri)
        .and_then(crate::b2bua::admission::uri_user);
    let allowed = &ctx.cfg.calls.allowed_sources;
    match providers.admit(&req.uri, to_user, remote.ip(), allowed) {
        Admission::Unknown => None,
        Admission::Provider(slot) => Some(providers.caller_provider(slot)),
        Admission::Unattributed => Some(None),
    }
}

/// Our `host:port` towards a caller: the configured public address, else the NAT's
/// public address its provider's registrar saw us at, else the socket's own address
/// when bound to one, else ours towards that registrar (else learnt from the
/// destination's side, see `b2bua::call`).
fn caller_local(
    ctx: &Ctx,
    from: Link,
    local: SocketAddr,
    provider: Option<&crate::b2bua::call::CallerProvider>,
) -> Option<String> {
    let port = ctx.cfg.listen_port(from.flow.transport());
    if let Some(host) = &ctx.cfg.contact_host {
        return Some(host_with_port(host, port));
    }
    if let Some(public) = provider.and_then(|p| p.public) {
        return Some(public.to_string());
    }
    if !local.ip().is_unspecified() {
        return Some(join_host_port(local.ip(), port));
    }
    provider
        .and_then(|p| p.local_ip)
        .map(|ip| join_host_port(ip, port))
}

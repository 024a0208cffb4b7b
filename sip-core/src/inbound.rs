//! Requests to us. Calls are the B2BUA's (being built); until they are bridged we
//! answer what a registered UA must: OPTIONS keep-alives with 200, an INVITE from a
//! provider as not available, and an INVITE from anywhere else as the admission rule
//! says (`b2bua::admission`: 403, or nothing with `SIP_REJECT_UNKNOWN=drop`).

use crate::b2bua::admission::Admission;
use crate::config::RejectUnknown;
use crate::ctx::Ctx;
use crate::io::Event;
use crate::message::{self, Request};
use crate::registry::Registry;
use crate::transaction::{ServerStep, TxnAction};
use crate::triage::Dropped;
use std::net::SocketAddr;
use std::time::Instant;

/// The outcome label of calls refused because they came from no provider.
pub const REFUSED_UNKNOWN_SOURCE: &str = "refused_unknown_source";

/// Answers `req` from `remote`, which arrived as `received` bytes.
///
/// The answer goes to a source address anyone can forge, so it is never larger than
/// the `received` bytes: when it would be, it goes without the optional
/// Allow/Accept/User-Agent, and when even that is larger it is dropped (counted).
///
/// Requests go through server transactions first (RFC 3261 §17.2): a retransmission
/// gets the response already sent, byte for byte (same To-tag), and the ACK to a non-2xx
/// final is absorbed there; a request without a magic-cookie branch (RFC 2543) gets
/// `400`, without a transaction.
pub fn answer(
    now: Instant,
    ctx: &mut Ctx,
    providers: &Registry,
    remote: SocketAddr,
    req: &Request,
    received: usize,
) {
    let timers = ctx.cfg.timers;
    let step = ctx
        .txns
        .on_request(now, &timers, &mut ctx.timers, req, remote, false);
    let stateless = matches!(step, ServerStep::Stateless);
    let txn = match step {
        ServerStep::Absorbed(actions) => {
            send_all(ctx, actions);
            return;
        }
        ServerStep::Ack { .. } => return,
        ServerStep::NotRfc3261 if req.method == "ACK" => return,
        ServerStep::NotRfc3261 => None,
        ServerStep::Stateless => {
            ctx.stats.stateless_answers += 1;
            None
        }
        // An INVITE's 100 Trying is not sent: the final goes out in the same instant.
        ServerStep::New { id, .. } => Some(id),
    };
    let (status, reason) = match req.method.as_str() {
        _ if txn.is_none() && !stateless => {
            (400, "Bad Request: top Via branch must start with z9hG4bK")
        }
        "ACK" => return,
        _ if req.headers.cseq_out_of_range() => (400, "Bad CSeq: must be below 2^31"),
        "OPTIONS" => (200, "OK"),
        "INVITE" => {
            let to_user = req
                .headers
                .get("To")
                .and_then(message::header_uri)
                .and_then(crate::b2bua::admission::uri_user);
            let allowed = &ctx.cfg.calls.allowed_sources;
            match providers.admit(&req.uri, to_user, remote.ip(), allowed) {
                Admission::Unknown => {
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
                Admission::Provider(_) | Admission::Unattributed => {
                    *ctx.stats.calls.entry("unavailable").or_default() += 1;
                    (480, "Temporarily Unavailable")
                }
            }
        }
        "BYE" | "CANCEL" => (481, "Call/Transaction Does Not Exist"),
        _ => (501, "Not Implemented"),
    };
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
    let bytes = if full.len() <= received {
        full
    } else {
        minimal.to_bytes()
    };
    if bytes.len() > received {
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
            let actions = ctx
                .txns
                .respond(now, &timers, &mut ctx.timers, id, status, bytes);
            send_all(ctx, actions);
        }
        None => ctx.transmit(remote, bytes),
    }
}

/// Sends what a server transaction asks to send (its owner, the core, needs no notice).
fn send_all(ctx: &mut Ctx, actions: Vec<TxnAction>) {
    for action in actions {
        if let TxnAction::Send {
            remote, payload, ..
        } = action
        {
            ctx.transmit(remote, payload);
        }
    }
}

//! Requests to us. Calls are the B2BUA's (being built); until they are bridged we
//! answer what a registered UA must: OPTIONS keep-alives with 200, an INVITE from a
//! provider as not available, and an INVITE from anywhere else as the admission rule
//! says (`b2bua::admission`: 403, or nothing with `SIP_REJECT_UNKNOWN=drop`).

use crate::b2bua::admission::{Admission, ProviderIndex};
use crate::config::RejectUnknown;
use crate::ctx::Ctx;
use crate::io::Event;
use crate::message::{self, Request};
use crate::triage::Dropped;
use std::net::SocketAddr;

/// The outcome label of calls refused because they came from no provider.
pub const REFUSED_UNKNOWN_SOURCE: &str = "refused_unknown_source";

/// Answers `req` from `remote`, which arrived as `received` bytes.
///
/// The answer goes to a source address anyone can forge, so it is never larger than
/// the `received` bytes: when it would be, it goes without the optional
/// Allow/Accept/User-Agent, and when even that is larger it is dropped (counted).
pub fn answer(
    ctx: &mut Ctx,
    providers: &ProviderIndex,
    remote: SocketAddr,
    req: &Request,
    received: usize,
) {
    let (status, reason) = match req.method.as_str() {
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
        return;
    }
    // Responses go back to the source address and port (RFC 3581 symmetric response).
    ctx.transmit(remote, bytes);
}

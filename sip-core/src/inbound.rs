//! Requests to us. Calls are the B2BUA's (a later module); until then we answer what a
//! registered UA must: OPTIONS keep-alives with 200, the rest as not available.

use crate::ctx::Ctx;
use crate::message::{self, Request};
use crate::triage::Dropped;
use std::net::SocketAddr;

/// Answers `req` from `remote`, which arrived as `received` bytes.
///
/// The answer goes to a source address anyone can forge, so it is never larger than
/// the `received` bytes: when it would be, it goes without the optional
/// Allow/Accept/User-Agent, and when even that is larger it is dropped (counted).
pub fn answer(ctx: &mut Ctx, remote: SocketAddr, req: &Request, received: usize) {
    let (status, reason) = match req.method.as_str() {
        "ACK" => return,
        _ if req.headers.cseq_out_of_range() => (400, "Bad CSeq: must be below 2^31"),
        "OPTIONS" => (200, "OK"),
        "INVITE" => (480, "Temporarily Unavailable"),
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

//! A 2xx to our INVITE that opens a dialog the call does not use: a second fork
//! answering after the first (RFC 3261 §13.2.2.4), or any 2xx that arrives after the
//! call has ended (the INVITE client transaction passes every 2xx on until Timer M,
//! RFC 6026 §7.2). The UAC core must ACK each 2xx; a B2BUA bridges one dialog per call,
//! so each such dialog is ACKed and at once hung up with a BYE. Left alone, the callee
//! would resend its 2xx for 64·T1 and hold a call nobody is on.

use super::dialog::Dialog;
use crate::ctx::Ctx;
use crate::message::Response;
use crate::transaction::Owner;
use std::net::SocketAddr;
use std::time::Instant;

/// Forks a call hangs up and remembers (to resend their ACK when their 2xx comes
/// again); beyond this many a further fork's 2xx is still ACKed and hung up, only
/// its retransmissions get a fresh ACK and BYE each time.
pub const MAX_FORKS: usize = 4;

/// A fork we ACKed and hung up: its To tag, where its ACK went, the ACK.
#[derive(Debug, Clone)]
pub struct EndedFork {
    tag: String,
    next_hop: SocketAddr,
    ack: Vec<u8>,
}

/// The forks of one call that were hung up.
#[derive(Debug, Clone, Default)]
pub struct Forks(Vec<EndedFork>);

impl Forks {
    /// A 2xx from the fork `dialog` (built from our INVITE and that 2xx): its ACK again
    /// when the fork is known, else ACK and BYE, remembered.
    pub fn on_answer(&mut self, now: Instant, ctx: &mut Ctx, dialog: Dialog, resp: &Response) {
        let tag = resp.headers.to_tag().unwrap_or_default();
        if let Some(known) = self.0.iter().find(|f| f.tag == tag) {
            ctx.transmit(known.next_hop, known.ack.clone());
            return;
        }
        let (next_hop, ack) = ack_and_bye(now, ctx, dialog, resp);
        if self.0.len() < MAX_FORKS {
            self.0.push(EndedFork {
                tag: tag.to_owned(),
                next_hop,
                ack,
            });
        }
    }
}

/// ACKs the 2xx that opened `dialog` and sends a BYE in it (in a transaction whose
/// outcome nobody waits for). Returns where the ACK went and the ACK.
fn ack_and_bye(
    now: Instant,
    ctx: &mut Ctx,
    mut dialog: Dialog,
    resp: &Response,
) -> (SocketAddr, Vec<u8>) {
    let cseq = resp.headers.cseq().map_or(1, |(n, _)| n);
    let ack = dialog
        .request_with_cseq("ACK", &ctx.ids.branch(), cseq)
        .to_bytes();
    let to = dialog.next_hop;
    ctx.transmit(to, ack.clone());
    let branch = ctx.ids.branch();
    let bye = dialog.request("BYE", &branch).to_bytes();
    ctx.txns.start(
        now,
        &ctx.cfg.timers,
        &mut ctx.timers,
        Owner::Detached,
        branch,
        "BYE",
        to,
        bye.clone(),
    );
    ctx.transmit(to, bye);
    ctx.stats.forks_hung_up += 1;
    (to, ack)
}

/// A 2xx to an INVITE of a call that has ended: the dialog is rebuilt from the 2xx
/// alone (our From and Via are in it, the callee's To tag, Contact and Record-Route),
/// then ACKed and hung up. Without an IP address to send to (a Contact by name and no
/// route), nothing can be sent: counted as a stray.
pub fn on_late_answer(now: Instant, ctx: &mut Ctx, resp: &Response) {
    match Dialog::from_answer_alone(resp) {
        Some(dialog) => {
            ack_and_bye(now, ctx, dialog, resp);
        }
        None => ctx.stats.stray_responses += 1,
    }
}

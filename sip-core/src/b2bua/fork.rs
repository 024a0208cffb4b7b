//! A 2xx to our INVITE that opens a dialog the call does not use: a second fork
//! answering after the first (RFC 3261 §13.2.2.4), or any 2xx that arrives after the
//! call has ended (the INVITE client transaction passes every 2xx on until Timer M,
//! RFC 6026 §7.2). The UAC core must ACK each 2xx; a B2BUA bridges one dialog per call,
//! so each such dialog is ACKed and at once hung up with a BYE. Left alone, the callee
//! would resend its 2xx for 64·T1 and hold a call nobody is on.

use super::dialog::Dialog;
use crate::ctx::Ctx;
use crate::keyed::OwnKeyMap;
use crate::message::Response;
use crate::transaction::Owner;
use crate::transport::Link;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Forks a call hangs up and remembers (to resend their ACK when their 2xx comes
/// again); beyond this many a further fork's 2xx is still ACKed and hung up, only
/// its retransmissions get a fresh ACK and BYE each time.
pub const MAX_FORKS: usize = 4;

/// How long a 2xx of an ended dialog can still come: while our INVITE's transaction
/// passes 2xx on (Timer M, 64·T1 with the default T1).
pub const LATE_ANSWER_WINDOW: Duration = Duration::from_secs(32);

/// A fork we ACKed and hung up: its To tag, where its ACK went, the ACK.
#[derive(Debug, Clone)]
pub struct EndedFork {
    tag: String,
    next_hop: Link,
    ack: Vec<u8>,
}

/// The forks of one call that were hung up.
#[derive(Debug, Clone, Default)]
pub struct Forks(Vec<EndedFork>);

impl Forks {
    /// The To tags of the forks hung up.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|f| f.tag.as_str())
    }

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

/// The ACK of `resp`, the 2xx that opened `dialog` (its CSeq number, a branch of its
/// own).
fn ack_of(ctx: &mut Ctx, dialog: &Dialog, resp: &Response) -> Vec<u8> {
    let cseq = resp.headers.cseq().map_or(1, |(n, _)| n);
    dialog
        .request_with_cseq("ACK", &ctx.ids.branch(), cseq)
        .to_bytes()
}

/// ACKs the 2xx that opened `dialog` and sends a BYE in it (in a transaction whose
/// outcome nobody waits for). Returns where the ACK went and the ACK.
fn ack_and_bye(
    now: Instant,
    ctx: &mut Ctx,
    mut dialog: Dialog,
    resp: &Response,
) -> (Link, Vec<u8>) {
    let ack = ack_of(ctx, &dialog, resp);
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

/// The destination dialogs (outbound Call-ID, To tag) of calls that ended in the
/// last [`LATE_ANSWER_WINDOW`]: a 2xx of one of them (resent because our ACK was lost)
/// gets its ACK again and no second BYE. Kept in end order, so expiry is O(1) each.
///
/// Looked up by our own Call-ID (a hash map: the key is ours, see [`OwnKeyMap`]); the
/// callee's tags under it are a short list (one per answering fork).
#[derive(Debug, Default)]
pub struct EndedDialogs {
    order: VecDeque<(Instant, (String, String))>,
    tags: OwnKeyMap<String, Vec<String>>,
}

impl EndedDialogs {
    /// Dialog (`call_id`, `tag`) is over for us from `now` on.
    pub fn insert(&mut self, now: Instant, call_id: &str, tag: &str) {
        self.expire(now);
        if self.contains(call_id, tag) {
            return;
        }
        match self.tags.get_mut(call_id) {
            Some(tags) => tags.push(tag.to_owned()),
            None => {
                self.tags.insert(call_id.to_owned(), vec![tag.to_owned()]);
            }
        }
        self.order
            .push_back((now, (call_id.to_owned(), tag.to_owned())));
    }

    fn contains(&self, call_id: &str, tag: &str) -> bool {
        self.tags
            .get(call_id)
            .is_some_and(|tags| tags.iter().any(|t| t == tag))
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < LATE_ANSWER_WINDOW {
                break;
            }
            let Some((_, (call_id, tag))) = self.order.pop_front() else {
                break;
            };
            if let Some(tags) = self.tags.get_mut(&call_id) {
                tags.retain(|t| *t != tag);
                if tags.is_empty() {
                    self.tags.remove(&call_id);
                }
            }
        }
    }

    /// A 2xx to an INVITE of a call that has ended: the dialog is rebuilt from the 2xx
    /// alone (our From and Via are in it, the callee's To tag, Contact and
    /// Record-Route). A dialog we already hung up gets its ACK again; any other is
    /// ACKed and hung up, and remembered. Without an IP address to send to (a Contact
    /// by name and no route), nothing can be sent: counted as a stray. `came` is
    /// where our INVITE went (and so the flow the 2xx came on).
    pub fn on_late_answer(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response, came: Link) {
        let Some(dialog) = Dialog::from_answer_alone(resp, came) else {
            ctx.stats.stray_responses += 1;
            return;
        };
        self.expire(now);
        let tag = resp.headers.to_tag().unwrap_or_default();
        if self.contains(&dialog.call_id, tag) {
            let ack = ack_of(ctx, &dialog, resp);
            ctx.transmit(dialog.next_hop, ack);
            return;
        }
        let call_id = dialog.call_id.clone();
        ack_and_bye(now, ctx, dialog, resp);
        self.insert(now, &call_id, tag);
    }
}

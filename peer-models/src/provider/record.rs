//! What the provider saw of each call it placed: the statuses with their timestamps,
//! ACKs, retransmissions and how the call ended.

use std::time::Instant;

/// How a call ended, as the provider saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Answered, then the provider hung up (`bye_status`: the answer to its BYE, `None`
    /// when the BYE timed out).
    HungUp {
        /// The status that answered the BYE.
        bye_status: Option<u16>,
    },
    /// Answered, then the far side sent BYE.
    RemoteHangUp,
    /// CANCELled before answer: the INVITE got `487`.
    Cancelled,
    /// A final error (`3xx`–`6xx`, `487` without a CANCEL of ours included).
    Rejected(u16),
    /// Timer B (no response at all) or no final response within 64·T1 of the CANCEL.
    Timeout,
}

/// One response the provider received for its INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSeen {
    /// When it arrived.
    pub at: Instant,
    /// Its status code.
    pub status: u16,
    /// Whether it carried a body (an SDP answer or early media).
    pub with_body: bool,
}

/// What the provider saw of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The call's Call-ID.
    pub call_id: String,
    /// The Request-URI it was sent to.
    pub request_uri: String,
    /// When the first INVITE left.
    pub started_at: Instant,
    /// INVITE responses, in order; a retransmitted final is not listed again.
    pub statuses: Vec<StatusSeen>,
    /// INVITE retransmissions (Timer A).
    pub invite_retransmissions: u32,
    /// ACKs sent (the 2xx's or the non-2xx's, retransmitted finals included).
    pub acks_sent: u32,
    /// When the 2xx came.
    pub answered_at: Option<Instant>,
    /// When the CANCEL left.
    pub cancelled_at: Option<Instant>,
    /// When the BYE left.
    pub bye_sent_at: Option<Instant>,
    /// Requests the far side sent in the dialog: (when, method).
    pub requests_received: Vec<(Instant, String)>,
    /// When the call ended.
    pub ended_at: Option<Instant>,
    /// How it ended; `None` while in progress.
    pub outcome: Option<CallOutcome>,
}

impl CallRecord {
    /// The last final status of the INVITE (after a challenge answered with
    /// credentials, that of the second INVITE), if one came.
    pub fn final_status(&self) -> Option<u16> {
        self.statuses.iter().map(|s| s.status).rfind(|s| *s >= 200)
    }

    /// Whether the INVITE got this status at some point.
    pub fn saw(&self, status: u16) -> bool {
        self.statuses.iter().any(|s| s.status == status)
    }
}

//! What the LiveKit-like UAS recorded: each initial INVITE (Request-URI, Call-ID,
//! headers, body, the status it got) and its counters.

use std::net::SocketAddr;
use std::time::Instant;

/// One initial INVITE the UAS received (retransmissions not repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteSeen {
    /// When it arrived.
    pub at: Instant,
    /// Where from.
    pub source: SocketAddr,
    /// Its Request-URI.
    pub request_uri: String,
    /// Its Call-ID.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// Every header, in order, canonical names.
    pub headers: Vec<(String, String)>,
    /// Its body (the SDP offer).
    pub body: Vec<u8>,
    /// The status it was finally answered with (`407` for a challenge); `None` until
    /// then, or for ever with [`super::Answer::Never`].
    pub answered: Option<u16>,
}

impl InviteSeen {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Counters, for tests and the demo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveKitStats {
    /// INVITE retransmissions answered from memory.
    pub invite_retransmissions: u64,
    /// `407` challenges sent.
    pub challenges: u64,
    /// Credentials that did not verify (answered `403`).
    pub bad_digest: u64,
    /// 2xx and non-2xx retransmissions sent while waiting for an ACK.
    pub final_retransmissions: u64,
    /// ACKs of a 2xx received.
    pub acks: u64,
    /// 2xx never ACKed within 64·T1 (ended with BYE).
    pub ack_timeouts: u64,
    /// CANCELs that ended a pending INVITE with `487`.
    pub cancelled: u64,
    /// BYEs received in a dialog.
    pub byes_received: u64,
    /// BYEs it sent (own hang-up or ACK timeout).
    pub byes_sent: u64,
    /// re-INVITEs answered.
    pub reinvites: u64,
    /// REFERs answered `202`.
    pub refers: u64,
    /// REFERs it sent (a transfer asked after the ACK).
    pub refers_sent: u64,
    /// The final statuses its REFERs got, in order.
    pub refer_answers: Vec<u16>,
    /// Requests outside any dialog or transaction answered `481`.
    pub unknown: u64,
}

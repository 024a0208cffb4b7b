//! Triage: what a driver should do with a datagram before the core parses it.
//!
//! Under a flood the costly part is the full parse; reading a datagram and looking at
//! its first line is cheap. [`triage`] decides from the source address, the size, the
//! first line and a scan of the header count, with no allocation, so that a driver
//! can read a batch, hand answers from registrars we wait on to the core first, give
//! everything else a bounded share, and drop what cannot be ours without parsing it.
//! It is a pure function of the core's state: the same inputs give the same verdicts.

use crate::message::{self, Peek};
use crate::transaction::Transactions;
use std::net::SocketAddr;

/// The verdict on one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triage {
    /// From a registrar a live transaction waits on, or a request from a provider's
    /// address or an allowed source (where calls come from): hand it to the core first.
    Known,
    /// A request from elsewhere (an OPTIONS ping, a scanner): hand it to the core
    /// within the per-batch budget for unknown sources.
    Unknown,
    /// Cannot be ours or is over a limit: drop it unparsed and count it with
    /// [`Controller::count_dropped`](crate::Controller::count_dropped).
    Drop(Dropped),
}

/// Why a datagram was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dropped {
    /// A CRLF keep-alive (RFC 5626 §3.5.1): nothing to do, counted apart.
    KeepAlive,
    /// Larger than [`message::MAX_MESSAGE_SIZE`].
    TooLarge,
    /// More header lines than [`message::MAX_HEADERS`].
    TooManyHeaders,
    /// More Via values than [`message::MAX_VIAS`].
    TooManyVias,
    /// The first line is neither a request line nor a status line.
    Malformed,
    /// A response from an address no live transaction waits on.
    UnknownSource,
    /// Over the per-batch budget for unknown sources (the driver's verdict).
    OverBudget,
    /// Our answer would have been larger than the request: never amplify towards a
    /// source address anyone can forge.
    Amplification,
    /// A response whose CSeq number is 2^31 or more (RFC 3261 §8.1.1.5): ignored.
    InvalidCseq,
}

impl Dropped {
    /// Every reason, in label order of the metrics page.
    pub const ALL: [Dropped; 9] = [
        Self::KeepAlive,
        Self::TooLarge,
        Self::TooManyHeaders,
        Self::TooManyVias,
        Self::Malformed,
        Self::UnknownSource,
        Self::OverBudget,
        Self::Amplification,
        Self::InvalidCseq,
    ];

    /// The `reason` label of `trunkline_sip_dropped_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::KeepAlive => "keepalive",
            Self::TooLarge => "too_large",
            Self::TooManyHeaders => "too_many_headers",
            Self::TooManyVias => "too_many_vias",
            Self::Malformed => "malformed",
            Self::UnknownSource => "unknown_source",
            Self::OverBudget => "over_budget",
            Self::Amplification => "amplification",
            Self::InvalidCseq => "invalid_cseq",
        }
    }

    fn from_parse_error(e: &message::ParseError) -> Self {
        match e {
            message::ParseError::TooLarge { .. } => Self::TooLarge,
            message::ParseError::TooManyHeaders { .. } => Self::TooManyHeaders,
            message::ParseError::TooManyVias { .. } => Self::TooManyVias,
            _ => Self::Malformed,
        }
    }
}

/// The verdict on `payload` from `remote`, given the live client transactions and
/// whether `remote` is a `caller_source` (a provider's address or an allowed source).
///
/// A response is worth parsing only from an address we sent a request to and still
/// wait on (by IP: a registrar may answer from another port); the first line tells a
/// response apart, so a response from anywhere else costs a look at that line. A
/// request from a caller source goes first too: under a flood from elsewhere a
/// provider's INVITE must not wait in the unknown sources' budget. Every other
/// datagram is scanned for the size, header and Via limits before it is passed.
pub fn triage(
    txns: &Transactions,
    remote: SocketAddr,
    payload: &[u8],
    caller_source: bool,
) -> Triage {
    let kind = match message::peek(payload) {
        Ok(kind) => kind,
        Err(e) => return Triage::Drop(Dropped::from_parse_error(&e)),
    };
    let awaited = txns.awaits(remote.ip());
    let known = match kind {
        Peek::KeepAlive => return Triage::Drop(Dropped::KeepAlive),
        Peek::Response if !awaited => return Triage::Drop(Dropped::UnknownSource),
        Peek::Response => true,
        Peek::Request => awaited || caller_source,
    };
    if let Err(e) = message::check_limits(payload) {
        return Triage::Drop(Dropped::from_parse_error(&e));
    }
    if known {
        Triage::Known
    } else {
        Triage::Unknown
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::config::SipTimers;
    use crate::time::TimerTable;
    use crate::transaction::Owner;
    use std::time::Instant;

    const OK: &[u8] = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\r\n";
    const OPTIONS: &[u8] =
        b"OPTIONS sip:a@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK2\r\n\r\n";

    fn waiting_on(registrar: SocketAddr) -> Transactions {
        let mut txns = Transactions::default();
        txns.start(
            Instant::now(),
            &SipTimers::default(),
            &mut TimerTable::default(),
            Owner::Registration(0),
            "z9hG4bK1".into(),
            "REGISTER",
            crate::transport::Link::udp(registrar),
            Vec::new(),
        );
        txns
    }

    #[test]
    fn responses_only_from_registrars_we_wait_on() {
        let registrar: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let txns = waiting_on(registrar);
        assert_eq!(triage(&txns, registrar, OK, false), Triage::Known);
        // Another port of the same host is still the registrar.
        let other_port: SocketAddr = "192.0.2.1:5080".parse().unwrap();
        assert_eq!(triage(&txns, other_port, OK, false), Triage::Known);
        let stranger: SocketAddr = "198.51.100.7:5060".parse().unwrap();
        assert_eq!(
            triage(&txns, stranger, OK, true),
            Triage::Drop(Dropped::UnknownSource)
        );
        assert_eq!(
            triage(&Transactions::default(), registrar, OK, true),
            Triage::Drop(Dropped::UnknownSource)
        );
        // Requests are passed from anywhere, first when the registrar sends them.
        assert_eq!(triage(&txns, stranger, OPTIONS, false), Triage::Unknown);
        assert_eq!(triage(&txns, registrar, OPTIONS, false), Triage::Known);
        // A provider's address (or an allowed source) sends calls: its requests go first,
        // but a response from it still needs a transaction that waits.
        assert_eq!(triage(&txns, stranger, OPTIONS, true), Triage::Known);
    }

    #[test]
    fn limits_garbage_and_keepalives_are_dropped_unparsed() {
        let txns = Transactions::default();
        let from: SocketAddr = "198.51.100.7:5060".parse().unwrap();
        assert_eq!(
            triage(&txns, from, b"\r\n\r\n", true),
            Triage::Drop(Dropped::KeepAlive)
        );
        assert_eq!(
            triage(&txns, from, b"\x16\x03\x01 garbage\r\n\r\n", true),
            Triage::Drop(Dropped::Malformed)
        );
        let mut dense = OPTIONS.strip_suffix(b"\r\n").unwrap().to_vec();
        dense.extend(b"X: y\r\n".repeat(5000));
        dense.extend(b"\r\n");
        assert_eq!(
            triage(&txns, from, &dense, true),
            Triage::Drop(Dropped::TooManyHeaders)
        );
        let mut vias = b"OPTIONS sip:a SIP/2.0\r\n".to_vec();
        vias.extend(b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK3\r\n".repeat(40));
        vias.extend(b"\r\n");
        assert_eq!(
            triage(&txns, from, &vias, true),
            Triage::Drop(Dropped::TooManyVias)
        );
        let big = vec![b'x'; message::MAX_MESSAGE_SIZE + 1];
        assert_eq!(
            triage(&txns, from, &big, true),
            Triage::Drop(Dropped::TooLarge)
        );
    }
}

//! The few pieces the call models share: RFC 3261 timer values, a timer table, reason
//! phrases and a minimal SDP body. Messages are parsed with `sip_core::message::parse`
//! and built with its `MessageBuilder`, as the registrar model does; every header value
//! is plain formatting here, so the models do not share trunkline's dialog code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 3261 §17 timer base values for one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerValues {
    /// T1, the round-trip estimate (500 ms by default).
    pub t1: Duration,
    /// T2, the cap of non-INVITE and 2xx retransmission intervals (4 s by default).
    pub t2: Duration,
}

impl Default for TimerValues {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

impl TimerValues {
    /// 64·T1: Timers B, F, H and the 2xx give-up.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// The next retransmission interval after `previous`, doubled and capped at T2
    /// (Timers E and G); INVITE requests (Timer A) pass `capped: false`.
    pub fn next_interval(&self, previous: Duration, capped: bool) -> Duration {
        let doubled = previous * 2;
        if capped {
            doubled.min(self.t2)
        } else {
            doubled
        }
    }
}

/// A digest account: the one a challenging UAS checks, or the one a caller answers a
/// challenge with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The expected `username`.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // The password never appears in Debug output, not even a model's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Pending timers of one model, ordered by deadline then by insertion; a fired timer
/// whose state moved on is ignored by its owner (lazy cancellation keeps this simple).
#[derive(Debug, Clone)]
pub struct TimerTable<K> {
    due: BTreeMap<(Instant, u64), K>,
    seq: u64,
}

impl<K> Default for TimerTable<K> {
    fn default() -> Self {
        Self {
            due: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<K> TimerTable<K> {
    /// Schedules `kind` at `at`.
    pub fn schedule(&mut self, at: Instant, kind: K) {
        self.seq += 1;
        self.due.insert((at, self.seq), kind);
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let entry = self.due.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }

    /// How many timers are pending (for boundedness checks).
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

/// The reason phrase the models send with `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        403 => "Forbidden",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Failure",
    }
}

/// A minimal audio SDP (RFC 4566) from `addr`; `version` grows with each new offer or
/// answer of one session, as `o=` requires.
pub fn sdp(addr: SocketAddr, session: u64, version: u32) -> Vec<u8> {
    let ip = addr.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let media_port = addr.port().wrapping_add(10_000).max(1024);
    format!(
        "v=0\r\no=- {session} {version} IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\n\
         t=0 0\r\nm=audio {media_port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=sendrecv\r\n"
    )
    .into_bytes()
}

/// The URI inside `<…>` of a name-addr, or the value up to its first `;` for an
/// addr-spec (`<sip:a@h;transport=udp>;tag=1` → `sip:a@h;transport=udp`).
pub fn addr_uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => value.get(open + 1..close).unwrap_or(""),
        _ => value.split(';').next().unwrap_or("").trim(),
    }
}

/// The branch of a request's top Via.
pub fn top_branch(headers: &sip_core::message::Headers) -> String {
    headers.top_via().and_then(|v| v.branch).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn intervals_double_and_cap_at_t2_only_when_capped() {
        let t = TimerValues::default();
        assert_eq!(
            t.next_interval(Duration::from_secs(2), true),
            Duration::from_secs(4)
        );
        assert_eq!(
            t.next_interval(Duration::from_secs(4), true),
            Duration::from_secs(4)
        );
        assert_eq!(
            t.next_interval(Duration::from_secs(4), false),
            Duration::from_secs(8)
        );
        assert_eq!(t.timeout(), Duration::from_secs(32));
    }

    #[test]
    fn timers_pop_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        table.schedule(t0 + Duration::from_secs(2), "late");
        table.schedule(t0 + Duration::from_secs(1), "a");
        table.schedule(t0 + Duration::from_secs(1), "b");
        assert_eq!(table.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(table.pop_due(t0), None);
        let now = t0 + Duration::from_secs(1);
        assert_eq!(table.pop_due(now), Some("a"));
        assert_eq!(table.pop_due(now), Some("b"));
        assert_eq!(table.pop_due(now), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn addr_uri_reads_both_forms() {
        assert_eq!(
            addr_uri("\"A\" <sip:a@h;transport=udp>;tag=1"),
            "sip:a@h;transport=udp"
        );
        assert_eq!(addr_uri("sip:a@h;tag=1"), "sip:a@h");
    }
}

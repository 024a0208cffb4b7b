//! One batch of received datagrams, sorted by the core's [`Controller::triage`].
//!
//! Both drivers read the SIP socket in batches: they drain it without blocking up to
//! [`MAX_BATCH`] datagrams, offer each to an [`Inbox`], then [`Inbox::deliver_next`]
//! hands the core, one at a time, what came from registrars it waits on (and requests
//! from callers' addresses) first, then at most
//! [`UNKNOWN_BUDGET`] datagrams from anywhere else (at most [`PER_SOURCE_BUDGET`] from
//! any one address), and counts the rest as dropped.
//! A flood from elsewhere then costs a read and a look at the first line per datagram,
//! and cannot delay a registrar's answer by more than one batch. The SIP decisions
//! (what is known, what cannot be ours) are the core's; this only acts on them.

use sip_core::{Controller, Dropped, Input, Triage};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The most datagrams read in one batch.
///
/// 128 datagrams of a flood are read in well under a millisecond, so a batch never
/// holds timers or backend replies back for long, while amortizing a wake-up of the
/// loop over many reads.
pub const MAX_BATCH: usize = 128;

/// The most datagrams of a batch from sources the core does not wait on (requests:
/// OPTIONS pings, later calls) that are handed to the core; the rest are dropped.
///
/// A quarter of a batch: plenty while nothing floods (a batch then holds a datagram or
/// two), and under a flood it bounds the full parses per batch so that the loop keeps
/// reading and answers from registrars keep their place.
pub const UNKNOWN_BUDGET: usize = 32;

/// The most datagrams of a batch from one unknown source IP that are handed to the
/// core, within [`UNKNOWN_BUDGET`].
///
/// A flood usually comes from one address: eight full parses per batch bound what it
/// costs, while four such sources together still fill the budget. (No peer sends us
/// eight requests within one batch, well under a millisecond, in normal operation.)
pub const PER_SOURCE_BUDGET: usize = 8;

/// A received datagram waiting for the core.
#[derive(Debug)]
struct Datagram {
    remote: SocketAddr,
    payload: Vec<u8>,
}

/// The datagrams of one batch, sorted by the core's verdict.
#[derive(Debug, Default)]
pub struct Inbox {
    known: VecDeque<Datagram>,
    unknown: VecDeque<Datagram>,
    dropped: BTreeMap<Dropped, u64>,
    /// Datagrams kept per unknown source IP in this batch (a few entries: a list).
    per_source: Vec<(IpAddr, usize)>,
    read: usize,
}

impl Inbox {
    /// Whether the batch holds [`MAX_BATCH`] datagrams: stop reading, deliver.
    pub fn full(&self) -> bool {
        self.read >= MAX_BATCH
    }

    /// How many datagrams were offered since the last delivery.
    pub fn len(&self) -> usize {
        self.read
    }

    /// Whether nothing was offered since the last delivery.
    pub fn is_empty(&self) -> bool {
        self.read == 0
    }

    /// Takes one received datagram: asks the core's triage, keeps it (copied) for
    /// delivery, or only counts it.
    pub fn offer(&mut self, core: &Controller, remote: SocketAddr, payload: &[u8]) {
        self.read += 1;
        match core.triage(remote, payload) {
            Triage::Known => self.known.push_back(Datagram {
                remote,
                payload: payload.to_vec(),
            }),
            Triage::Unknown if self.unknown.len() < UNKNOWN_BUDGET && self.take(remote.ip()) => {
                self.unknown.push_back(Datagram {
                    remote,
                    payload: payload.to_vec(),
                })
            }
            Triage::Unknown => *self.dropped.entry(Dropped::OverBudget).or_default() += 1,
            Triage::Drop(why) => *self.dropped.entry(why).or_default() += 1,
        }
    }

    /// Takes one datagram of `ip`'s share of the batch, if any is left.
    fn take(&mut self, ip: IpAddr) -> bool {
        match self.per_source.iter_mut().find(|(seen, _)| *seen == ip) {
            Some((_, n)) if *n >= PER_SOURCE_BUDGET => false,
            Some((_, n)) => {
                *n += 1;
                true
            }
            None => {
                self.per_source.push((ip, 1));
                true
            }
        }
    }

    /// Hands the core the next datagram of the batch, known ones first; false when the
    /// batch has none left (then [`Inbox::finish`] it).
    ///
    /// One at a time, so that the driver sends what each datagram caused before the
    /// next is handled: a batch of 20 takes the core ~300 µs, and an answer held until
    /// the whole batch is done would wait for all of it (issue 9 §4, setup latency).
    pub fn deliver_next(&mut self, core: &mut Controller, local: SocketAddr, now: Instant) -> bool {
        let Some(d) = self.known.pop_front().or_else(|| self.unknown.pop_front()) else {
            return false;
        };
        core.handle_input(
            now,
            Input::Datagram {
                local,
                remote: d.remote,
                payload: d.payload,
            },
        );
        true
    }

    /// Ends the batch: counts what was dropped in the core's stats and returns how many
    /// datagrams the batch held. The inbox is empty afterwards (its buffers are kept
    /// for the next batch); what was not delivered is dropped with it.
    pub fn finish(&mut self, core: &mut Controller) -> usize {
        self.per_source.clear();
        self.known.clear();
        self.unknown.clear();
        for (why, count) in std::mem::take(&mut self.dropped) {
            core.count_dropped(why, count);
        }
        std::mem::take(&mut self.read)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use sip_core::{Config, Output};
    use std::time::SystemTime;

    #[test]
    fn garbage_is_counted_and_unknown_requests_are_bounded() {
        let now = Instant::now();
        let mut core = Controller::new(Config::default(), 1, now, SystemTime::now());
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        // Sixteen sources: together they are bounded by the total budget.
        let flood = |i: usize| -> SocketAddr { ([127, 0, 0, 2 + (i % 16) as u8], 4000).into() };
        let ping = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:4000;branch=z9hG4bK1\r\n\
            From: <sip:p@127.0.0.2>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
            Max-Forwards: 70\r\nContact: <sip:p@127.0.0.2:4000>\r\nUser-Agent: flood/1\r\n\
            Content-Length: 0\r\n\r\n";
        let mut inbox = Inbox::default();
        let mut offered = 0;
        while !inbox.full() {
            let payload: &[u8] = match offered % 4 {
                0 => b"\r\n\r\n",
                1 => b"SIP/2.0 200 OK\r\n\r\n",
                _ => ping,
            };
            inbox.offer(&core, flood(offered), payload);
            offered += 1;
        }
        while inbox.deliver_next(&mut core, local, now) {}
        assert_eq!(inbox.finish(&mut core), MAX_BATCH);
        assert!(inbox.is_empty());
        let stats = core.stats();
        assert_eq!(stats.sip_in, MAX_BATCH as u64);
        assert_eq!(stats.keepalives, (MAX_BATCH / 4) as u64);
        assert_eq!(
            stats.dropped.get("unknown_source"),
            Some(&((MAX_BATCH / 4) as u64))
        );
        assert_eq!(
            stats.dropped.get("over_budget"),
            Some(&((MAX_BATCH / 2 - UNKNOWN_BUDGET) as u64))
        );
        // Exactly the budget reached the core and was answered.
        let mut answers = 0;
        loop {
            match core.poll_output() {
                Output::Transmit(_) => answers += 1,
                Output::Timeout(_) => break,
                _ => {}
            }
        }
        assert_eq!(answers, UNKNOWN_BUDGET);
    }

    #[test]
    fn one_source_gets_its_share_and_others_still_get_through() {
        let now = Instant::now();
        let core = Controller::new(Config::default(), 1, now, SystemTime::now());
        let ping = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        let mut inbox = Inbox::default();
        let flood: SocketAddr = "127.0.0.2:4000".parse().unwrap();
        for _ in 0..100 {
            inbox.offer(&core, flood, ping);
        }
        let peer: SocketAddr = "127.0.0.3:5060".parse().unwrap();
        inbox.offer(&core, peer, ping);
        assert_eq!(inbox.unknown.len(), PER_SOURCE_BUDGET + 1);
        assert_eq!(inbox.unknown.back().map(|d| d.remote), Some(peer));
        assert_eq!(
            inbox.dropped.get(&Dropped::OverBudget),
            Some(&(100 - PER_SOURCE_BUDGET as u64))
        );
    }

    /// One datagram per call, so the driver can send each answer before the next is
    /// handled: after the first `deliver_next` the core has answered exactly the first.
    #[test]
    fn deliver_next_hands_over_one_datagram_at_a_time_in_order() {
        let now = Instant::now();
        let mut core = Controller::new(Config::default(), 1, now, SystemTime::now());
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let ping = |n: u8| {
            format!(
                "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.{n}:4000;branch=z9hG4bK{n}\r\n\
                 From: <sip:p@127.0.0.{n}>;tag={n}\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c{n}\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContact: <sip:p@127.0.0.{n}:4000>\r\n\
                 User-Agent: a-longer-user-agent/1.0\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let mut inbox = Inbox::default();
        let sources: Vec<SocketAddr> = (2..4u8).map(|n| ([127, 0, 0, n], 4000).into()).collect();
        for (n, source) in (2..4u8).zip(&sources) {
            inbox.offer(&core, *source, ping(n).as_bytes());
        }
        let answered = |core: &mut Controller| {
            let mut to = Vec::new();
            loop {
                match core.poll_output() {
                    Output::Transmit(t) => to.push(t.remote),
                    Output::Timeout(_) => return to,
                    _ => {}
                }
            }
        };
        assert!(inbox.deliver_next(&mut core, local, now));
        assert_eq!(answered(&mut core), [sources[0]]);
        assert!(inbox.deliver_next(&mut core, local, now));
        assert_eq!(answered(&mut core), [sources[1]]);
        assert!(!inbox.deliver_next(&mut core, local, now));
        assert_eq!(inbox.finish(&mut core), 2);
    }
}

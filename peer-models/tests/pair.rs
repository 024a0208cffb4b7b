//! The provider model calling the LiveKit model directly, no trunkline between them:
//! datagrams passed by hand in virtual time (5 ms each way), timers fired in order.
//! Each call must end on both sides with the outcome its configuration implies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods)] // virtual time is anchored once

use peer_models::livekit::{Answer, LiveKit, LiveKitConfig};
use peer_models::provider::{CallOutcome, CallSpec, Ending, Provider, ProviderConfig};
use peer_models::sip::{Credentials, TimerValues};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LATENCY: Duration = Duration::from_millis(5);

fn provider_addr() -> SocketAddr {
    "127.0.0.1:5070".parse().unwrap()
}

fn livekit_addr() -> SocketAddr {
    "127.0.0.1:5080".parse().unwrap()
}

/// Both models and the datagrams in flight, by arrival time.
struct World {
    provider: Provider,
    livekit: LiveKit,
    in_flight: BTreeMap<(Instant, u64), (SocketAddr, SocketAddr, Vec<u8>)>,
    seq: u64,
    /// Every datagram that crossed, as text, for assertions on the wire.
    wire: Vec<String>,
    /// Deliver every datagram twice (the second 1 ms after the first).
    duplicate: bool,
    /// Lose the first datagram whose text starts with this.
    drop_first: Option<&'static str>,
}

impl World {
    fn new(livekit: LiveKitConfig) -> Self {
        let provider = Provider::new(
            ProviderConfig {
                local: provider_addr(),
                domain: "provider.test".to_owned(),
                timers: TimerValues::default(),
            },
            1,
        );
        Self {
            provider,
            livekit: LiveKit::new(livekit, 2),
            in_flight: BTreeMap::new(),
            seq: 0,
            wire: Vec::new(),
            duplicate: false,
            drop_first: None,
        }
    }

    fn send(&mut self, now: Instant, from: SocketAddr, out: Vec<(SocketAddr, Vec<u8>)>) {
        for (to, bytes) in out {
            if let Some(prefix) = self.drop_first {
                if bytes.starts_with(prefix.as_bytes()) {
                    self.drop_first = None;
                    continue;
                }
            }
            if self.duplicate {
                self.seq += 1;
                let again = (from, to, bytes.clone());
                self.in_flight
                    .insert((now + LATENCY + Duration::from_millis(1), self.seq), again);
            }
            self.seq += 1;
            self.in_flight
                .insert((now + LATENCY, self.seq), (from, to, bytes));
        }
    }

    /// Runs until nothing is in flight and no timer is pending, or `until`.
    fn run(&mut self, until: Instant) {
        loop {
            let next_packet = self.in_flight.keys().next().map(|(t, _)| *t);
            let candidates = [
                next_packet,
                self.provider.poll_timeout(),
                self.livekit.poll_timeout(),
            ];
            let Some(now) = candidates.into_iter().flatten().min() else {
                return;
            };
            if now > until {
                return;
            }
            if next_packet == Some(now) {
                let (_, (from, to, bytes)) = self.in_flight.pop_first().unwrap();
                self.wire.push(String::from_utf8_lossy(&bytes).into_owned());
                if to == livekit_addr() {
                    let out = self.livekit.handle_datagram(now, from, &bytes);
                    self.send(now, livekit_addr(), out);
                } else {
                    let out = self.provider.handle_datagram(now, from, &bytes);
                    self.send(now, provider_addr(), out);
                }
            } else if self.provider.poll_timeout() == Some(now) {
                let out = self.provider.handle_timeout(now);
                self.send(now, provider_addr(), out);
            } else {
                let out = self.livekit.handle_timeout(now);
                self.send(now, livekit_addr(), out);
            }
        }
    }

    fn call(&mut self, t0: Instant, ending: Ending, credentials: Option<Credentials>) {
        let spec = CallSpec {
            target: livekit_addr(),
            request_uri: "sip:+15550001111@127.0.0.1:5080".to_owned(),
            to_uri: None,
            caller: "+15559998888".to_owned(),
            display_name: None,
            extra_headers: vec![("X-Trunkline-Did".to_owned(), "+15550001111".to_owned())],
            ending,
            credentials,
            reinvite_after: None,
        };
        let (_, out) = self.provider.place_call(t0, spec);
        self.send(t0, provider_addr(), out);
        self.run(t0 + Duration::from_secs(600));
    }

    fn requests(&self, method: &str) -> usize {
        let prefix = format!("{method} ");
        self.wire.iter().filter(|m| m.starts_with(&prefix)).count()
    }
}

#[test]
fn an_answered_call_is_acked_and_hung_up_by_the_caller() {
    let mut w = World::new(LiveKitConfig::answering(livekit_addr()));
    let t0 = Instant::now();
    w.call(t0, Ending::HangUpAfter(Duration::from_secs(3)), None);
    let r = w.provider.calls().next().unwrap().clone();
    assert_eq!(
        r.outcome,
        Some(CallOutcome::HungUp {
            bye_status: Some(200)
        })
    );
    assert!(r.saw(100) && r.saw(180) && r.final_status() == Some(200));
    assert!(r.statuses.iter().any(|s| s.status == 200 && s.with_body));
    let answered = r.answered_at.unwrap();
    assert_eq!(r.bye_sent_at, Some(answered + Duration::from_secs(3)));
    let seen = &w.livekit.invites()[0];
    assert_eq!(seen.request_uri, "sip:+15550001111@127.0.0.1:5080");
    assert_eq!(seen.call_id, r.call_id);
    assert_eq!(seen.header("X-Trunkline-Did"), Some("+15550001111"));
    assert_eq!(w.livekit.stats().acks, 1);
    assert_eq!(w.livekit.stats().byes_received, 1);
    assert_eq!(w.livekit.stats().final_retransmissions, 0);
    assert_eq!(
        (w.provider.active_calls(), w.livekit.active_calls()),
        (0, 0)
    );
    assert_eq!(
        (w.requests("INVITE"), w.requests("ACK"), w.requests("BYE")),
        (1, 1, 1)
    );
}

#[test]
fn a_call_cancelled_while_ringing_ends_487_on_both_sides() {
    let mut config = LiveKitConfig::answering(livekit_addr());
    config.answer_after = Duration::from_secs(20);
    let mut w = World::new(config);
    let t0 = Instant::now();
    w.call(t0, Ending::CancelAfter(Duration::from_secs(2)), None);
    let r = w.provider.calls().next().unwrap().clone();
    assert_eq!(r.outcome, Some(CallOutcome::Cancelled));
    assert_eq!(r.final_status(), Some(487));
    assert_eq!(w.livekit.stats().cancelled, 1);
    assert_eq!(w.livekit.invites()[0].answered, Some(487));
    assert_eq!((w.requests("CANCEL"), w.requests("ACK")), (1, 1));
    assert!(!w
        .wire
        .iter()
        .any(|m| m.starts_with("SIP/2.0 200 OK") && m.contains("INVITE")));
    assert_eq!(
        (w.provider.active_calls(), w.livekit.active_calls()),
        (0, 0)
    );
}

#[test]
fn a_busy_callee_ends_the_call_486_acked_hop_by_hop() {
    let mut config = LiveKitConfig::answering(livekit_addr());
    config.answer = Answer::Reject(486);
    let mut w = World::new(config);
    let t0 = Instant::now();
    w.call(t0, Ending::HangUpAfter(Duration::from_secs(3)), None);
    let r = w.provider.calls().next().unwrap().clone();
    assert_eq!(r.outcome, Some(CallOutcome::Rejected(486)));
    assert_eq!(r.acks_sent, 1);
    assert_eq!(w.livekit.invites()[0].answered, Some(486));
    assert_eq!(w.livekit.stats().final_retransmissions, 0);
    assert_eq!(w.requests("BYE"), 0);
    assert_eq!(
        (w.provider.active_calls(), w.livekit.active_calls()),
        (0, 0)
    );
}

#[test]
fn a_challenged_call_is_answered_with_the_digest_and_completes() {
    let creds = Credentials {
        username: "trunkline".to_owned(),
        password: "lk-password".to_owned(),
    };
    let mut config = LiveKitConfig::answering(livekit_addr());
    config.auth = Some(creds.clone());
    config.hang_up_after = Some(Duration::from_secs(2));
    let mut w = World::new(config);
    let t0 = Instant::now();
    w.call(t0, Ending::Wait, Some(creds));
    let r = w.provider.calls().next().unwrap().clone();
    assert_eq!(r.statuses.first().map(|s| s.status), Some(407));
    assert_eq!(r.final_status(), Some(200));
    // This time the callee hung up.
    assert_eq!(r.outcome, Some(CallOutcome::RemoteHangUp));
    let invites = w.livekit.invites();
    assert_eq!(invites.len(), 2);
    assert_eq!(
        (invites[0].answered, invites[1].answered),
        (Some(407), Some(200))
    );
    assert_eq!((invites[0].cseq, invites[1].cseq), (1, 2));
    assert_eq!(invites[0].call_id, invites[1].call_id);
    assert!(invites[1].header("Proxy-Authorization").is_some());
    assert_eq!(w.livekit.stats().bad_digest, 0);
    assert!(!w.wire.iter().any(|m| m.contains("lk-password")));
    assert_eq!(
        (w.provider.active_calls(), w.livekit.active_calls()),
        (0, 0)
    );
}

#[test]
fn a_lossy_first_invite_is_retransmitted_and_the_call_still_completes() {
    let mut w = World::new(LiveKitConfig::answering(livekit_addr()));
    let t0 = Instant::now();
    let spec = CallSpec {
        target: livekit_addr(),
        request_uri: "sip:+15550001111@127.0.0.1:5080".to_owned(),
        to_uri: None,
        caller: "+15559998888".to_owned(),
        display_name: None,
        extra_headers: Vec::new(),
        ending: Ending::HangUpAfter(Duration::from_secs(1)),
        credentials: None,
        reinvite_after: None,
    };
    // The first INVITE is lost: Timer A sends it again at 500 ms.
    let _lost = w.provider.place_call(t0, spec);
    w.run(t0 + Duration::from_secs(600));
    let r = w.provider.calls().next().unwrap().clone();
    assert_eq!(r.invite_retransmissions, 1);
    assert_eq!(
        r.outcome,
        Some(CallOutcome::HungUp {
            bye_status: Some(200)
        })
    );
    assert_eq!(w.livekit.invites().len(), 1);
    assert_eq!(w.livekit.invites()[0].at, t0 + Duration::from_millis(505));
}

#[test]
fn the_same_seeds_give_the_same_wire_and_ended_calls_leave_memory() {
    let t0 = Instant::now();
    let run = || {
        let mut w = World::new(LiveKitConfig::answering(livekit_addr()));
        w.call(t0, Ending::HangUpAfter(Duration::from_secs(3)), None);
        w
    };
    let (mut a, b) = (run(), run());
    assert_eq!(a.wire, b.wire);
    assert!(a.wire.len() >= 7, "{:#?}", a.wire);
    let ended = a.provider.calls().next().unwrap().ended_at.unwrap();
    assert!(a
        .provider
        .take_ended(ended + Duration::from_secs(31))
        .is_empty());
    let taken = a.provider.take_ended(ended + Duration::from_secs(32));
    assert_eq!(taken.len(), 1);
    assert_eq!(a.provider.calls().count(), 0);
    assert_eq!(a.livekit.take_invites().len(), 1);
    assert!(a.livekit.invites().is_empty());
}

#[test]
fn duplicated_datagrams_change_no_outcome() {
    for (answer, ending, expected) in [
        (
            Answer::Accept,
            Ending::HangUpAfter(Duration::from_secs(3)),
            CallOutcome::HungUp {
                bye_status: Some(200),
            },
        ),
        (
            Answer::Accept,
            Ending::CancelAfter(Duration::from_millis(200)),
            CallOutcome::Cancelled,
        ),
        (
            Answer::Reject(486),
            Ending::Wait,
            CallOutcome::Rejected(486),
        ),
    ] {
        let mut config = LiveKitConfig::answering(livekit_addr());
        config.answer = answer;
        let mut w = World::new(config);
        w.duplicate = true;
        w.call(Instant::now(), ending, None);
        let r = w.provider.calls().next().unwrap().clone();
        assert_eq!(r.outcome, Some(expected));
        assert_eq!(w.livekit.invites().len(), 1);
        assert!(w.livekit.stats().invite_retransmissions >= 1);
        assert_eq!(
            (w.provider.active_calls(), w.livekit.active_calls()),
            (0, 0)
        );
    }
}

#[test]
fn a_lost_2xx_is_retransmitted_by_the_callee_until_the_caller_acks_it() {
    let mut w = World::new(LiveKitConfig::answering(livekit_addr()));
    w.drop_first = Some("SIP/2.0 200 OK");
    w.call(
        Instant::now(),
        Ending::HangUpAfter(Duration::from_secs(1)),
        None,
    );
    let r = w.provider.calls().next().unwrap().clone();
    assert_eq!(
        r.outcome,
        Some(CallOutcome::HungUp {
            bye_status: Some(200)
        })
    );
    assert_eq!(w.livekit.stats().final_retransmissions, 1);
    assert_eq!(w.livekit.stats().acks, 1);
    let seen = w.livekit.invites()[0].at;
    // The 2xx left at 300 ms and again at 800 ms: the caller heard it 5 ms later.
    assert_eq!(r.answered_at, Some(seen + Duration::from_millis(800 + 5)));
}

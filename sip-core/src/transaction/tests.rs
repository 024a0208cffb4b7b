//! The four machines in virtual time, through the table.

use super::*;
use crate::message::{parse, response_to, Message};
use proptest::prelude::*;

const REMOTE: &str = "192.0.2.1:5060";

struct World {
    t0: Instant,
    now: Instant,
    cfg: SipTimers,
    table: TimerTable,
    txns: Transactions,
}

impl World {
    fn new() -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            cfg: SipTimers::default(),
            table: TimerTable::default(),
            txns: Transactions::default(),
        }
    }
    fn remote() -> SocketAddr {
        REMOTE.parse().unwrap()
    }
    /// The peer over UDP, or over a TCP connection when `reliable`.
    fn link(reliable: bool) -> Link {
        let flow = if reliable {
            crate::transport::Flow::Tcp(ConnId(1))
        } else {
            crate::transport::Flow::Udp
        };
        Link {
            remote: Self::remote(),
            flow,
        }
    }
    /// Fires every timer up to `at`, returning `(offset from t0, timer, actions)`.
    fn run_until(&mut self, at: Instant) -> Vec<(Duration, TxnTimer, Vec<TxnAction>)> {
        let mut fired = Vec::new();
        while let Some(next) = self.table.next_deadline().filter(|d| *d <= at) {
            self.now = next;
            let Some(TimerKey::Transaction(id, timer)) = self.table.pop_expired(next) else {
                continue;
            };
            let actions = self
                .txns
                .on_timer(id, timer, next, &self.cfg, &mut self.table);
            fired.push((next - self.t0, timer, actions));
        }
        self.now = at.max(self.now);
        fired
    }
    fn response(&mut self, r: Response) -> Option<Vec<TxnAction>> {
        self.txns
            .on_response(self.now, &self.cfg, &mut self.table, r)
    }
    fn request(&mut self, r: &Request) -> ServerStep {
        let arrival = Arrival {
            from: Self::link(false),
            room: Room::Shared,
        };
        self.txns
            .on_request(self.now, &self.cfg, &mut self.table, r, arrival)
    }
    fn respond(&mut self, id: u64, status: u16, bytes: Vec<u8>) -> Vec<TxnAction> {
        self.txns
            .respond(self.now, &self.cfg, &mut self.table, id, status, bytes)
    }
    fn start_invite(&mut self, reliable: bool) -> u64 {
        let inv = invite("z9hG4bKinv");
        let bytes = INVITE.replace("BRANCH", "z9hG4bKinv").into_bytes();
        self.txns.start_invite(
            self.now,
            &self.cfg,
            &mut self.table,
            Owner::Leg {
                call: 1,
                leg: Leg::Callee,
            },
            "z9hG4bKinv".into(),
            inv,
            Self::link(reliable),
            bytes,
        )
    }
}

const INVITE: &str = "INVITE sip:bob@192.0.2.1 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.0.2.9:5060;branch=BRANCH\r\n\
    Route: <sip:proxy.example;lr>\r\nMax-Forwards: 70\r\n\
    From: <sip:alice@example>;tag=ft\r\nTo: <sip:bob@example>\r\n\
    Call-ID: call-1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";

fn invite(branch: &str) -> Request {
    request(&INVITE.replace("BRANCH", branch))
}

fn request(text: &str) -> Request {
    match parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn response_text(branch: &str, status: u16, method: &str, to_tag: &str) -> Response {
    let text = format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch={branch}\r\n\
         From: <sip:alice@example>;tag=ft\r\nTo: <sip:bob@example>;tag={to_tag}\r\n\
         Call-ID: call-1\r\nCSeq: 7 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    match parse(text.as_bytes()).unwrap() {
        Message::Response(r) => r,
        Message::Request(_) => unreachable!(),
    }
}

fn sends(actions: &[TxnAction]) -> Vec<&[u8]> {
    actions
        .iter()
        .filter_map(|a| match a {
            TxnAction::Send { payload, .. } => Some(payload.as_slice()),
            TxnAction::Notify { .. } => None,
        })
        .collect()
}

fn events(actions: &[TxnAction]) -> Vec<&TxnEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            TxnAction::Notify { event, .. } => Some(event),
            TxnAction::Send { .. } => None,
        })
        .collect()
}

fn secs(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn register_start(w: &mut World, i: u32) -> u64 {
    register_start_on(w, i, World::link(false))
}

fn register_start_on(w: &mut World, i: u32, link: Link) -> u64 {
    w.txns.start(
        w.now,
        &w.cfg,
        &mut w.table,
        Owner::Registration(i),
        format!("z9hG4bK-{i}"),
        "REGISTER",
        link,
        b"REGISTER sip:b SIP/2.0\r\n\r\n".to_vec(),
    )
}

fn register_response(branch: &str, status: u16) -> Response {
    let text = format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\n\
         CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
    );
    match parse(text.as_bytes()).unwrap() {
        Message::Response(r) => r,
        Message::Request(_) => unreachable!(),
    }
}

#[test]
fn a_completed_register_is_forgotten_and_its_retransmissions_dropped() {
    let mut w = World::new();
    for i in 0..10 {
        register_start(&mut w, i);
    }
    assert_eq!(w.table.len(), 20, "Timers E and F each");
    assert!(w.txns.awaits(World::remote().ip()));
    w.now += secs(100);
    for i in 0..10 {
        let done = w
            .response(register_response(&format!("z9hG4bK-{i}"), 200))
            .unwrap();
        assert!(matches!(events(&done)[..], [TxnEvent::Final(_)]));
    }
    assert_eq!(
        (w.txns.len(), w.txns.clients.len(), w.table.len()),
        (0, 0, 0)
    );
    assert!(!w.txns.awaits(World::remote().ip()) && w.txns.by_remote.is_empty());
    assert!(w.response(register_response("z9hG4bK-3", 200)).is_none());
}

#[test]
fn non_invite_client_timers_e_and_f() {
    let mut w = World::new();
    let lost = register_start(&mut w, 0);
    register_start(&mut w, 1);
    assert_eq!(w.txns.in_flight(), 2);
    let fired = w.run_until(w.t0 + secs(32_000));
    let mine: Vec<(Duration, TxnTimer)> = fired
        .iter()
        .filter(|(_, _, a)| {
            a.iter()
                .any(|x| matches!(x, TxnAction::Send { .. } | TxnAction::Notify { id: 1, .. }))
        })
        .map(|(d, t, _)| (*d, *t))
        .step_by(2)
        .collect();
    // E: 0.5, 1.5, 3.5, 7.5, then every T2; F at 32 s.
    let e: Vec<u64> = mine
        .iter()
        .filter(|(_, t)| *t == TxnTimer::E)
        .map(|(d, _)| d.as_millis() as u64)
        .collect();
    assert_eq!(
        e,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let first = &fired[0].2;
    assert!(matches!(first[..], [TxnAction::Send { lost_since: Some(at), .. }] if at == w.t0));
    assert!(fired.iter().any(|(d, t, a)| *t == TxnTimer::F
        && *d == secs(32_000)
        && matches!(a[..], [TxnAction::Notify { id, event: TxnEvent::Timeout, .. }] if id == lost)));
    assert!(w.txns.is_empty() && w.table.is_empty() && w.txns.in_flight() == 0);
}

#[test]
fn on_a_stream_a_request_is_never_retransmitted_and_timer_f_still_ends_it() {
    // RFC 3261 §17.1.2.2: Timer E only on an unreliable transport; the transport
    // itself retransmits on TCP/TLS.
    let mut w = World::new();
    let id = register_start_on(&mut w, 0, World::link(true));
    let fired = w.run_until(w.t0 + secs(40_000));
    assert!(
        fired.iter().all(|(_, t, _)| *t != TxnTimer::E),
        "Timer E fired on TCP: {fired:?}"
    );
    assert!(fired.iter().any(|(d, t, a)| *t == TxnTimer::F
        && *d == secs(32_000)
        && matches!(a[..], [TxnAction::Notify { id: n, event: TxnEvent::Timeout, .. }] if n == id)));
    assert!(w.txns.is_empty() && w.table.is_empty());
}

#[test]
fn the_first_retransmission_is_a_loss_and_leaves_the_window() {
    let mut w = World::new();
    let lost = register_start(&mut w, 0);
    register_start(&mut w, 1);
    let e1 = w.t0 + w.cfg.t1;
    let act = w.txns.on_timer(lost, TxnTimer::E, e1, &w.cfg, &mut w.table);
    assert!(matches!(act[..], [TxnAction::Send { lost_since: Some(at), .. }] if at == w.t0));
    assert_eq!(w.txns.in_flight(), 1);
    let act = w
        .txns
        .on_timer(lost, TxnTimer::E, e1 + w.cfg.t1 * 2, &w.cfg, &mut w.table);
    assert!(matches!(
        act[..],
        [TxnAction::Send {
            lost_since: None,
            ..
        }]
    ));
    w.now = e1 + w.cfg.t1 * 2;
    let late = w.response(register_response("z9hG4bK-0", 200)).unwrap();
    assert!(matches!(late[..], [TxnAction::Notify { rtt: None, .. }]));
    let prompt = w.response(register_response("z9hG4bK-1", 200)).unwrap();
    assert!(
        matches!(prompt[..], [TxnAction::Notify { rtt: Some(RttSample { sent_at, .. }), .. }] if sent_at == w.t0)
    );
    assert_eq!(w.txns.in_flight(), 0);
}

#[test]
fn invite_client_timer_a_doubles_without_cap_until_b() {
    let mut w = World::new();
    let id = w.start_invite(false);
    let fired = w.run_until(w.t0 + secs(40_000));
    let a: Vec<u128> = fired
        .iter()
        .filter(|f| f.1 == TxnTimer::A)
        .map(|f| f.0.as_millis())
        .collect();
    // 0.5, 1.5, 3.5, 7.5, 15.5, 31.5: intervals 0.5·2^n, past T2.
    assert_eq!(a, [500, 1500, 3500, 7500, 15500, 31500]);
    let b = fired.iter().find(|f| f.1 == TxnTimer::B).unwrap();
    assert_eq!(b.0, secs(32_000));
    assert!(
        matches!(b.2[..], [TxnAction::Notify { id: i, event: TxnEvent::Timeout, .. }] if i == id)
    );
    assert!(w.txns.is_empty() && w.table.is_empty());
    // Reliable: no Timer A.
    let mut w = World::new();
    w.start_invite(true);
    assert_eq!(w.table.len(), 1);
}

#[test]
fn invite_client_acks_a_non_2xx_final_from_the_requests_headers() {
    let mut w = World::new();
    w.start_invite(false);
    let ringing = w
        .response(response_text("z9hG4bKinv", 180, "INVITE", "tt"))
        .unwrap();
    assert!(matches!(events(&ringing)[..], [TxnEvent::Provisional(r)] if r.status == 180));
    assert_eq!(w.table.len(), 1, "A and B stopped, C armed");
    w.now += secs(1000);
    let busy = w
        .response(response_text("z9hG4bKinv", 486, "INVITE", "tt"))
        .unwrap();
    // Two actions: the ACK, then the owner told.
    let [TxnAction::Send { payload, .. }, TxnAction::Notify {
        event: TxnEvent::Final(r),
        ..
    }] = &busy[..]
    else {
        panic!("{busy:?}");
    };
    assert_eq!(r.status, 486);
    let ack = request(std::str::from_utf8(payload).unwrap());
    assert_eq!(
        (ack.method.as_str(), ack.uri.as_str()),
        ("ACK", "sip:bob@192.0.2.1")
    );
    assert_eq!(
        ack.headers.get_all("Via").collect::<Vec<_>>(),
        ["SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKinv"]
    );
    assert_eq!(ack.headers.get("From"), Some("<sip:alice@example>;tag=ft"));
    assert_eq!(ack.headers.get("To"), Some("<sip:bob@example>;tag=tt"));
    assert_eq!(ack.headers.call_id(), Some("call-1"));
    assert_eq!(ack.headers.cseq(), Some((7, "ACK")));
    assert_eq!(ack.headers.get("Route"), Some("<sip:proxy.example;lr>"));
    // A retransmitted 486 is re-ACKed, not passed up.
    let again = w
        .response(response_text("z9hG4bKinv", 486, "INVITE", "tt"))
        .unwrap();
    assert_eq!(sends(&again), [payload.as_slice()]);
    assert!(events(&again).is_empty());
    // Timer D: 32 s after the final.
    let start = w.now;
    let fired = w.run_until(start + secs(40_000));
    assert_eq!(
        fired
            .iter()
            .map(|f| (f.0 - (start - w.t0), f.1))
            .collect::<Vec<_>>(),
        [(secs(32_000), TxnTimer::D)]
    );
    assert!(w.txns.is_empty() && w.table.is_empty());
}

#[test]
fn invite_client_surfaces_every_2xx_in_accepted_until_timer_m() {
    let mut w = World::new();
    w.start_invite(false);
    let ok = w
        .response(response_text("z9hG4bKinv", 200, "INVITE", "a"))
        .unwrap();
    assert!(sends(&ok).is_empty(), "the TU ACKs a 2xx");
    assert!(matches!(events(&ok)[..], [TxnEvent::Final(r)] if r.status == 200));
    for tag in ["a", "b"] {
        // A retransmission, then a fork with another To-tag.
        let more = w
            .response(response_text("z9hG4bKinv", 200, "INVITE", tag))
            .unwrap();
        assert!(
            matches!(events(&more)[..], [TxnEvent::Final(r)] if r.headers.to_tag() == Some(tag))
        );
    }
    // A late non-2xx is discarded.
    assert_eq!(
        w.response(response_text("z9hG4bKinv", 500, "INVITE", "c")),
        Some(vec![])
    );
    let fired = w.run_until(w.t0 + secs(33_000));
    assert_eq!(
        fired.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
        [(secs(32_000), TxnTimer::M)]
    );
    assert!(w.txns.is_empty() && w.table.is_empty());
    // A CANCEL's response (same branch, other method) is not the INVITE's.
    assert!(w
        .response(response_text("z9hG4bKinv", 200, "CANCEL", "a"))
        .is_none());
}

#[test]
fn invite_server_trying_at_once_and_the_same_response_to_retransmissions() {
    let mut w = World::new();
    let inv = invite("z9hG4bKsrv");
    let ServerStep::New {
        id,
        cancels: None,
        actions,
    } = w.request(&inv)
    else {
        panic!()
    };
    let trying = sends(&actions);
    assert!(trying.len() == 1 && trying[0].starts_with(b"SIP/2.0 100 Trying\r\n"));
    let busy = response_to(&inv, 486, "Busy Here", Some("tag-1")).to_bytes();
    assert_eq!(sends(&w.respond(id, 486, busy.clone())), [busy.as_slice()]);
    // Retransmitted INVITE: byte-identical 486 (same To-tag).
    let ServerStep::Absorbed(again) = w.request(&inv) else {
        panic!()
    };
    assert_eq!(sends(&again), [busy.as_slice()]);
    // A second final from the TU is refused.
    assert!(w.respond(id, 500, b"x".to_vec()).is_empty());
    // Timer G: T1 doubling to T2, until the ACK.
    let fired = w.run_until(w.t0 + secs(8_000));
    let g: Vec<u128> = fired
        .iter()
        .filter(|f| f.1 == TxnTimer::G)
        .map(|f| f.0.as_millis())
        .collect();
    assert_eq!(g, [500, 1500, 3500, 7500]);
    assert!(fired.iter().all(|f| sends(&f.2) == [busy.as_slice()]));
    let ack = request(
        &INVITE
            .replace("INVITE", "ACK")
            .replace("BRANCH", "z9hG4bKsrv"),
    );
    assert_eq!(w.request(&ack), ServerStep::Absorbed(vec![]));
    // Confirmed: ACK retransmissions absorbed, Timer I = T4.
    assert_eq!(w.request(&ack), ServerStep::Absorbed(vec![]));
    let start = w.now;
    let fired = w.run_until(start + secs(60_000));
    assert_eq!(
        fired
            .iter()
            .map(|f| (f.0 - (start - w.t0), f.1))
            .collect::<Vec<_>>(),
        [(w.cfg.t4, TxnTimer::I)]
    );
    assert!(w.txns.is_empty() && w.table.is_empty());
}

#[test]
fn invite_server_timer_h_without_ack_and_accepted_on_2xx() {
    let mut w = World::new();
    let inv = invite("z9hG4bKh");
    let ServerStep::New { id, .. } = w.request(&inv) else {
        panic!()
    };
    w.respond(id, 480, b"480".to_vec());
    let fired = w.run_until(w.t0 + secs(40_000));
    let h = fired.iter().find(|f| f.1 == TxnTimer::H).unwrap();
    assert_eq!(h.0, secs(32_000));
    assert!(matches!(events(&h.2)[..], [TxnEvent::NoAck]));
    // G capped at T2: 0.5, 1.5, 3.5, 7.5, 11.5 … 31.5.
    assert_eq!(fired.iter().filter(|f| f.1 == TxnTimer::G).count(), 10);
    assert!(w.txns.is_empty() && w.table.is_empty());

    let mut w = World::new();
    let ServerStep::New { id, .. } = w.request(&inv) else {
        panic!()
    };
    assert_eq!(
        sends(&w.respond(id, 200, b"200".to_vec())),
        [b"200".as_slice()]
    );
    // Accepted: INVITE retransmissions absorbed (the TU resends its 2xx), an ACK with
    // the INVITE's branch handed to the TU.
    assert_eq!(w.request(&inv), ServerStep::Absorbed(vec![]));
    let ack = request(
        &INVITE
            .replace("INVITE", "ACK")
            .replace("BRANCH", "z9hG4bKh"),
    );
    assert_eq!(w.request(&ack), ServerStep::Ack { invite: Some(id) });
    let fired = w.run_until(w.t0 + secs(40_000));
    assert_eq!(
        fired.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
        [(secs(32_000), TxnTimer::L)]
    );
    // A 2xx ACK with its own branch, and any ACK afterwards, is the TU's.
    assert_eq!(w.request(&ack), ServerStep::Ack { invite: None });
    assert!(w.txns.is_empty() && w.table.is_empty());
}

#[test]
fn non_invite_server_resends_its_last_response_until_timer_j() {
    let mut w = World::new();
    let options = request(
        &INVITE
            .replace("INVITE", "OPTIONS")
            .replace("BRANCH", "z9hG4bKo"),
    );
    let ServerStep::New { id, actions, .. } = w.request(&options) else {
        panic!()
    };
    assert!(actions.is_empty());
    // Trying: a retransmission before any answer is absorbed.
    assert_eq!(w.request(&options), ServerStep::Absorbed(vec![]));
    let ok = response_to(&options, 200, "OK", Some("t")).to_bytes();
    w.respond(id, 200, ok.clone());
    let ServerStep::Absorbed(again) = w.request(&options) else {
        panic!()
    };
    assert_eq!(sends(&again), [ok.as_slice()]);
    let fired = w.run_until(w.t0 + secs(40_000));
    assert_eq!(
        fired.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
        [(secs(32_000), TxnTimer::J)]
    );
    assert!(w.txns.is_empty());
    // Unanswered by the TU: ended after 64·T1, the owner told.
    let ServerStep::New { .. } = w.request(&options) else {
        panic!()
    };
    let fired = w.run_until(w.now + secs(40_000));
    assert!(
        matches!(&fired[..], [(_, TxnTimer::Unanswered, a)] if matches!(events(a)[..], [TxnEvent::Timeout]))
    );
    assert!(w.txns.is_empty() && w.table.is_empty());
}

#[test]
fn cancel_finds_its_invite_and_rfc_2543_requests_are_not_matched() {
    let mut w = World::new();
    let ServerStep::New { id: inv, .. } = w.request(&invite("z9hG4bKc")) else {
        panic!()
    };
    let cancel = request(
        &INVITE
            .replace("INVITE", "CANCEL")
            .replace("BRANCH", "z9hG4bKc"),
    );
    let ServerStep::New { id, cancels, .. } = w.request(&cancel) else {
        panic!()
    };
    assert_eq!(cancels, Some(inv));
    assert_ne!(id, inv);
    assert_eq!(w.request(&invite("1234")), ServerStep::NotRfc3261);
}

#[derive(Debug, Clone)]
enum Op {
    StartInvite(bool),
    StartRegister,
    Response { status: u16, method: bool },
    Request { kind: u8, branch: u8 },
    Respond { status: u16 },
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<bool>().prop_map(Op::StartInvite),
        Just(Op::StartRegister),
        (100u16..700, any::<bool>()).prop_map(|(status, method)| Op::Response { status, method }),
        (0u8..4, 0u8..3).prop_map(|(kind, branch)| Op::Request { kind, branch }),
        (100u16..700).prop_map(|status| Op::Respond { status }),
        (0u64..40_000).prop_map(Op::Advance),
    ]
}

proptest! {
    #[test]
    fn random_sequences_never_panic_and_end_with_an_empty_table(ops in proptest::collection::vec(op(), 0..60)) {
        let mut w = World::new();
        let mut server_ids = Vec::new();
        for op in ops {
            match op {
                Op::StartInvite(reliable) => { w.start_invite(reliable); }
                Op::StartRegister => { register_start(&mut w, 0); }
                Op::Response { status, method } => {
                    let (branch, m) = if method { ("z9hG4bKinv", "INVITE") } else { ("z9hG4bK-0", "REGISTER") };
                    let _ = w.response(response_text(branch, status, m, "t"));
                }
                Op::Request { kind, branch } => {
                    let method = ["INVITE", "ACK", "OPTIONS", "CANCEL"][kind as usize];
                    let r = request(&INVITE.replace("INVITE", method).replace("BRANCH", &format!("z9hG4bK{branch}")));
                    if let ServerStep::New { id, .. } = w.request(&r) {
                        server_ids.push(id);
                    }
                }
                Op::Respond { status } => {
                    if let Some(&id) = server_ids.last() {
                        w.respond(id, status, b"r".to_vec());
                    }
                }
                Op::Advance(ms) => { w.run_until(w.now + secs(ms)); }
            }
        }
        // Every transaction ends by a timer of its own.
        w.run_until(w.now + Duration::from_secs(3600));
        prop_assert!(w.txns.is_empty());
        prop_assert!(w.table.is_empty());
        prop_assert!(w.txns.clients.is_empty() && w.txns.servers.is_empty());
        prop_assert!(w.txns.by_remote.is_empty() && w.txns.in_flight() == 0);
    }
}

#[test]
fn many_transactions_through_virtual_time_leave_nothing() {
    let mut w = World::new();
    for i in 0..1000u32 {
        register_start(&mut w, i);
        w.start_invite(i % 2 == 0);
        let r = invite(&format!("z9hG4bKm{i}"));
        if let ServerStep::New { id, .. } = w.request(&r) {
            if i % 3 == 0 {
                w.respond(id, 486, b"486".to_vec());
            }
        }
        w.now += secs(7);
    }
    assert!(w.txns.len() > 2000);
    w.run_until(w.now + Duration::from_secs(3600));
    assert!(w.txns.is_empty() && w.table.is_empty());
}

//! Named call scenarios (issue 9 §3): a provider model places calls from its
//! registrar's address, the core bridges them to LiveKit models, and every call
//! invariant holds strictly — with each behaviour the models have (answered and hung up
//! by either side, cancelled, busy, never answered, challenged, re-INVITE, REFER), a
//! stranger's INVITE, faults on both legs, and a simulated day.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::snapshot;
use simulator::check::KnownIssues;
use simulator::models::livekit::Answer;
use simulator::models::provider::Ending;
use simulator::models::registrar::RegistrarConfig;
use simulator::net::{Cut, LinkConfig};
use simulator::scenario::{CallDef, CallSource, Fault, LiveKitDef, Target};
use simulator::trace::TraceMode;
use simulator::{run, Report, RunOptions, Scenario};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One registrar and provider on fixed 10 ms links, the given LiveKit models (the first
/// is the default domain, the others fixed routes for DIDs `+49300000{i}`), heal at
/// `heal` s.
fn world(name: &str, livekits: Vec<LiveKitDef>, heal: u64) -> Scenario {
    let mut s = Scenario::new(name, 3);
    let r = s.add_registrar(
        RegistrarConfig::default(),
        LinkConfig::fixed(Duration::from_millis(10)),
    );
    s.add_provider(r);
    s.backend_link = LinkConfig::fixed(Duration::from_millis(5));
    s.core.sync_interval = None;
    s.heal_at = secs(heal);
    s.converge_for = None;
    for (i, mut lk) in livekits.into_iter().enumerate() {
        lk.link = LinkConfig::fixed(Duration::from_millis(20));
        s.livekits.push(lk);
        if i == 0 {
            s.routing.default_livekit = Some(0);
        } else {
            s.routing.fixed.push((did(i), i));
        }
    }
    s
}

fn did(livekit: usize) -> String {
    format!("+49300000{livekit}")
}

fn call(at: u64, livekit: usize, ending: Ending) -> CallDef {
    CallDef {
        at: secs(at),
        from: CallSource::Provider(0),
        did: did(livekit),
        ending,
        reinvite_after: None,
    }
}

fn strict(s: Scenario) -> Report {
    run(
        s,
        RunOptions {
            trace: TraceMode::Full,
            stop_at_first: false,
            keep_patch_log: true,
            known: KnownIssues::none(),
        },
    )
}

fn lines_with<'a>(r: &'a Report, needle: &str) -> Vec<&'a str> {
    r.trace
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains(needle))
        .collect()
}

#[test]
fn answered_call_hung_up_by_the_caller() {
    let mut s = world("call_answered", vec![LiveKitDef::answering()], 30);
    s.calls.push(call(5, 0, Ending::HangUpAfter(secs(10))));
    let r = snapshot("call_answered_caller_bye", s);
    // Bridged to the default domain's model, and hung up on both legs.
    assert_eq!(lines_with(&r, "trunkline -> lk-0  INVITE").len(), 1);
    assert_eq!(lines_with(&r, "trunkline -> lk-0  BYE").len(), 1);
    assert_eq!(
        r.stats.core.calls.get("answered"),
        Some(&1),
        "{:?}",
        r.stats.core.calls
    );
}

#[test]
fn every_behaviour_in_one_world() {
    let busy = LiveKitDef {
        answer: Answer::Reject(486),
        ..LiveKitDef::answering()
    };
    let silent = LiveKitDef {
        answer: Answer::Never,
        ..LiveKitDef::answering()
    };
    let challenging = LiveKitDef {
        challenge: true,
        hang_up_after: Some(secs(8)),
        refer_after: Some(secs(3)),
        ..LiveKitDef::answering()
    };
    let slow = LiveKitDef {
        answer_after: secs(20),
        ..LiveKitDef::answering()
    };
    let mut s = world(
        "call_behaviours",
        vec![LiveKitDef::answering(), busy, silent, challenging, slow],
        300,
    );
    let mut reinvite = call(5, 0, Ending::HangUpAfter(secs(20)));
    reinvite.reinvite_after = Some(secs(5));
    s.calls.extend([
        reinvite,
        call(10, 1, Ending::Wait),
        call(15, 2, Ending::Wait),
        call(20, 3, Ending::Wait),
        call(25, 4, Ending::CancelAfter(secs(5))),
        CallDef {
            from: CallSource::Stranger,
            ..call(30, 0, Ending::HangUpAfter(secs(5)))
        },
    ]);
    let r = strict(s);
    assert!(r.passed(), "{}", r.failure_text(120));
    let outcomes = &r.stats.core.calls;
    for (label, n) in [
        ("answered", 2),
        ("busy", 1),
        ("no_answer", 1),
        ("cancelled", 1),
        ("refused_unknown_source", 1),
    ] {
        assert_eq!(outcomes.get(label), Some(&n), "{label}: {outcomes:?}");
    }
    // The re-INVITE and the REFER crossed trunkline both ways.
    assert!(!lines_with(&r, "cseq=2/INVITE").is_empty());
    assert!(!lines_with(&r, "/REFER").is_empty());
    assert!(!lines_with(&r, "407").is_empty());
}

#[test]
fn faults_on_both_legs_end_every_call_on_both_sides() {
    let mut s = world(
        "call_faults",
        vec![
            LiveKitDef::answering(),
            LiveKitDef {
                answer: Answer::Never,
                ..LiveKitDef::answering()
            },
        ],
        600,
    );
    for i in 0..12u64 {
        let ending = match i % 4 {
            0 => Ending::HangUpAfter(secs(30)),
            1 => Ending::Wait,
            2 => Ending::CancelAfter(secs(2)),
            _ => Ending::HangUpAfter(secs(200)),
        };
        s.calls.push(call(20 + i * 30, (i % 2) as usize, ending));
    }
    s.livekits[0].hang_up_after = Some(secs(60));
    s.at(
        secs(60),
        Fault::Partition {
            target: Target::LiveKit(0),
            cut: Cut::Both,
        },
    );
    s.at(
        secs(150),
        Fault::Repair {
            target: Target::LiveKit(0),
        },
    );
    s.at(
        secs(200),
        Fault::Partition {
            target: Target::Registrar(0),
            cut: Cut::FromPeer,
        },
    );
    s.at(
        secs(260),
        Fault::Repair {
            target: Target::Registrar(0),
        },
    );
    s.at(
        secs(300),
        Fault::Link {
            target: Target::All,
            config: LinkConfig::hostile(),
        },
    );
    let r = strict(s);
    assert!(r.passed(), "{}", r.failure_text(120));
}

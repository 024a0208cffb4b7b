//! Controller seeds in call mode (see `controller::calls`): whole calls written as
//! steps, so the fuzzer starts from calls that get far — answered and hung up,
//! cancelled, busy, challenged, forked, held, transferred, timed out, drained.

use crate::controller::calls::build::CALLS;
use crate::controller::ops::{BackendPick, CommandPick, ConfigPick, Op, SipReply};
use crate::seeds::{answer, host_reply, ok, peer, respond, routes_config};

/// A seed: name, configuration, steps.
type Seed = (&'static str, ConfigPick, Vec<Op>);

/// The kind byte of caller call `index`'s request `what` (see `calls::build`).
fn caller(index: u8, what: Caller) -> Op {
    peer(((index % CALLS) << 4) | what as u8)
}

/// The kind byte of the destination's request `what` in the newest leg.
fn callee(what: Callee) -> Op {
    peer(0x80 | what as u8)
}

/// Caller requests by their low nibble.
#[derive(Clone, Copy)]
enum Caller {
    Invite = 0,
    Ack2xx = 2,
    AckError = 3,
    Cancel = 4,
    Bye = 5,
    Hold = 6,
    Resume = 7,
    AckReinvite = 8,
    Info = 10,
}

/// Destination requests by their low nibble.
#[derive(Clone, Copy)]
enum Callee {
    Bye = 0,
    Refer = 6,
}

/// Answers the `which`-th newest request the core sent that is no REGISTER.
fn reply(which: u8, reply: SipReply) -> Op {
    respond(0x80 | which, reply)
}

fn ringing() -> SipReply {
    SipReply::Provisional { variant: 1 }
}

fn failure(status: u8) -> SipReply {
    SipReply::Failure {
        status,
        retry_after: 1,
    }
}

/// Call mode with the fixed route: `reports` 0xA4 (routing, calls, `+100` fixed, 2 s
/// lookups), default domain `lk.example`.
fn calls_config() -> ConfigPick {
    routes_config(0xA4, 1)
}

/// The first steps of every call seed: the config fetch gets `livekitDomain`
/// `lk.example`, the provider list is empty (the caller is an allowed source).
fn start() -> Vec<Op> {
    vec![
        answer(1, host_reply(2)),
        answer(0, BackendPick::Providers(Vec::new())),
    ]
}

/// Caller call `index` is routed: its lookup gets `sip:{did}@backend.example`, which
/// resolves to 127.0.0.2 and 127.0.0.1.
fn routed(index: u8) -> Vec<Op> {
    vec![
        caller(index, Caller::Invite),
        answer(0, host_reply(0)),
        Op::Resolve {
            which: 0,
            answer: 5,
        },
    ]
}

/// The call seeds.
pub fn controller_calls() -> Vec<Seed> {
    let mut seeds = Vec::new();

    // Answered, acknowledged, hung up by the caller; the BYE answered.
    let mut ops = start();
    ops.extend(routed(0));
    ops.extend([
        reply(0, ringing()),
        reply(0, ok(0, 0)),
        caller(0, Caller::Ack2xx),
        caller(0, Caller::Info),
        reply(0, ok(0, 0)),
        caller(0, Caller::Bye),
        reply(0, ok(0, 0)),
        Op::Deadline,
    ]);
    seeds.push(("call_answered_caller_hangs_up", calls_config(), ops));

    // Cancelled while ringing (the CANCEL answered, then 487), a stranger refused, a
    // late-offer call answered busy.
    let mut ops = start();
    ops.extend(routed(0));
    ops.extend([
        reply(0, ringing()),
        caller(0, Caller::Cancel),
        reply(0, ok(0, 0)),
        reply(1, failure(1)),
        caller(0, Caller::AckError),
        peer(0x40),
    ]);
    ops.extend(routed(2));
    ops.extend([reply(0, failure(0)), caller(2, Caller::AckError)]);
    seeds.push(("call_cancel_stranger_busy", calls_config(), ops));

    // The destination challenges (LiveKit's 407, no qop), two forks answer, the caller
    // holds and resumes, the destination transfers (REFER) and hangs up.
    let mut ops = start();
    ops.extend(routed(0));
    ops.extend([
        reply(
            0,
            SipReply::Challenge {
                proxy: true,
                variant: 0,
                realm: 0,
                nonce: 0,
                stale: false,
            },
        ),
        reply(0, SipReply::Provisional { variant: 3 }),
        reply(0, ok(0, 1)),
        reply(0, ok(0, 0)),
        caller(0, Caller::Ack2xx),
        caller(0, Caller::Hold),
        reply(0, ok(0, 0)),
        caller(0, Caller::AckReinvite),
        caller(0, Caller::Resume),
        reply(0, ok(0, 0)),
        caller(0, Caller::AckReinvite),
        callee(Callee::Refer),
        reply(0, ok(1, 0)),
        callee(Callee::Bye),
        reply(0, ok(1, 0)),
        Op::Deadline,
    ]);
    seeds.push((
        "call_auth_fork_hold_refer",
        ConfigPick {
            backend_timeout: 0x80,
            ..calls_config()
        },
        ops,
    ));

    // Ring timeout 1 s: the destination is CANCELled and the caller gets 408; a second
    // call is answered and then drained by the shutdown (drain 2 s: BYE both legs).
    let mut ops = start();
    ops.extend(routed(0));
    ops.extend([
        reply(0, ringing()),
        Op::Advance {
            amount: 2,
            scale: 1,
        },
        reply(0, ok(0, 0)),
        reply(1, failure(1)),
        caller(0, Caller::AckError),
    ]);
    ops.extend(routed(3));
    ops.extend([
        reply(0, ok(0, 0)),
        caller(3, Caller::Ack2xx),
        Op::Command(CommandPick::Shutdown { grace_centis: 100 }),
        Op::Deadline,
        Op::Deadline,
        reply(0, ok(0, 0)),
        reply(1, ok(0, 0)),
        Op::Deadline,
    ]);
    seeds.push((
        "call_ring_timeout_and_drain",
        ConfigPick {
            sync: 0x20,
            rate: 0x80,
            ..calls_config()
        },
        ops,
    ));
    seeds
}

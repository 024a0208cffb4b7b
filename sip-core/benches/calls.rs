//! The core's time per call (issue 9 §4): one whole answered call through the
//! controller — the caller's INVITE, 100 Trying, our INVITE, the callee's 180 and 200,
//! both ACKs, the caller's BYE and the callee's 200 to ours — at a steady 2,375 calls/s
//! of virtual time, so that the transactions lingering after each call (Timers L, M, J,
//! K: 32 s) fill the tables as they do at half of trunkline's measured top rate.
//!
//! `cargo bench -p sip-core --bench calls`. Only the time inside the controller's
//! `handle_*` counts (`World::busy`), not the test world's string bookkeeping, so the
//! figure is the core's share of `scripts/bench-calls.sh`'s CPU per call (the rest is
//! the kernel's loopback path and the driver).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use support::calls::{answer_in, call_config, caller, caller_ack_in, in_dialog, livekit};
use support::calls::{feed, last_request, place, response};
use support::{header, registered, World, REGISTRAR};

/// Virtual time between two calls: 2,375 calls/s.
const GAP: Duration = Duration::from_nanos(1_000_000_000 / 2_375);

/// One answered call, hung up by the caller; the world forgets what it recorded.
fn one_call(w: &mut World, n: u64) {
    let call_id = format!("bench-{n}");
    let out = place(w, &call_id);
    let ok = answer_in(w, &out);
    caller_ack_in(w, &ok, &call_id);
    let bye = in_dialog(
        "BYE",
        "sip:trunkline@198.51.100.1:5070",
        &format!("{REGISTRAR}:5060"),
        &format!("\"Bob\" <sip:+15550100@{REGISTRAR}>;tag=f-{call_id}"),
        header(&ok, "To").unwrap(),
        &call_id,
        2,
        "",
    );
    feed(w, caller(), &bye);
    let bye_out = last_request(w, livekit(), "BYE");
    feed(w, livekit(), &response(&bye_out, "200 OK", None, "", ""));
    w.run_for(GAP);
    w.sent.clear();
    w.events.clear();
}

fn calls(c: &mut Criterion) {
    let mut w = registered(call_config());
    // 40 s of virtual calls first: the lingering transactions reach their steady count.
    let mut n = 0u64;
    while n < 2_375 * 40 {
        one_call(&mut w, n);
        n += 1;
    }
    assert_eq!(w.core.active_calls(), 0, "every call ended");
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("answered call, caller hangs up", |b| {
        b.iter_custom(|iters| {
            let before = w.busy;
            for _ in 0..iters {
                one_call(&mut w, n);
                n += 1;
            }
            w.busy - before
        })
    });
    g.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);

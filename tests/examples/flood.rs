//! A loopback UDP flood against trunkline's SIP port, for `scripts/bench-flood.sh`.
//!
//! ```text
//! cargo run --release -p trunkline-tests --example flood -- \
//!     TARGET KIND [SECONDS] [MAX_COUNT] [FROM]
//! ```
//! `KIND` is `dense`, `requests`, `responses` or `mixed` (see
//! `trunkline_tests::flood::Kind`); `SECONDS` defaults to 10 (at most 600),
//! `MAX_COUNT` to 100 million, `FROM` to `127.0.0.2:0`. Loopback addresses only. Prints
//! one line: datagrams sent, errors, seconds, rate.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use trunkline_tests::flood::{flood, Kind};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: flood TARGET dense|requests|responses|mixed [SECONDS] [MAX_COUNT] [FROM]";
    let (Some(target), Some(kind)) = (
        args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(1).and_then(|a| Kind::from_name(a)),
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let seconds: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let max_count: u64 = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000_000);
    let from: SocketAddr = args
        .get(4)
        .and_then(|a| a.parse().ok())
        .unwrap_or(SocketAddr::from(([127, 0, 0, 2], 0)));
    let max_time = Duration::from_secs_f64(seconds.clamp(0.0, 600.0));
    match flood(
        from,
        target,
        kind,
        0, // full rate
        max_count,
        max_time,
        &AtomicBool::new(false),
    ) {
        Ok(r) => {
            let secs = r.elapsed.as_secs_f64().max(1e-9);
            println!(
                "sent {} errors {} seconds {:.2} rate {:.0}/s",
                r.sent,
                r.errors,
                secs,
                r.sent as f64 / secs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flood: {e}");
            ExitCode::FAILURE
        }
    }
}

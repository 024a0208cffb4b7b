//! Parses one message file N times: a whole-process measurement of the parser that
//! `perf stat -e task-clock` can take on a busy machine, where criterion's wall-clock
//! figures swing with the load (issue 9, §4).
//!
//! `cargo build --release -p sip-core --example parse_loop &&
//!  perf stat -e task-clock target/release/examples/parse_loop invite.sip 100000`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: parse_loop <message file> <count>");
        return ExitCode::from(2);
    };
    let (Ok(message), Ok(count)) = (std::fs::read(&path), count.parse::<usize>()) else {
        eprintln!("parse_loop: cannot read {path}, or the count is not a number");
        return ExitCode::from(2);
    };
    let parsed = (0..count)
        .filter(|_| sip_core::message::parse(std::hint::black_box(&message)).is_ok())
        .count();
    println!("{parsed} of {count} parsed");
    ExitCode::SUCCESS
}

//! Runs one scenario and prints its trace (development aid).
use simulator::generate::generate;
use simulator::trace::TraceMode;
use simulator::{run, RunOptions};

fn main() {
    let seed = simulator::env::seed().unwrap_or(1);
    let report = run(
        generate(seed),
        RunOptions {
            trace: TraceMode::Full,
            stop_at_first: true,
            keep_patch_log: true,
            known: simulator::check::KnownIssues::open(),
        },
    );
    for l in &report.trace {
        println!("{l}");
    }
    println!("{:?}", report.stats);
    for v in &report.violations {
        println!("VIOLATION {v}");
    }
}

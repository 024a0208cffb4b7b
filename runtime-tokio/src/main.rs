//! `trunkline`: the SIP edge between SIP providers and LiveKit (CONTRACT.md §1).

mod admin;
mod app;
mod backend_http;
mod cli;
mod config;
mod demo;
mod dense;
mod driver;
mod events;
mod logging;
mod status_cmd;
mod store;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: at 100,000 registrations glibc kept 62–68 MB
/// that the start burst had freed (the parsed provider list, the first REGISTERs) in
/// its heaps, a fifth of the process (README, "Testing": memory at 100,000, measured with
/// `scripts/bench-register.sh`); mimalloc gives such pages back.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process, before the heap grows. mimalloc
/// asks for them on its segments (`madvise`), and the kernel zeroes a 2 MiB page on its
/// first touch while the one core thread waits: at 2,375 calls/s, 56 stalls of 5–10 ms
/// in 10 s made the p99 call setup 8–10 ms; without huge pages, 3.2 ms (issue 9 §4,
/// `PARTS=latency scripts/bench-calls.sh`). The same advice as Redis and most
/// latency-bound servers give; the TLB cost is small at our heap sizes. Best effort: a
/// kernel without the prctl (before 3.15) keeps its default; a note on stderr says so.
fn no_huge_pages() {
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("trunkline: note: could not turn transparent huge pages off ({e}); latency may have 5-10 ms spikes");
    }
}

fn main() -> ExitCode {
    no_huge_pages();
    let cli = cli::Cli::parse();
    let settings = match config::load(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("trunkline: configuration error: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.subcommand() {
        cli::Command::CheckConfig => {
            print!("{}", settings.redacted_toml());
            let mut invalid = 0;
            for p in &settings.providers {
                if let Err(e) = p.validate() {
                    invalid += 1;
                    eprintln!("trunkline: provider {:?}: {e}", p.id);
                }
            }
            if invalid > 0 {
                eprintln!("trunkline: {invalid} provider(s) would be reported as failed");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        cli::Command::Status { admin, wide } => {
            match status_cmd::run(&settings, admin.as_deref(), wide) {
                Ok(table) => {
                    print!("{table}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("trunkline: {e}");
                    ExitCode::from(1)
                }
            }
        }
        cli::Command::Demo => {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(demo::DemoError::Io)
                .and_then(|rt| rt.block_on(demo::run()));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("trunkline demo: {e}");
                    ExitCode::from(2)
                }
            }
        }
        cli::Command::Run => {
            if let Err(e) = logging::init(&settings.log) {
                eprintln!("trunkline: configuration error: {e}");
                return ExitCode::from(1);
            }
            match app::run(settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "trunkline stopped");
                    eprintln!("trunkline: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

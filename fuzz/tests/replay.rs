//! Replays every checked-in seed and regression input through its harness, on stable
//! Rust without libFuzzer: a fixed bug that comes back fails here, in plain
//! `cargo test --manifest-path fuzz/Cargo.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use trunkline_fuzz::controller::{ops::Op, Script};

fn harness(target: &str) -> fn(&[u8]) {
    match target {
        "message_parse" => trunkline_fuzz::message::run,
        "digest_challenge" => trunkline_fuzz::digest::run,
        "controller" => trunkline_fuzz::controller::run,
        "stream_frame" => trunkline_fuzz::stream::run,
        other => panic!("no harness for target {other:?}"),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn checked_in_seeds_are_the_generated_ones() {
    for (target, seeds) in trunkline_fuzz::seeds::all() {
        let dir = root().join("seeds").join(target);
        let on_disk = files(&dir);
        assert_eq!(
            on_disk.len(),
            seeds.len(),
            "fuzz/seeds/{target} is stale: run `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds`"
        );
        for (name, bytes) in seeds {
            let file = dir.join(name);
            let disk = std::fs::read(&file).unwrap_or_default();
            assert_eq!(
                disk,
                bytes,
                "{} is stale: run `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds`",
                file.display()
            );
        }
    }
}

#[test]
fn seeds_and_regressions_pass_their_harness() {
    let mut ran = 0;
    let mut failed = Vec::new();
    for target in [
        "message_parse",
        "digest_challenge",
        "controller",
        "stream_frame",
    ] {
        let run = harness(target);
        for kind in ["seeds", "regressions"] {
            for file in files(&root().join(kind).join(target)) {
                let bytes = std::fs::read(&file).unwrap();
                // Each failure's panic message is printed above; all are listed below.
                if std::panic::catch_unwind(|| run(&bytes)).is_err() {
                    failed.push(file.display().to_string());
                }
                ran += 1;
            }
        }
    }
    assert!(ran >= 10, "only {ran} inputs found: is fuzz/seeds there?");
    assert!(
        failed.is_empty(),
        "inputs failing their harness (see the panics above; trace one with \
         `cargo run --manifest-path fuzz/Cargo.toml --example replay -- TARGET FILE`):\n{}",
        failed.join("\n")
    );
}

#[test]
fn controller_seeds_decode_to_their_scripts() {
    // The encoder and decoder must agree, or the seeds do not say what they look like.
    for (name, bytes) in trunkline_fuzz::seeds::controller() {
        let script = Script::decode(&bytes);
        assert_eq!(script.encode(), bytes, "seed {name} does not round-trip");
        assert!(script.ops.len() > 5, "seed {name} decodes to too few steps");
    }
}

#[test]
fn controller_seed_reaches_registered_and_failed() {
    // The happy-path seed must really drive the core through a challenge to a binding
    // and to a credential failure, or the fuzzer starts from nothing interesting.
    let (_, bytes) = trunkline_fuzz::seeds::controller()
        .into_iter()
        .find(|(n, _)| *n == "two_providers_auth_and_wrong_password")
        .unwrap();
    let script = Script::decode(&bytes);
    let trace = trunkline_fuzz::controller::World::trace(&script);
    assert!(
        trace
            .iter()
            .any(|l| l.contains("p-alice") && l.contains("Registered")),
        "alice never registered:\n{}",
        trace.join("\n")
    );
    assert!(
        trace.iter().any(|l| l.contains("p-bob")
            && l.contains("Failed")
            && l.contains("authentication rejected")),
        "bob's wrong password was never reported:\n{}",
        trace.join("\n")
    );
    assert!(
        trace.iter().any(|l| l.contains("ShutdownComplete")),
        "no ShutdownComplete:\n{}",
        trace.join("\n")
    );
    assert!(matches!(script.ops.first(), Some(Op::Backend { .. })));
}

#[test]
fn routing_seeds_reach_every_kind_of_route() {
    // The routing seeds turn routes_from_backend on and must drive every path of the
    // destination lookup, or the fuzzer starts routing from nothing.
    let mut trace = Vec::new();
    for (name, bytes) in trunkline_fuzz::seeds::controller() {
        if name.starts_with("routes_") {
            assert!(
                bytes.get(2).is_some_and(|b| *b >= 0x80),
                "seed {name} leaves routing off"
            );
            trace.extend(trunkline_fuzz::controller::World::trace(&Script::decode(
                &bytes,
            )));
        }
    }
    let all = trace.join("\n");
    for wanted in [
        "op: FetchConfig",
        "DefaultDomainChanged { domain: \"proj.sip.livekit.cloud\" }",
        "DefaultDomainChanged { domain: \"lk.example\" }",
        "op: LookupDestination",
        "source: Fixed",
        "source: Backend, cached: false",
        "source: Backend, cached: true",
        "source: Default, cached: true",
        "source: Fallback",
        "DestinationFallback",
        "did not answer within",
        "BadDid",
        "NoDefault",
        "ShutdownComplete",
    ] {
        assert!(
            all.contains(wanted),
            "no {wanted:?} in the routing seeds:\n{all}"
        );
    }
    // Tickets for one DID share a request: more answers than requests.
    let count = |needle: &str| trace.iter().filter(|l| l.contains(needle)).count();
    assert!(
        count("op: LookupDestination { did: \"+15551234\" }")
            < count("did: \"+15551234\", result: Ok"),
        "lookups in flight were not shared:\n{all}"
    );
}

//! `trunkline demo` runs on a machine with nothing installed and shows registration,
//! a failure of each kind and a clean shutdown (CONTRACT.md §1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use trunkline_tests::Trunkline;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tours_registration_and_exits_0() {
    let t = Trunkline::start(&["demo"], &[]).await;
    let exited = t.wait_exit().await;
    assert_eq!(exited.code(), Some(0), "demo failed:\n{}", exited.output());
    let out = exited.stdout.clone();
    for expected in [
        "-> 401 Unauthorized (challenges: SHA-256, MD5)",
        "(Digest SHA-256)",
        "\"registerStatus\":\"registered\"",
        "authentication rejected by demo.trunkline",
        "`username` contains CR, LF",
        "un-REGISTER alice",
        "registrar bindings left after shutdown: 0",
    ] {
        assert!(
            out.contains(expected),
            "demo output lacks {expected:?}:\n{out}"
        );
    }
    exited.assert_no_secret(&[
        ("alice's password", "alice-secret"),
        ("bob's password", "not-bobs-password"),
    ]);
}

//! `trunkline demo` runs on a machine with nothing installed and shows registration,
//! a failure of each kind, one inbound call bridged to a LiveKit-like UAS and a clean
//! shutdown (CONTRACT.md §1).

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
        // The call: the provider's INVITE over alice's trunk, the bridged INVITE at
        // the UAS with who is calling, the answer relayed, the caller's BYE on both legs.
        "provider   -> INVITE sip:alice@",
        "livekit    <- INVITE sip:+15550100@",
        "X-Trunkline-Provider-Id: alice",
        "X-Trunkline-Did: +15550100",
        "X-Trunkline-Caller: +15557654321",
        "provider   <- 200 OK (INVITE, with SDP)",
        "provider   -> BYE",
        "livekit    <- BYE",
        "call +15557654321 -> +15550100: answered, the caller hung up after 2 s",
    ] {
        assert!(
            out.contains(expected),
            "demo output lacks {expected:?}:\n{out}"
        );
    }
    assert!(
        out.contains("(not the provider's"),
        "the LiveKit leg must have a Call-ID of its own:\n{out}"
    );
    exited.assert_no_secret(&[
        ("alice's password", "alice-secret"),
        ("bob's password", "not-bobs-password"),
    ]);
}

//! Harness for trunkline's end-to-end tests against real peers.
//!
//! Every test here runs real processes on loopback only: Kamailio as the registrar
//! ([`Kamailio`]), an HTTP server implementing the backend API of CONTRACT.md §3
//! ([`Backend`]), SIPp at both ends of a call ([`calls`]), dnsmasq as the DNS server
//! of the RFC 3263 tests ([`DnsServer`]) and the `trunkline` binary itself
//! ([`Trunkline`]). A peer that is not installed fails the test with a message
//! saying how to install it; nothing skips.
//!
//! Waiting follows one rule: await an event where there is one (a recorded backend
//! request, a process exit) and poll with a bounded deadline only where the peer
//! offers nothing to await (Kamailio's control socket coming up, dnsmasq's first
//! answer, a paused Kamailio's processes stopping). Every deadline is a generous
//! safety net that fails with the history collected so far, never a timed assertion.

// Test support: a failed step must stop the test at once, with a message saying what
// failed, which is what `expect` with a good message does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod backend;
pub mod calls;
pub mod dns;
pub mod flood;
pub mod kamailio;
pub mod net;
pub mod netns;
pub mod sipp;
pub mod tls;
pub mod trunkline;

pub use backend::{Backend, Endpoint, Fault, Provider, RecordedRequest};
pub use dns::DnsServer;
pub use kamailio::{Binding, Kamailio, Options as KamailioOptions};
pub use trunkline::{Exited, Trunkline};

use std::time::Duration;

/// The safety net for every wait on an event in these tests. Generous on purpose: it
/// only turns a hang into a failure with diagnostics, it measures nothing.
pub const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// The text of a file a peer writes (a log, SIPp's stats), empty when it is not there
/// yet; bytes that are not UTF-8 are replaced, not an error.
pub fn read_lossy(path: &std::path::Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// An HTTP client for the admin API; its timeout only turns a hang into a failure.
pub fn admin_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building the HTTP client")
}

/// A random lowercase hex string of `bytes` random bytes, for secrets and keys that
/// must be unique to one run (so finding one in a log cannot be a coincidence).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("reading the OS random source for a test secret");
    hex(&buf)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

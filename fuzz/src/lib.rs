//! Fuzz harnesses for `sip-core`, shared by the cargo-fuzz targets in `fuzz_targets/`
//! and by this crate's tests, which replay the seeds and every regression input on
//! stable Rust without libFuzzer.
//!
//! * [`message::run`] — `message_parse`: the SIP parser, its readers and the writer.
//! * [`digest::run`] — `digest_challenge`: challenge parsing, choice and the answer.
//! * [`controller::run`] — `controller`: the whole core from a byte tape.
//! * [`stream::run`] — `stream_frame`: framing a TCP/TLS byte stream, read in pieces.
//!
//! See `fuzz/README.md` for how to run them on this machine's stable toolchain.

pub mod controller;
pub mod digest;
pub mod message;
pub mod seeds;
mod seeds_calls;
pub mod stream;
pub mod tape;

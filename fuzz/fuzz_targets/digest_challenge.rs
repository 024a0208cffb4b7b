//! cargo-fuzz target `digest_challenge`: see [`trunkline_fuzz::digest`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trunkline_fuzz::digest::run(data));

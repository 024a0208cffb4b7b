//! cargo-fuzz target `controller`: see [`trunkline_fuzz::controller`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trunkline_fuzz::controller::run(data));

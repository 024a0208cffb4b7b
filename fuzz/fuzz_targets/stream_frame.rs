//! cargo-fuzz target `stream_frame`: see [`trunkline_fuzz::stream`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trunkline_fuzz::stream::run(data));

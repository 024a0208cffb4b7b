//! cargo-fuzz target `message_parse`: see [`trunkline_fuzz::message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trunkline_fuzz::message::run(data));

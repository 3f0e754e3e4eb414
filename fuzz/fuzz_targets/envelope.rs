//! libFuzzer target: the event log's envelope decoder (see `plaint_fuzz::envelope`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plaint_fuzz::envelope(data));

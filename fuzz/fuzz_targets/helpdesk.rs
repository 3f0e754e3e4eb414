//! libFuzzer target: the helpdesk payload decoders (see `plaint_fuzz::helpdesk`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plaint_fuzz::helpdesk(data));

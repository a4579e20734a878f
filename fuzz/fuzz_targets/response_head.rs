#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamforge::fuzzing::response_head(data));

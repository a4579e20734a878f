#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamforge::fuzzing::ts_aligner(data));

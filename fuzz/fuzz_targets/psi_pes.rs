#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamforge::fuzzing::psi_pes(data));

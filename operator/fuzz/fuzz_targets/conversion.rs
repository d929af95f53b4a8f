//! Fuzz target `conversion`: see [`locust_operator_fuzz::conversion`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| locust_operator_fuzz::conversion(data));

//! Fuzz target `validation`: see [`locust_operator_fuzz::validation`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| locust_operator_fuzz::validation(data));

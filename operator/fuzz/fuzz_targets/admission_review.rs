//! Fuzz target `admission_review`: see [`locust_operator_fuzz::admission_review`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| locust_operator_fuzz::admission_review(data));

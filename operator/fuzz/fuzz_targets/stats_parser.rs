//! Fuzz target `stats_parser`: see [`locust_operator_fuzz::stats_parser`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| locust_operator_fuzz::stats_parser(data));

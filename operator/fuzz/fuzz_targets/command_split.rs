//! Fuzz target `command_split`: see [`locust_operator_fuzz::command_split`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| locust_operator_fuzz::command_split(data));

//! The `federated` fuzz target: [`check::check`] on libFuzzer's inputs.
#![no_main]

#[path = "../checks/federated.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));

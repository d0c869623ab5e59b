//! The `op_json` fuzz target: [`check::check`] on libFuzzer's inputs.
#![no_main]

#[path = "../checks/op_json.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));

//! The `tensor_frame` fuzz target: [`check::check`] on libFuzzer's inputs.
#![no_main]

#[path = "../checks/tensor_frame.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));

//! Integration tests of the kernels: NumPy conformance from golden fixtures, plus properties;
//! ONNX models (`onnx.rs`) with the `onnx` feature.

mod classic;
mod golden;
mod nn;
mod nn_reference;
#[cfg(feature = "onnx")]
mod onnx;
mod properties;
mod train;

//! Integration tests of the kernels: NumPy conformance from golden fixtures, properties, the
//! element-wise and reduction kernels against an independent reference (`reference.rs`,
//! `conformance.rs`), the memory bound of each op (`budget.rs`); ONNX models (`onnx.rs`) with the `onnx` feature.

mod budget;
mod classic;
mod conformance;
mod golden;
mod infer;
mod nn;
mod nn_reference;
#[cfg(feature = "onnx")]
mod onnx;
mod properties;
mod reference;
mod train;

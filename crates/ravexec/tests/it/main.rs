//! Integration tests of the kernels: NumPy conformance from golden fixtures, plus properties.

mod golden;
mod properties;

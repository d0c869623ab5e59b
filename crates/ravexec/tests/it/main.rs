//! Integration tests of the kernels: NumPy conformance from golden fixtures, plus properties.

mod golden;
mod nn;
mod nn_reference;
mod properties;
mod train;

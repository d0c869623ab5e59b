//! Integration tests of the kernels: NumPy conformance from golden fixtures, plus properties.

mod classic;
mod golden;
mod nn;
mod nn_reference;
mod properties;
mod train;

//! Kernel benchmark: matmul GFLOP/s (256/512/1024, f32 and f64), element-wise add and
//! sum-reduction GB/s on 16M elements, and a memcpy reference bandwidth.
//!
//! Run: `cargo bench -p ravexec --bench kernels` (prints a table), or
//! `scripts/bench_kernels.sh` to print it next to numpy's figures from the same machine.
//! Each figure is the median of repeated runs through `ravexec::execute`, including the
//! allocation of the result, as numpy's `a + b` also allocates.

#![allow(clippy::print_stdout)]

use ndarray::{ArrayD, IxDyn};
use ravexec::{Tensor, TensorValue, execute};
use ravproto::Operation;
use ravproto::ops::{NoParams, ReduceParams};
use std::hint::black_box;
use std::time::Duration;

mod common;

use common::median_secs;

fn filled(shape: &[usize], f32s: bool) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
    let array = ArrayD::from_shape_vec(IxDyn(shape), values).expect("sized");
    if f32s { Tensor::F32(array.mapv(|v| v as f32)) } else { Tensor::F64(array) }
}

fn main() {
    let budget = Duration::from_millis(1500);
    println!("{:<28} {:>12}", "benchmark", "value");
    for n in [256usize, 512, 1024] {
        for (label, f32s) in [("f32", true), ("f64", false)] {
            let inputs = [TensorValue::Tensor(filled(&[n, n], f32s)), TensorValue::Tensor(filled(&[n, n], f32s))];
            let op = Operation::Matmul(NoParams {});
            let secs = median_secs(budget, || {
                black_box(execute(&op, black_box(&inputs)).expect("matmul"));
            });
            let gflops = 2.0 * (n as f64).powi(3) / secs / 1e9;
            println!("{:<28} {:>9.1} GFLOP/s", format!("matmul {n} {label}"), gflops);
        }
    }
    let n = 16 << 20;
    let a = TensorValue::Tensor(filled(&[n], true));
    let b = TensorValue::Tensor(filled(&[n], true));
    let add = Operation::Add(Default::default());
    let inputs = [a.clone(), b];
    let secs = median_secs(budget, || {
        black_box(execute(&add, black_box(&inputs)).expect("add"));
    });
    // Two arrays read, one written.
    println!("{:<28} {:>9.1} GB/s", "add 16M f32", 3.0 * 4.0 * n as f64 / secs / 1e9);
    let sum = Operation::Sum(ReduceParams::all());
    let one = [a];
    let secs = median_secs(budget, || {
        black_box(execute(&sum, black_box(&one)).expect("sum"));
    });
    println!("{:<28} {:>9.1} GB/s", "sum 16M f32", 4.0 * n as f64 / secs / 1e9);
    let source = vec![1.0f32; n];
    let secs = median_secs(budget, || {
        black_box(black_box(&source).clone());
    });
    // One array read, one written.
    println!("{:<28} {:>9.1} GB/s", "memcpy 64MB (reference)", 2.0 * 4.0 * n as f64 / secs / 1e9);
}

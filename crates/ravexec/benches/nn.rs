//! Deep-learning kernel benchmark: conv2d and dense forward + backward throughput in `f32`.
//!
//! Run: `cargo bench -p ravexec --bench nn`. Shapes: conv2d on a batch of 32 NCHW images
//! 16x28x28 with 32 filters of 3x3, padding 1 (the middle layer of a small CNN); dense on 256
//! rows of 1024 -> 1024. Each figure is the median of repeated runs; GFLOP/s counts the
//! multiply-adds of the forward (1x) and backward (2x: input and weight gradients).
//! `scripts/bench_nn.sh` runs this and then the same shapes in PyTorch CPU and NumPy; the
//! README's Benchmarks section has one run of all three.

#![allow(clippy::print_stdout)]

use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};
use ravexec::nn::conv::{Conv2d, Window};
use ravexec::nn::dense;
use std::hint::black_box;
use std::time::Duration;

mod common;

use common::median_secs;

fn filled(shape: &[usize]) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect())
        .expect("sized")
}

/// Prints one layer's times; the backward does twice the forward's multiply-adds.
fn report(name: &str, forward: f64, backward: f64, macs: f64, items: usize, unit: &str) {
    println!(
        "{name}: forward {:.2} ms ({:.1} GFLOP/s), backward {:.2} ms ({:.1} GFLOP/s), {:.0} {unit}/s forward+backward",
        forward * 1e3,
        2.0 * macs / forward / 1e9,
        backward * 1e3,
        4.0 * macs / backward / 1e9,
        items as f64 / (forward + backward)
    );
}

fn main() {
    let budget = Duration::from_millis(2000);
    println!("threads: {}", rayon::current_num_threads());

    let (n, c, h, w, o, k) = (32, 16, 28, 28, 32, 3);
    let x: Array4<f32> = filled(&[n, c, h, w]).into_dimensionality().expect("4-D");
    let weight: Array4<f32> = filled(&[o, c, k, k]).into_dimensionality().expect("4-D");
    let bias: Array1<f32> = filled(&[o]).into_dimensionality().expect("1-D");
    let window = Window { kernel: [k, k], stride: [1, 1], padding: [1, 1], dilation: [1, 1] };
    let conv = Conv2d { window, groups: 1 };
    let y = conv.forward(&x.view(), &weight.view(), Some(&bias.view())).expect("conv forward");
    let forward = median_secs(budget, || {
        black_box(conv.forward(&x.view(), &weight.view(), Some(&bias.view())).expect("conv forward"));
    });
    let backward = median_secs(budget, || {
        black_box(conv.backward(&x.view(), &weight.view(), true, &y.view()).expect("conv backward"));
    });
    let macs = (n * o * h * w * c * k * k) as f64;
    report(&format!("conv2d {n}x{c}x{h}x{w} -> {o} (3x3)"), forward, backward, macs, n, "images");

    let (rows, inputs, units) = (256, 1024, 1024);
    let xd = filled(&[rows, inputs]);
    let wd: Array2<f32> = filled(&[inputs, units]).into_dimensionality().expect("2-D");
    let bd: Array1<f32> = filled(&[units]).into_dimensionality().expect("1-D");
    let yd = dense::forward(&xd.view(), &wd.view(), Some(&bd.view())).expect("dense forward");
    let forward = median_secs(budget, || {
        black_box(dense::forward(&xd.view(), &wd.view(), Some(&bd.view())).expect("dense forward"));
    });
    let backward = median_secs(budget, || {
        black_box(dense::backward(&xd.view(), &wd.view(), true, &yd.view()).expect("dense backward"));
    });
    let macs = (rows * inputs * units) as f64;
    report(&format!("dense {rows}x{inputs} -> {units}"), forward, backward, macs, rows, "rows");
}

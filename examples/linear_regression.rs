//! Tutorial: linear regression by gradient descent, every step an op on the grid.
//!
//! What you will learn: writing an iterative algorithm as a graph (each step's weights are
//! ops that depend on the previous step's), that ravsock runs such dependent chains as
//! windows on one provider, and how the answer compares with the closed form.
//!
//! What to start: ravsock and a provider, as for `hello_graph` (or `bash scripts/demo.sh`).
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run -p examples --example linear_regression`
//!
//! Expected output (numbers vary in the last digits):
//! ```text
//! 300 steps (1808 ops) on the grid in 0.29 s
//! gradient descent: intercept 1.49, slope 3.01, mse 0.0134
//! closed form:      intercept 1.49, slope 3.01
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result};
use ndarray::{Array1, Array2};
use ravop::ops::{ReduceParams, TransposeParams};
use ravop::{BlockingClient, Graph};

fn main() -> Result<()> {
    // RAVSOCK_URL and RAVSOCK_TOKEN (or the original's RAVENVERSE_URL and TOKEN), from the
    // environment or a .env file.
    let client = BlockingClient::from_env()?;

    // Data: y = 1.5 + 3x + a little deterministic noise, with a column of ones for the bias.
    let n = 200;
    let xs: Vec<f64> = (0..n).map(|i| i as f64 / n as f64).collect();
    let noise = |i: usize| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 0.4;
    let design = Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { 1.0 } else { xs[i] });
    let target = Array1::from_shape_fn(n, |i| 1.5 + 3.0 * xs[i] + noise(i));

    // Each step: w ← w − lr · (2/n) · Xᵀ(Xw − y). Five ops per step, each step depending on the last.
    let steps = 300;
    let graph = Graph::new("linear regression");
    let x = graph.t(design.clone().into_dyn());
    let y = graph.t(target.clone().into_dyn());
    let xt = x.transpose(TransposeParams::default());
    let mut w = graph.t(vec![0.0, 0.0]);
    let rate = 0.5 * 2.0 / n as f64;
    for _ in 0..steps {
        let residual = x.matmul(&w) - &y;
        w = &w - &(xt.matmul(&residual) * rate);
    }
    w.persist("weights");
    let residual = x.matmul(&w) - &y;
    residual.square().mean(ReduceParams::all()).persist("mse");

    let started = std::time::Instant::now();
    let id = client.run(&graph, |_| {})?;
    println!("{steps} steps ({} ops) on the grid in {:.2} s", graph.len(), started.elapsed().as_secs_f64());
    let weights = client.fetch(id, "weights")?.as_tensor().context("a tensor")?.to_f64_array();
    let mse = client.fetch(id, "mse")?.as_tensor().context("a tensor")?.to_f64_array().sum();
    println!("gradient descent: intercept {:.2}, slope {:.2}, mse {mse:.4}", weights[0], weights[1]);

    // The same fit in closed form, locally, for comparison: solve the 2×2 normal equations.
    let (sx, sy) = (xs.iter().sum::<f64>(), target.sum());
    let sxx: f64 = xs.iter().map(|v| v * v).sum();
    let sxy: f64 = xs.iter().zip(target.iter()).map(|(a, b)| a * b).sum();
    let slope = (n as f64 * sxy - sx * sy) / (n as f64 * sxx - sx * sx);
    println!("closed form:      intercept {:.2}, slope {:.2}", (sy - slope * sx) / n as f64, slope);
    Ok(())
}

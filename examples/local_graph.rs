//! Tutorial: build a graph of tensor ops and run it on this machine.
//!
//! What you will learn: creating constants with `graph.t(...)`, combining them with operators
//! and catalogue methods (reductions, linear algebra, indexing with NumPy-style subscripts),
//! marking results with `persist`, and running everything with the `LocalExecutor`, which
//! is the same kernel code that providers run.
//!
//! What to start: nothing. This example runs in-process.
//!
//! Run: `cargo run --release -p examples --example local_graph`
//!
//! Expected output (values rounded):
//! ```text
//! c = [6.0, 24.0, 10.0]
//! column means = [2.5, 3.5, 4.5]
//! least-squares fit: slope 2.000, intercept 1.000
//! every other row, last column = [3.0, 9.0]
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::Result;
use ndarray::array;
use ravop::ops::{ReduceParams, TransposeParams};
use ravop::{Graph, LocalExecutor};

fn main() -> Result<()> {
    // A graph records ops; nothing is computed until it runs.
    let graph = Graph::new("local tour");

    // The original RDF's hello world: [1, 2, 3] + [5, 22, 7].
    let a = graph.t(vec![1.0, 2.0, 3.0]);
    let b = graph.t(vec![5.0, 22.0, 7.0]);
    (&a + &b).persist("c");

    // Reductions take typed params: here the mean of each column.
    let m = graph.t(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    m.mean(ReduceParams::axis(0)).persist("column_means");

    // Least squares in closed form, (XᵀX)⁻¹Xᵀy, for y = 2x + 1.
    let x = graph.t(array![[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 3.0]]);
    let y = graph.t(vec![1.0, 3.0, 5.0, 7.0]);
    let xt = x.transpose(TransposeParams::default());
    xt.matmul(&x).inv().matmul(&xt).matmul(&y).persist("coefficients");

    // NumPy-style subscripts are parsed into a typed expression, never evaluated as code.
    let grid = graph.t(array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
    grid.index("[::2, -1]").persist("corners");

    // Run every op and read the persisted results back as ndarrays.
    let results = LocalExecutor::default().run(&graph)?;
    println!("c = {:?}", results.array::<f64>("c")?.into_raw_vec_and_offset().0);
    println!("column means = {:?}", results.array::<f64>("column_means")?.into_raw_vec_and_offset().0);
    let coefficients = results.array::<f64>("coefficients")?;
    println!("least-squares fit: slope {:.3}, intercept {:.3}", coefficients[1], coefficients[0]);
    println!("every other row, last column = {:?}", results.array::<f64>("corners")?.into_raw_vec_and_offset().0);
    Ok(())
}

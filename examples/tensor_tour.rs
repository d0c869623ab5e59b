//! Tutorial: a tour of the tensor ops, computed on the grid.
//!
//! What you will learn: the families of the op catalogue (arithmetic, reductions, statistics,
//! comparisons, linear algebra, shape and indexing, sorting) as `ravop` methods with typed
//! params, and that a graph runs on providers exactly as it would locally.
//!
//! What to start: ravsock and a provider, as for `hello_graph` (or `bash scripts/demo.sh`).
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run -p examples --example tensor_tour`
//!
//! Expected output:
//! ```text
//! m + 10            = [13.0, 11.0, 12.0, 19.0, 17.0, 18.0]
//! row sums          = [6.0, 24.0]
//! max, argmax       = 9, 3
//! std, median       = 3.109, 5.000
//! m > 2.5           = [true, false, false, true, true, true]
//! mᵀm               = [90.0, 66.0, 78.0, 66.0, 50.0, 58.0, 78.0, 58.0, 68.0]
//! row 1 reversed    = [8.0, 7.0, 9.0]
//! each row sorted   = [1.0, 2.0, 3.0, 7.0, 8.0, 9.0]
//! clipped to [2, 8] = [3.0, 2.0, 2.0, 8.0, 7.0, 8.0]
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result};
use ndarray::array;
use ravop::ops::{ArgParams, ClipParams, ReduceParams, SortParams, StatParams, TransposeParams};
use ravop::{BlockingClient, Graph};

fn main() -> Result<()> {
    // RAVSOCK_URL and RAVSOCK_TOKEN (or the original's RAVENVERSE_URL and TOKEN), from the
    // environment or a .env file.
    let client = BlockingClient::from_env()?;

    let graph = Graph::new("tensor tour");
    let m = graph.t(array![[3.0, 1.0, 2.0], [9.0, 7.0, 8.0]]);
    // Arithmetic broadcasts like NumPy: a scalar meets every element.
    (&m + 10.0).persist("plus_ten");
    // Reductions and statistics take typed params (axis, keepdims, ddof, ...).
    m.sum(ReduceParams::axis(1)).persist("row_sums");
    m.max(ReduceParams::all()).persist("max");
    m.argmax(ArgParams::default()).persist("argmax");
    m.std(StatParams::default()).persist("std");
    m.median(ReduceParams::all()).persist("median");
    // Comparisons give boolean tensors.
    m.greater(&graph.scalar(2.5)).persist("greater");
    // Linear algebra.
    m.transpose(TransposeParams::default()).matmul(&m).persist("gram");
    // NumPy subscripts, parsed into a typed index (never evaluated as code).
    m.index("[1, ::-1]").persist("row_reversed");
    m.sort(SortParams::default()).persist("sorted");
    let bounds = ClipParams { lower_limit: Some(2.0.into()), upper_limit: Some(8.0.into()) };
    m.clip(bounds).persist("clipped");

    let id = client.run(&graph, |_| {})?;
    let get = |name: &str| -> Result<Vec<f64>> {
        let value = client.fetch(id, name)?;
        Ok(value.as_tensor().context("a tensor")?.to_f64_array().into_raw_vec_and_offset().0)
    };
    println!("m + 10            = {:?}", get("plus_ten")?);
    println!("row sums          = {:?}", get("row_sums")?);
    println!("max, argmax       = {}, {}", get("max")?[0], get("argmax")?[0]);
    println!("std, median       = {:.3}, {:.3}", get("std")?[0], get("median")?[0]);
    let greater: Vec<bool> = get("greater")?.iter().map(|&v| v != 0.0).collect();
    println!("m > 2.5           = {greater:?}");
    println!("mᵀm               = {:?}", get("gram")?);
    println!("row 1 reversed    = {:?}", get("row_reversed")?);
    println!("each row sorted   = {:?}", get("sorted")?);
    println!("clipped to [2, 8] = {:?}", get("clipped")?);
    Ok(())
}

//! Tutorial: run an ONNX model over batches of data on the grid.
//!
//! What you will learn: uploading a whole model as a graph node (`Graph::model`, the original's
//! `R.model()`), running it on batches with `infer` (the `forward_pass` op: ONNX inference
//! with tract on the providers; training whole models is out of scope, the `forward_pass_*`
//! layers train, see `train_mlp`), and using the model's outputs in later ops. The model is
//! `examples/data/tiny_mlp.onnx`, a 4 -> 8 -> 3 softmax classifier made by
//! `scripts/gen_onnx_models.py`; pass another file's path as the first argument to run yours
//! (one input with a batch axis; the batch is converted to the type the model declares).
//!
//! What to start: ravsock and one or more providers built with ONNX support:
//! `cargo run --release -p ravpy --features onnx -- participate --token <provider token>`
//! (`RAVEN_ONNX=1 bash scripts/demo.sh` does it all). ravsock gives ONNX graphs only to such
//! providers; others keep serving other graphs. Without `RAVSOCK_TOKEN` the example runs
//! in-process, which needs the feature here: `cargo run -p examples --features onnx --example
//! onnx_inference`.
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run -p examples --example onnx_inference`
//!
//! Expected output:
//! ```text
//! model: 532 bytes, 4 batches of 8 rows
//! batch 0: classes [1, 1, 1, 2, 0, 0, 0, 1], first row [0.3893, 0.5870, 0.0237]
//! batch 1: classes [1, 1, 0, 0, 0, 1, 1, 1], first row [0.0003, 0.9996, 0.0001]
//! batch 2: classes [2, 0, 0, 0, 1, 1, 1, 0], first row [0.3998, 0.1547, 0.4455]
//! batch 3: classes [0, 0, 1, 1, 1, 2, 0, 0], first row [0.9769, 0.0150, 0.0082]
//! rows per class over all batches: [14, 15, 3]
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result};
use ndarray::Array2;
use ravop::Graph;
use ravop::ops::{ArgParams, BincountParams};

const BATCHES: usize = 4;
const ROWS: usize = 8;

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/tiny_mlp.onnx").to_string());
    let bytes = std::fs::read(&path).with_context(|| format!("reading the model {path}"))?;
    println!("model: {} bytes, {BATCHES} batches of {ROWS} rows", bytes.len());

    let graph = Graph::new("onnx-inference");
    // The model travels once, as a node; every batch's forward_pass refers to it.
    let model = graph.model(bytes);
    let mut classes = Vec::new();
    for batch in 0..BATCHES {
        let x = Array2::from_shape_fn((ROWS, 4), |(i, j)| (((batch * ROWS + i) * 4 + j) as f64 * 2.9).sin() * 2.0);
        let probabilities = graph.t(x.into_dyn()).infer(&model);
        probabilities.persist(format!("probabilities-{batch}"));
        let class = probabilities.argmax(ArgParams { axis: Some(1), keepdims: false });
        class.persist(format!("class-{batch}"));
        classes.push(class);
    }
    // Later ops use the outputs like any other value: count the predicted classes.
    let all = graph.concat(&classes.iter().collect::<Vec<_>>(), Default::default());
    all.bincount(BincountParams { minlength: 3 }).persist("per-class");

    let ran = examples::run_on_grid_or_here(&graph)?;
    for batch in 0..BATCHES {
        let class = ran.fetch(&format!("class-{batch}"))?.as_tensor().context("classes")?.to_f64_array();
        let probabilities =
            ran.fetch(&format!("probabilities-{batch}"))?.as_tensor().context("probabilities")?.to_f64_array();
        let first: Vec<String> = probabilities.iter().take(3).map(|p| format!("{p:.4}")).collect();
        let class: Vec<i64> = class.iter().map(|&c| c as i64).collect();
        println!("batch {batch}: classes {class:?}, first row [{}]", first.join(", "));
    }
    let per_class: Vec<i64> =
        ran.fetch("per-class")?.as_tensor().context("counts")?.to_f64_array().iter().map(|&c| c as i64).collect();
    println!("rows per class over all batches: {per_class:?}");
    Ok(())
}

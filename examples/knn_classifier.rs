//! Tutorial: classify with k nearest neighbours, fitted and used on the grid.
//!
//! What you will learn: fitting a classic-ML model with an op (`knn_classifier` on `(X, y)`),
//! using the fitted model in later ops of the same graph (`predict`, `score`), and reading the
//! model itself back as a typed value (`FittedModel`: its parameters, never a pickle).
//!
//! What to start: ravsock and one or more providers, as in `hello_graph` (or
//! `bash scripts/demo.sh`). Without `RAVSOCK_TOKEN` the example runs in-process with the
//! `LocalExecutor` instead, with the same results.
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run -p examples --example knn_classifier`
//!
//! Expected output:
//! ```text
//! model: knn_classifier with k = 5, 120 training samples
//! test accuracy: 1.0000
//! first predictions: [0, 1, 2, 0, 1, 2, 0, 1] (truth [0, 1, 2, 0, 1, 2, 0, 1])
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result};
use ndarray::{Array1, Array2};
use ravop::ops::KnnParams;
use ravop::{FittedModel, Graph};

/// Three classes around three centres in the plane, with a deterministic wobble.
fn samples(n: usize, offset: usize) -> (Array2<f64>, Array1<f64>) {
    let centres = [[0.0, 0.0], [3.0, 0.5], [1.0, 3.0]];
    let x = Array2::from_shape_fn((n, 2), |(i, j)| {
        let k = (i + offset) as f64;
        centres[i % 3][j] + 0.9 * (k * 1.7 + j as f64 * 2.3).sin() * (k * 0.31).cos()
    });
    let y = Array1::from_iter((0..n).map(|i| (i % 3) as f64));
    (x, y)
}

fn main() -> Result<()> {
    let (x_train, y_train) = samples(120, 0);
    let (x_test, y_test) = samples(30, 500);
    let graph = Graph::new("knn-classifier");
    let (x, y) = (graph.t(x_train.into_dyn()), graph.t(y_train.into_dyn()));
    let (x_new, y_new) = (graph.t(x_test.into_dyn()), graph.t(y_test.clone().into_dyn()));
    // The fit op's value is the model; predict and score take it as their first input.
    let model = x.knn_classifier(&y, KnnParams { k: 5 });
    model.persist("model");
    model.predict(&x_new).persist("predictions");
    model.score(&x_new, &y_new).persist("accuracy");

    let ran = examples::run_on_grid_or_here(&graph)?;
    let fetch = |name: &str| ran.fetch(name);
    let model = FittedModel::from_value(&fetch("model")?.to_wire())?;
    if let FittedModel::KnnClassifier { k, x, .. } = &model {
        println!("model: {} with k = {k}, {} training samples", model.name(), x.shape()[0]);
    }
    let accuracy = fetch("accuracy")?.as_tensor().context("a score is a tensor")?.to_f64_array().sum();
    println!("test accuracy: {accuracy:.4}");
    let predicted = fetch("predictions")?.as_tensor().context("predictions are a tensor")?.to_f64_array();
    let first = |a: &mut dyn Iterator<Item = f64>| a.take(8).map(|v| v as i64).collect::<Vec<_>>();
    println!(
        "first predictions: {:?} (truth {:?})",
        first(&mut predicted.iter().copied()),
        first(&mut y_test.iter().copied())
    );
    Ok(())
}

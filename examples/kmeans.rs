//! Tutorial: cluster points with k-means on the grid.
//!
//! What you will learn: fitting `kmeans` on `X` with a seed (the fit is reproducible: same
//! seed, same centres, on any provider), assigning points to clusters with `predict`, scoring a
//! clustering (`score` is minus the inertia, as scikit-learn's), and reading the centres from
//! the fitted model.
//!
//! What to start: ravsock and one or more providers, as in `hello_graph` (or
//! `bash scripts/demo.sh`). Without `RAVSOCK_TOKEN` the example runs in-process with the
//! `LocalExecutor` instead, with the same results.
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run -p examples --example kmeans`
//!
//! Expected output (the centres found are the four generating corners):
//! ```text
//! centre 0: (0.001, 0.016)
//! centre 1: (0.017, 6.009)
//! centre 2: (6.011, 5.997)
//! centre 3: (6.013, 0.017)
//! inertia: 102.168 (score -102.168)
//! cluster sizes: [50, 50, 50, 50]
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result};
use ndarray::Array2;
use ravop::ops::KMeansParams;
use ravop::{FittedModel, Graph, Tensor};

/// 200 points around the corners of a square of side 6, with a deterministic wobble.
fn points() -> Array2<f64> {
    let corners = [[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]];
    Array2::from_shape_fn((200, 2), |(i, j)| {
        let k = i as f64;
        corners[i % 4][j] + (k * 0.77 + j as f64).sin() * (k * 0.13).cos()
    })
}

fn main() -> Result<()> {
    let graph = Graph::new("kmeans");
    let x = graph.t(points().into_dyn());
    let model = x.kmeans(KMeansParams { n_clusters: 4, random_state: 42 });
    model.persist("model");
    model.predict(&x).persist("clusters");
    model.score(&x, &x).persist("score");

    let ran = examples::run_on_grid_or_here(&graph)?;
    let fetch = |name: &str| ran.fetch(name);
    let FittedModel::Kmeans { centroids, inertia } = FittedModel::from_value(&fetch("model")?.to_wire())? else {
        anyhow::bail!("kmeans returned another kind of model");
    };
    for (i, centre) in Tensor::from_data(&centroids).to_f64_array().rows().into_iter().enumerate() {
        println!("centre {i}: ({:.3}, {:.3})", centre[0], centre[1]);
    }
    let score = fetch("score")?.as_tensor().context("a score is a tensor")?.to_f64_array().sum();
    println!("inertia: {inertia:.3} (score {score:.3})");
    let clusters = fetch("clusters")?.as_tensor().context("clusters are a tensor")?.to_f64_array();
    let sizes: Vec<usize> = (0..4).map(|c| clusters.iter().filter(|&&v| v == c as f64).count()).collect();
    println!("cluster sizes: {sizes:?}");
    Ok(())
}

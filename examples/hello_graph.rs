//! Tutorial: the original RDF's hello world, `[1, 2, 3] + [5, 22, 7]`, computed on the grid.
//!
//! What you will learn: connecting a `ravop::Client` to ravsock, submitting a graph built
//! with the SDK, following its progress, and fetching a persisted result.
//!
//! What to start (or run `bash scripts/demo.sh`, which does all of it):
//! 1. `cargo run -p ravsock -- token create --name me --role requester` (and once more with
//!    `--name worker --role provider`), keep both tokens;
//! 2. `cargo run -p ravsock`;
//! 3. `cargo run -p ravpy -- participate --token <provider token>`.
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run -p examples --example hello_graph`
//!
//! Expected output:
//! ```text
//! graph#1: 3/3 ops computed
//! c = [6.0, 24.0, 10.0]
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result};
use ravop::{BlockingClient, Graph, OpStatus};

fn main() -> Result<()> {
    // Where ravsock listens and who we are: RAVSOCK_URL and RAVSOCK_TOKEN (or the original's
    // RAVENVERSE_URL and TOKEN), from the environment or a .env file.
    let client = BlockingClient::from_env()?;

    // Build the graph exactly as for a local run.
    let graph = Graph::new("hello");
    let a = graph.t(vec![1.0, 2.0, 3.0]);
    let b = graph.t(vec![5.0, 22.0, 7.0]);
    (&a + &b).persist("c");

    // Submit, execute and wait; the callback sees every progress change.
    let id = client.run(&graph, |progress| {
        let done = progress.ops.get(&OpStatus::Computed).copied().unwrap_or(0);
        let total: u64 = progress.ops.values().sum();
        println!("{}: {done}/{total} ops computed", progress.graph_id);
    })?;

    // Fetch the persisted result by name.
    let c = client.fetch(id, "c")?;
    println!("c = {:?}", c.as_tensor().context("c is a tensor")?.to_f64_array().into_raw_vec_and_offset().0);
    Ok(())
}

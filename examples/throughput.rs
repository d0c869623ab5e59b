//! Tutorial: submit 10,000 small independent ops and measure the grid's throughput.
//!
//! What you will learn: that graphs of many tiny ops are cheap on Raven (ops are batched into
//! subgraphs, uploaded in chunks, and computed by every provider in parallel), and how to time
//! the phases of a run.
//!
//! What to start: ravsock and one or more providers, as for `hello_graph` (or `bash
//! scripts/demo.sh`, which runs this example too).
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run --release -p examples --example throughput`
//! (set `OPS` to change the count).
//!
//! Expected output (numbers vary):
//! ```text
//! 10000 ops: built in 0.01 s, uploaded in 0.3 s, computed in 0.9 s: 11000 ops/s end to end
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result};
use ravop::{BlockingClient, Graph};
use std::time::Instant;

fn main() -> Result<()> {
    let ops: usize = std::env::var("OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    // RAVSOCK_URL and RAVSOCK_TOKEN (or the original's RAVENVERSE_URL and TOKEN), from the
    // environment or a .env file.
    let client = BlockingClient::from_env()?;

    // Two constants and `ops` independent scalar additions of them.
    let start = Instant::now();
    let graph = Graph::new("throughput");
    let a = graph.scalar(1.5);
    let b = graph.scalar(2.5);
    for i in 0..ops {
        let sum = &a + &b;
        if i % 1000 == 0 {
            sum.persist(format!("sum{i}"));
        }
    }
    let built = start.elapsed();

    // Submit and execute, timing the upload apart from the computation.
    let id = client.submit(&graph)?;
    let uploaded = start.elapsed();
    client.execute_and_wait(id, |_| {})?;
    let computed = start.elapsed();

    // Check one result and report.
    let value = client.fetch(id, "sum0")?;
    let sum = value.as_tensor().context("a tensor")?.to_f64_array().iter().sum::<f64>();
    anyhow::ensure!(sum == 4.0, "1.5 + 2.5 came back as {sum}");
    println!(
        "{ops} ops: built in {:.2} s, uploaded in {:.2} s, computed in {:.2} s: {:.0} ops/s end to end",
        built.as_secs_f64(),
        (uploaded - built).as_secs_f64(),
        (computed - uploaded).as_secs_f64(),
        ops as f64 / computed.as_secs_f64()
    );
    Ok(())
}

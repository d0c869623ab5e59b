//! Tutorial: sort a big array by sorting its slices in parallel on the providers.
//!
//! What you will learn: the map-then-combine shape (independent ops spread over every
//! provider, then one op that needs all of them), slicing with subscripts, and checking a
//! distributed answer locally.
//!
//! What to start: ravsock and one or more providers, as for `hello_graph` (or `bash
//! scripts/demo.sh`).
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run --release -p examples --example sorter`
//! (set `SLICES` and `LEN` to change the shape).
//!
//! Expected output (times vary):
//! ```text
//! sorted 1000000 values in 16 slices on the grid in 0.9 s: first [0.0, 1.0, 2.0], last 999999
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result, ensure};
use ravop::ops::{JoinParams, SortParams};
use ravop::{BlockingClient, Graph};

fn main() -> Result<()> {
    // RAVSOCK_URL and RAVSOCK_TOKEN (or the original's RAVENVERSE_URL and TOKEN), from the
    // environment or a .env file.
    let client = BlockingClient::from_env()?;
    let slices: usize = std::env::var("SLICES").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let len: usize = std::env::var("LEN").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    ensure!(slices > 0 && len.is_multiple_of(slices), "LEN must be a multiple of SLICES");

    // A permutation of 0..len (multiplying by a number coprime with len shuffles it).
    let step = (len / 2..).find(|s| gcd(*s, len) == 1).context("a coprime step")?;
    let values: Vec<f64> = (0..len).map(|i| ((i * step) % len) as f64).collect();

    // Map: each slice is sorted by whichever provider gets it. Combine: concatenate the sorted
    // runs and sort once more (a merge of sorted runs is the cheap case for the final sort).
    let graph = Graph::new("sorter");
    let data = graph.t(values);
    let part = len / slices;
    let runs: Vec<_> = (0..slices)
        .map(|k| data.index(format!("[{}:{}]", k * part, (k + 1) * part).as_str()).sort(SortParams::default()))
        .collect();
    let refs: Vec<&_> = runs.iter().collect();
    graph.concat(&refs, JoinParams::default()).sort(SortParams::default()).persist("sorted");

    let started = std::time::Instant::now();
    let id = client.run(&graph, |_| {})?;
    let sorted = client.fetch(id, "sorted")?.as_tensor().context("a tensor")?.to_f64_array();
    let took = started.elapsed().as_secs_f64();
    ensure!(sorted.iter().enumerate().all(|(i, &v)| v == i as f64), "the grid's answer is not 0..len in order");
    println!(
        "sorted {len} values in {slices} slices on the grid in {took:.1} s: first {:?}, last {}",
        sorted.iter().take(3).collect::<Vec<_>>(),
        sorted[len - 1]
    );
    Ok(())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

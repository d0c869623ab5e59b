//! Tutorial: federated analytics. The mean, variance and deviation of columns of CSV files
//! that never leave the providers' machines, encrypted so that the server sees only
//! ciphertexts.
//!
//! What you will learn: writing rules (which columns, their bounds, how many providers),
//! asking for `federated_*` statistics, and reading the answer once enough providers have
//! contributed. Each provider keeps only the rows within every bound (inclusive) and sends
//! only counts and sums; in encrypted mode (this example built with `--features he`) it
//! encrypts them under this program's public key, ravsock adds the ciphertexts without being
//! able to read them, and only this program can decrypt the total.
//!
//! What to start (or run `bash scripts/demo.sh`, which does all of it):
//! 1. tokens: one requester, and three providers (`ravsock token create --role provider`
//!    three times: each provider account contributes once per query);
//! 2. `cargo run --release -p ravsock --features he` (without `he`: plain mode only);
//! 3. this example, which prints the graph id and waits;
//! 4. for each silo: `cargo run --release -p ravpy --features he -- federated --token <provider
//!    token> --graph <id> --file examples/data/clinic-a.csv` (then clinic-b, clinic-c).
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run --release -p examples --features he
//! --example federated_analytics` (set `RAVFED_PRIVACY=plain` for plain mode: faster, but
//! ravsock sees each provider's sums).
//!
//! Expected output (the numbers are those of examples/data):
//! ```text
//! graph 1 is open (encrypted): waiting for 3 providers
//! mean age over 3 providers: 47.9200
//! variance of salary: 0.9770
//! deviation of age, fund, salary: [17.0878, 7438.7448, 0.9884]
//! mean fund (clinic-b has no fund column): 22333.69
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::Result;
use ravop::ops::FederatedParams;
use ravop::{Client, Privacy, Rules, TensorValue};

fn column(name: &str) -> FederatedParams {
    FederatedParams { column: Some(name.into()) }
}

fn numbers(value: &TensorValue) -> Vec<f64> {
    match value {
        TensorValue::Tensor(tensor) => tensor.to_f64_array().iter().copied().collect(),
        TensorValue::List(_) => Vec::new(),
    }
}

async fn run() -> Result<()> {
    // RAVSOCK_URL and RAVSOCK_TOKEN (or the original's RAVENVERSE_URL and TOKEN), from the
    // environment or a .env file.
    let client = Client::from_env().await?;

    // Encrypted when this example has the `he` feature, unless asked for plain.
    let plain = !cfg!(feature = "he") || std::env::var("RAVFED_PRIVACY").is_ok_and(|p| p == "plain");
    let privacy = if plain { Privacy::Plain } else { Privacy::Encrypted };

    // The rules: a row counts only if its age is in [18, 80] and its salary in [1, 5]; `fund`
    // has no bounds and some files lack it. At least 3 providers, at most 10.
    let rules = Rules::new(3)
        .column("age", Some(18.0), Some(80.0))
        .column("salary", Some(1.0), Some(5.0))
        .optional_column("fund")
        .max_clients(10)
        .privacy(privacy);
    let graph = rules.graph("clinics");
    graph.federated_mean(column("age")).persist("mean_age");
    graph.federated_variance(column("salary")).persist("variance_salary");
    // No column: one value per rule column, sorted by name.
    graph.federated_standard_deviation(FederatedParams::default()).persist("deviations");
    graph.federated_mean(column("fund")).persist("mean_fund");

    // In encrypted mode this makes the keys first (a few seconds in release).
    let mut query = client.federated(&graph).await?;
    println!(
        "graph {} is open ({}): waiting for 3 providers",
        query.graph_id().0,
        format!("{privacy:?}").to_lowercase()
    );

    // The first fetch waits for the providers (with a progress bar), closes the query and
    // decrypts the total; the others answer from it.
    let mean_age = query.fetch("mean_age", ravop::federated_progress_bar()).await?;
    println!("mean age over {} providers: {:.4}", query.contributors().unwrap_or(0), numbers(&mean_age)[0]);
    let variance = query.fetch("variance_salary", |_| {}).await?;
    println!("variance of salary: {:.4}", numbers(&variance)[0]);
    let deviations = query.fetch("deviations", |_| {}).await?;
    println!("deviation of age, fund, salary: {:.4?}", numbers(&deviations));
    let fund = query.fetch("mean_fund", |_| {}).await?;
    println!("mean fund (clinic-b has no fund column): {:.2}", numbers(&fund)[0]);
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(run())
}

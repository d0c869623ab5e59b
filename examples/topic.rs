//! Tutorial: a topic (Allora's topics). A question asked again every few seconds, answered
//! in rounds by workers that each ask their own model server, with a value per round and a
//! reward split by accuracy once the truth is known.
//!
//! What you will learn: opening a topic with a cadence, a deadline per round, the number of
//! workers that closes a round early and an aggregation; reading each round as it closes;
//! posting a round's ground truth to score its answers and pay the workers; closing the topic.
//!
//! What to start (or run `bash scripts/demo.sh`, which does all of it):
//! 1. tokens: one requester, and one provider per worker (`ravsock token create --role
//!    provider`: a round takes one answer per account);
//! 2. `cargo run --release -p ravsock -- --accounting on` and units for the graphs and rewards:
//!    `ravsock account credit --name <requester> --amount 10000` (without `--accounting on`
//!    the shares are only recorded);
//! 3. this example, which prints the topic id and waits for rounds;
//! 4. for each worker: a model server (any HTTP server whose GET answers a JSON number, or
//!    `{"value": 41.7}`; the demo serves a file with `python3 -m http.server`) and a worker
//!    node with a `[[topics]]` entry naming the topic and the model server's URL
//!    (`examples/worker.toml` has one): `ravpy run --config worker.toml`.
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run --release -p examples --example topic`.
//!
//! Expected output (the values are those of the demo's two model servers, 41.5 and 42.5, and
//! its workers' accounts, topic-a and topic-b; a round that closed before both workers were up
//! shows fewer answers, or "no answers", and is not counted):
//! ```text
//! topic 1 is open: a round every 2 s, 1.5 s for answers, closed early by 2 answers
//! round 1: 42.0000 (median of 2 answers)
//! round 2: 42.0000 (median of 2 answers)
//! round 3: 42.0000 (median of 2 answers)
//! round 1, truth 42.4: topic-a 495 units, topic-b 505 units
//! the truth paid 1000 units from demo's balance
//! topic 1 closed after 3 rounds
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result, bail};
use ravop::{Aggregation, Client, TopicSpec};

/// Rounds with every worker's answer to wait for.
const FULL_ROUNDS: usize = 3;
/// Rounds to wait for in all before giving up (workers that never come).
const MOST_ROUNDS: u64 = 60;

async fn run() -> Result<()> {
    // RAVSOCK_URL and RAVSOCK_TOKEN (or the original's RAVENVERSE_URL and TOKEN), from the
    // environment or a .env file.
    let client = Client::from_env().await?;
    let workers = std::env::var("TOPIC_WORKERS").ok().map(|n| n.parse()).transpose()?.unwrap_or(2);

    // A round every 2 s that takes answers for 1.5 s, or until `workers` answered; its value
    // is the median (one wild worker cannot move it); 1,000 units per round for its workers.
    let spec = TopicSpec {
        name: "price-in-2s".into(),
        cadence_ms: 2_000,
        deadline_ms: 1_500,
        workers,
        aggregation: Aggregation::Median,
        reward_per_round: 1_000,
    };
    let topic = client.open_topic(&spec).await?;
    println!(
        "topic {} is open: a round every {} s, {} s for answers, closed early by {workers} answers",
        topic.id.0,
        spec.cadence_ms as f64 / 1000.0,
        spec.deadline_ms as f64 / 1000.0
    );

    // Each round as it closes (a long poll per round, which the round's close answers;
    // `client.rounds(topic, 1..=10)` reads closed ones by range).
    let mut rounds = client.follow_rounds(topic.id, 1);
    let mut full = Vec::new();
    while full.len() < FULL_ROUNDS && rounds.position() <= MOST_ROUNDS {
        let Some(round) = rounds.next().await? else { break };
        match round.value {
            Some(value) => println!(
                "round {}: {value:.4} (median of {} answer{})",
                round.number,
                round.answers.len(),
                if round.answers.len() == 1 { "" } else { "s" }
            ),
            None => println!("round {}: no answers", round.number),
        }
        if round.answers.len() == workers as usize {
            full.push(round);
        }
    }
    let Some(first) = full.first() else {
        bail!("no round of {} got all {workers} answers: are the workers running?", topic.id);
    };

    // Later, the true value of the first full round becomes known: post it, and the round's
    // reward is split by each answer's accuracy (weight 1 / (1 + relative error)).
    let truth = 42.4;
    let before = client.balance().await?;
    let scored = client.post_truth(topic.id, first.number, truth).await.context("posting the truth")?;
    let shares: Vec<String> = scored.scores.iter().map(|s| format!("{} {} units", s.worker, s.reward)).collect();
    println!("round {}, truth {truth}: {}", scored.number, shares.join(", "));
    // With `ravsock --accounting on` (the demo's), the shares were paid from this account's
    // balance in the same transaction that stored the truth; a balance short of the reward
    // refuses the truth (402) and stores nothing. With accounting off nothing moves.
    let after = client.balance().await?;
    println!("the truth paid {} units from {}'s balance", before.available - after.available, after.account);

    let closed = client.close_topic(topic.id).await?;
    println!("topic {} closed after {} rounds", closed.id.0, closed.rounds);
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(run())
}

//! Tutorial: an open job and a compute group. A job limited to the group `lab` stays open
//! (`auto_close(false)`); a second client (another process would do the same with the job's
//! id) adds slices to it; the results are read back by range, and the job is closed.
//!
//! What you will learn: `compute_groups` (only providers that joined with `ravpy participate
//! --group lab:<secret>` get its slices; the first job naming a group sets its secret, stored
//! hashed), `auto_close(false)`, `Client::job(id)` from anywhere, `add_slices`, `results(range)`,
//! `close`, and the console lines and custom events slices send.
//!
//! What to start (or run `bash scripts/demo.sh`): ravsock and a provider with
//! `--group lab:$LAB_SECRET`; then this example with a requester token and the same
//! `LAB_SECRET`.
//!
//! Run: `RAVSOCK_TOKEN=<requester token> LAB_SECRET=<secret> cargo run --release -p examples
//! --example open_job`.
//!
//! Expected output (the job id is the server's):
//! ```text
//! job 2 is open to the group lab with 3 slices
//! added slices 3..6 from a second client
//! slices 2..5: [9.0, 16.0, 25.0]
//! slice 0 said: squaring (log); and emitted seen
//! job 2 closed: 6 computed, 0 failed
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result, bail};
use ravop::Client;
use ravop::jobs::{ComputeGroup, JobEvent, Outcome, WorkFunction, slice};

async fn run() -> Result<()> {
    let secret = std::env::var("LAB_SECRET").context("set LAB_SECRET, the compute group lab's secret")?;
    let module = wat::parse_str(include_str!("work/square.wat"))?;
    let client = Client::from_env().await?;
    let first: Vec<Vec<u8>> = (1..=3).map(|x| slice::f64(f64::from(x))).collect();
    let handle = client
        .compute_for(first, WorkFunction::wasm(module, "square"))
        .compute_groups([ComputeGroup::new("lab", secret)])
        .public("lab squares", "an open job of the lab group", "https://example.org/lab")
        .auto_close(false)
        .exec()
        .await?;
    println!("job {} is open to the group lab with 3 slices", handle.id().0);

    // A second client, knowing only the id.
    let other = Client::from_env().await?;
    let added = other.job(handle.id()).add_slices((4..=6).map(|x| slice::f64(f64::from(x)))).await?;
    println!("added slices {}..{} from a second client", added.first, added.first + added.count);

    // Events until every slice so far has an outcome; the first slice's console line and
    // custom event are shown.
    let mut events = handle.events();
    let mut done = 0;
    let mut said = None;
    while done < 6 {
        match events.next().await?.context("the job's events ended early")? {
            JobEvent::Result { .. } | JobEvent::Error { .. } => done += 1,
            JobEvent::Console { slice: 0, text, level } => said = Some(format!("{text} ({level:?})").to_lowercase()),
            JobEvent::Custom { slice: 0, name, .. } => {
                said = Some(format!("{}; and emitted {name}", said.unwrap_or_default()));
            }
            _ => {}
        }
    }
    let page = other.job(handle.id()).results(2..5).await?;
    let values: Vec<f64> = page
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Value(value) => Ok(slice::to_f64(&value.0)?),
            Outcome::Failed(failure) => bail!("slice {} failed: {failure}", r.slice),
            // `results` fetches a result kept as a file through ravftp before answering.
            Outcome::Stored { .. } => bail!("slice {}'s result was not fetched", r.slice),
        })
        .collect::<Result<_>>()?;
    println!("slices 2..5: {values:?}");
    if values != [9.0, 16.0, 25.0] {
        bail!("unexpected results {values:?}");
    }
    println!("slice 0 said: {}", said.unwrap_or_else(|| "nothing".into()));
    handle.close().await?;
    let results = handle.wait().await?;
    let failed = results.iter().filter(|r| r.is_err()).count();
    println!("job {} closed: {} computed, {failed} failed", handle.id().0, results.len() - failed);
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run())
}

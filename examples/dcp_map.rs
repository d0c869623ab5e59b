//! Tutorial: a job (DCP's `compute.for`, the Bifrost2 README's example): square 1 to 5 on the
//! grid's providers, print each result event as it arrives, and wait for `[1, 4, 9, 16, 25]`.
//!
//! What you will learn: a work function is a WebAssembly module (here written in the text
//! format, `examples/work/square.wat`; a Rust crate compiled with `--target
//! wasm32-unknown-unknown` works the same, see `wasm/square`), slices and results are bytes
//! (`ravop::jobs::slice` has JSON, tensor and f64 helpers), events arrive per slice, and
//! `local_exec` runs the same job in this process with the same events.
//!
//! What to start (or run `bash scripts/demo.sh`): ravsock, one or more providers (`ravpy
//! participate`), and this example with a requester token. Without a token it runs the job
//! in process only.
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run --release -p examples --example dcp_map`.
//!
//! Expected output (event order follows the providers; the job id is the server's):
//! ```text
//! job 1 accepted
//! result: slice 0 -> 1
//! result: slice 1 -> 4
//! result: slice 2 -> 9
//! result: slice 3 -> 16
//! result: slice 4 -> 25
//! [1.0, 4.0, 9.0, 16.0, 25.0]
//! the same as local_exec
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Result, bail};
use ravop::Client;
use ravop::jobs::{JobBuilder, JobEvent, SliceOutcome, WorkFunction, slice};

/// The work function, as WebAssembly.
fn square() -> Result<WorkFunction> {
    let module = wat::parse_str(include_str!("work/square.wat"))?;
    Ok(WorkFunction::wasm(module, "square"))
}

fn values(results: Vec<SliceOutcome>) -> Result<Vec<f64>> {
    results.into_iter().map(|r| Ok(slice::to_f64(&r.map_err(|failure| anyhow::anyhow!("{failure}"))?)?)).collect()
}

async fn run() -> Result<()> {
    let inputs: Vec<Vec<u8>> = (1..=5).map(|x| slice::f64(f64::from(x))).collect();
    let client = match Client::from_env().await {
        Ok(client) => client,
        Err(ravop::Error::NoToken) => {
            // No grid: the same job in this process.
            let run = JobBuilder::local(inputs, square()?).local_exec();
            println!("no token: ran in process: {:?}", values(run.results)?);
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    };
    let job = client.compute_for(inputs.clone(), square()?).public("squares", "square 1 to 5", "https://example.org");
    let handle = job.exec().await?;
    println!("job {} accepted", handle.id().0);
    let mut events = handle.events();
    while let Some(event) = events.next().await? {
        match event {
            JobEvent::Result { slice, value } => println!("result: slice {slice} -> {}", slice::to_f64(&value.0)?),
            JobEvent::Error { slice, failure } => println!("error: slice {slice}: {failure}"),
            JobEvent::Complete { counts, .. } if counts.failed > 0 => bail!("{} slices failed", counts.failed),
            // Console lines and custom events (`seen`) and the status: shown by the open-job
            // tutorial.
            _ => {}
        }
    }
    let results = values(handle.wait().await?)?;
    println!("{results:?}");
    let local = values(client.compute_for(inputs, square()?).local_exec().results)?;
    if results != local || results != [1.0, 4.0, 9.0, 16.0, 25.0] {
        bail!("the grid's results {results:?} differ from local_exec's {local:?}");
    }
    println!("the same as local_exec");
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run())
}

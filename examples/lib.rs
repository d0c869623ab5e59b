//! The tutorials are this package's `[[example]]` targets (see `Cargo.toml`); this library
//! holds what several of them share: running a graph on the grid when a token is given, or in
//! process otherwise.

use anyhow::Result;
use ravop::{BlockingClient, Graph, GraphId, LocalExecutor, Results, TensorValue};

/// Where a tutorial's graph was computed, and how to read its persisted results.
pub enum Ran {
    /// On the grid: ravsock at `RAVSOCK_URL` with the requester token in `RAVSOCK_TOKEN` (or
    /// the original's `RAVENVERSE_URL` and `TOKEN`).
    Grid { client: BlockingClient, id: GraphId },
    /// In process, with the `LocalExecutor` (same kernels, same numbers).
    Local(Results),
}

impl Ran {
    /// The persisted result `name`.
    pub fn fetch(&self, name: &str) -> Result<TensorValue> {
        Ok(match self {
            Ran::Grid { client, id } => client.fetch(*id, name)?,
            Ran::Local(results) => results.get(name)?.clone(),
        })
    }
}

/// Computes `graph` on the grid when a token is set (`RAVSOCK_TOKEN`, or the original's
/// `TOKEN`, in the environment or `.env`; printing the graph id), and in process otherwise.
pub fn run_on_grid_or_here(graph: &Graph) -> Result<Ran> {
    match BlockingClient::from_env() {
        Ok(client) => {
            let id = client.run(graph, |_| {})?;
            #[allow(clippy::print_stdout)] // Tutorials say where their graph ran.
            {
                println!("computed {id} on the grid");
            }
            Ok(Ran::Grid { client, id })
        }
        Err(ravop::Error::NoToken) => Ok(Ran::Local(LocalExecutor::default().run(graph)?)),
        Err(error) => Err(error.into()),
    }
}

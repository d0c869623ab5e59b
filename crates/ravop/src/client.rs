//! The requester's client for ravsock: submit a graph, execute it, follow its progress and
//! fetch persisted results.
//!
//! Port of ravop's `initialize`/`activate`/`execute`/`track_progress`/`fetch_persisting_op`
//! (§2.2) without the global singleton: the server allocates graph ids, ops go up in chunks of
//! [`CHUNK_OPS`] with the client's ids mapped to server ids, and waiting uses the server's
//! long-poll endpoint, which answers as soon as the graph changes. [`BlockingClient`] wraps the
//! async client for code without a runtime.

use crate::error::{Error, Result};
use crate::graph::Graph;
use ravexec::TensorValue;
use ravproto::messages::{CreateGraphResponse, ErrorBody, GraphProgress, OpChunkRequest, OpChunkResponse};
use ravproto::status::GraphStatus;
use ravproto::{GraphId, Value};
use serde::de::DeserializeOwned;

/// Ops per upload request.
pub const CHUNK_OPS: usize = 1000;

/// An async connection to ravsock.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// Connects to `url` (e.g. `http://127.0.0.1:9999`) and checks the token.
    pub async fn connect(url: &str, token: &str) -> Result<Client> {
        let client = Client {
            http: reqwest::Client::new(),
            base: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        };
        let _: Vec<GraphProgress> = client.get("/v1/graphs").await?;
        Ok(client)
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| Error::Transport(e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| Error::Transport(e.to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| Error::Transport(format!("unexpected reply: {e}")))
        } else {
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => {
                    Err(Error::Server { status: status.as_u16(), code: body.code, message: body.message, op: body.op })
                }
                Err(_) => Err(Error::Transport(format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)))),
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post<T: DeserializeOwned, B: serde::Serialize>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body)).await
    }

    /// Creates the graph on the server and uploads its ops; returns the server's id.
    pub async fn submit(&self, graph: &Graph) -> Result<GraphId> {
        graph.validate()?;
        let created: CreateGraphResponse = self.post("/v1/graphs", &graph.meta()).await?;
        let path = format!("/v1/graphs/{}/ops", created.graph_id.0);
        for chunk in graph.to_records().chunks(CHUNK_OPS) {
            let _: OpChunkResponse = self.post(&path, &OpChunkRequest { ops: chunk.to_vec() }).await?;
        }
        Ok(created.graph_id)
    }

    /// Starts computing a submitted graph.
    pub async fn execute(&self, graph: GraphId) -> Result<GraphProgress> {
        self.post(&format!("/v1/graphs/{}/execute", graph.0), &()).await
    }

    /// The graph's status and op counts.
    pub async fn progress(&self, graph: GraphId) -> Result<GraphProgress> {
        self.get(&format!("/v1/graphs/{}", graph.0)).await
    }

    /// Every graph of this requester.
    pub async fn list_graphs(&self) -> Result<Vec<GraphProgress>> {
        self.get("/v1/graphs").await
    }

    /// Cancels a graph.
    pub async fn cancel(&self, graph: GraphId) -> Result<GraphProgress> {
        self.post(&format!("/v1/graphs/{}/cancel", graph.0), &()).await
    }

    /// Waits until the graph is computed, calling `on_progress` on every change; a failed or
    /// cancelled graph is an error naming the op and the reason.
    pub async fn wait(&self, graph: GraphId, mut on_progress: impl FnMut(&GraphProgress)) -> Result<GraphProgress> {
        loop {
            let progress: GraphProgress = self.get(&format!("/v1/graphs/{}/wait?timeout_ms=10000", graph.0)).await?;
            on_progress(&progress);
            match progress.status {
                GraphStatus::Computed => return Ok(progress),
                GraphStatus::Failed => return Err(Error::GraphFailed { graph, failure: progress.failure }),
                GraphStatus::Cancelled => return Err(Error::Cancelled(graph)),
                GraphStatus::Pending => return Err(Error::Transport(format!("{graph} was never executed"))),
                GraphStatus::Computing => {}
            }
        }
    }

    /// A persisted result.
    pub async fn fetch(&self, graph: GraphId, name: &str) -> Result<TensorValue> {
        let value: Value = self.get(&format!("/v1/graphs/{}/results/{}", graph.0, name)).await?;
        Ok(TensorValue::from_wire(&value))
    }

    /// Submits, executes and waits for a graph; returns its id.
    pub async fn run(&self, graph: &Graph, on_progress: impl FnMut(&GraphProgress)) -> Result<GraphId> {
        let id = self.submit(graph).await?;
        self.execute(id).await?;
        self.wait(id, on_progress).await?;
        Ok(id)
    }
}

/// [`Client`] for code without an async runtime.
#[derive(Debug)]
pub struct BlockingClient {
    runtime: tokio::runtime::Runtime,
    inner: Client,
}

impl BlockingClient {
    /// Connects to `url` and checks the token.
    pub fn connect(url: &str, token: &str) -> Result<BlockingClient> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Transport(format!("cannot start a runtime: {e}")))?;
        let inner = runtime.block_on(Client::connect(url, token))?;
        Ok(BlockingClient { runtime, inner })
    }

    /// See [`Client::run`].
    pub fn run(&self, graph: &Graph, on_progress: impl FnMut(&GraphProgress)) -> Result<GraphId> {
        self.runtime.block_on(self.inner.run(graph, on_progress))
    }

    /// See [`Client::submit`].
    pub fn submit(&self, graph: &Graph) -> Result<GraphId> {
        self.runtime.block_on(self.inner.submit(graph))
    }

    /// Executes a submitted graph and waits for it (see [`Client::execute`], [`Client::wait`]).
    pub fn execute_and_wait(&self, graph: GraphId, on_progress: impl FnMut(&GraphProgress)) -> Result<GraphProgress> {
        self.runtime.block_on(async {
            self.inner.execute(graph).await?;
            self.inner.wait(graph, on_progress).await
        })
    }

    /// See [`Client::fetch`].
    pub fn fetch(&self, graph: GraphId, name: &str) -> Result<TensorValue> {
        self.runtime.block_on(self.inner.fetch(graph, name))
    }

    /// See [`Client::progress`].
    pub fn progress(&self, graph: GraphId) -> Result<GraphProgress> {
        self.runtime.block_on(self.inner.progress(graph))
    }

    /// See [`Client::list_graphs`].
    pub fn list_graphs(&self) -> Result<Vec<GraphProgress>> {
        self.runtime.block_on(self.inner.list_graphs())
    }
}

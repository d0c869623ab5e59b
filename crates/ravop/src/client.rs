//! The requester's client for ravsock: submit a graph, execute it, follow its progress and
//! fetch persisted results.
//!
//! Port of ravop's `initialize`/`activate`/`execute`/`track_progress`/`fetch_persisting_op`
//! (§2.2) without the global singleton: the server allocates graph ids, ops go up in chunks of
//! [`CHUNK_OPS`] with the client's ids mapped to server ids, and waiting uses the server's
//! long-poll endpoint, which answers as soon as the graph changes. A graph that fits one request
//! goes to `POST /v1/graphs/run` instead: created, stored, executed and waited for at once, and
//! [`Client::compute`] gets its persisted results in that same request. [`BlockingClient`] wraps
//! the async client for code without a runtime.
//!
//! Big tensors never go through JSON: an input value whose encoding is longer than the
//! server's inline limit is uploaded to ravftp first and named in its op, and a big result is
//! downloaded from ravftp (the server answers `too_large` to the plain fetch).

use crate::error::{Error, Result};
use crate::executor::Results;
use crate::graph::Graph;
use ravclient::{Http, Repeat, Retry, Trust};
use ravexec::TensorValue;
use ravproto::jobs::{BigSlice, JobId, MAX_SLICE_BYTES, SliceFile};
use ravproto::messages::{
    CreateGraphResponse, ErrorCode, FtpCredentials, GraphProgress, OpChunkRequest, OpChunkResponse, OpRecord,
    ResultFile, RunGraphRequest, RunGraphResponse,
};
use ravproto::status::GraphStatus;
use ravproto::{GraphId, Value, files, routes};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;

/// Ops per upload request.
pub const CHUNK_OPS: usize = 1000;
/// Encoded bytes of inline values per upload request (their JSON is 2-3 times bigger, under
/// the server's 64 MiB body limit).
pub const CHUNK_VALUE_BYTES: u64 = 8 << 20;
/// Values shorter than this are always inline; above it the client asks the server for its
/// inline limit (with ravftp credentials).
const SMALLEST_LIMIT: u64 = ravproto::messages::ALWAYS_INLINE_BYTES;

/// A terminal progress bar with an ETA for [`Client::wait`] (drawn on stderr, hidden when it
/// is not a terminal).
pub fn progress_bar() -> impl FnMut(&GraphProgress) {
    let bar = styled_bar("{spinner} [{bar:40}] {pos}/{len} ops ({per_sec}, ETA {eta}) {msg}");
    move |progress: &GraphProgress| {
        let total: u64 = progress.ops.values().sum();
        let computed = progress.ops.get(&ravproto::status::OpStatus::Computed).copied().unwrap_or(0);
        bar.set_length(total);
        bar.set_position(computed);
        bar.set_message(format!("{:?}", progress.status).to_lowercase());
        if progress.status != GraphStatus::Computing {
            bar.finish();
        }
    }
}

/// An empty bar drawn with `template` (indicatif's), shared by the progress bars.
pub(crate) fn styled_bar(template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

pub use ravclient::RECONNECT_FOR;

/// An async connection to ravsock.
///
/// Graphs live on the server, durably: when ravsock goes away (it crashed, or is being
/// restarted) a request that did not get through is sent again, with growing pauses, until
/// the server is back or [`RECONNECT_FOR`] has passed. A request whose connection could not be
/// opened never arrived, so any request is sent again; one cut off after it was sent is sent
/// again only if repeating it changes nothing (reads, the long-poll wait, new ravftp
/// credentials). [`Client::connect`] itself does not wait: a wrong URL fails at once.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) http: Http,
    ftp_host: Option<String>,
}

/// ravsock's URL when the environment names none.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9999";

/// The settings [`Client::from_env`] reads.
struct Settings {
    url: String,
    token: String,
    ftp_host: Option<String>,
    trust: Trust,
}

/// The settings from the environment and `.env` ([`ravenv`]: today's names `RAVSOCK_URL`,
/// `RAVSOCK_TOKEN`, `RAVSOCK_FTP_HOST`, or the original's `RAVENVERSE_URL`, `TOKEN`,
/// `RAVENVERSE_FTP_HOST`; and `RAVSOCK_CA_CERT`, `RAVSOCK_INSECURE`).
fn settings() -> Result<Settings> {
    let env = ravenv::Env::load().map_err(|e| Error::Settings(e.to_string()))?;
    let token = env.get(ravenv::TOKEN).ok_or(Error::NoToken)?;
    let url = env.get(ravenv::URL).unwrap_or_else(|| DEFAULT_URL.to_string());
    let insecure = match env.get(ravenv::INSECURE).as_deref().map(str::trim) {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => {
            return Err(Error::Settings(format!("{} must be true or false, not `{other}`", ravenv::INSECURE)));
        }
    };
    let ca_cert = env.get(ravenv::CA_CERT).map(std::path::PathBuf::from);
    let trust = Trust::from_options(ca_cert.as_deref(), insecure)?;
    Ok(Settings { url, token, ftp_host: env.get(ravenv::FTP_HOST), trust })
}

impl Client {
    /// Connects to `url` (e.g. `http://127.0.0.1:9999`) and checks the token; an `https://`
    /// server must have a certificate from one of the system's CAs.
    pub async fn connect(url: &str, token: &str) -> Result<Client> {
        Client::connect_trusting(url, token, &Trust::system()).await
    }

    /// [`Client::connect`] trusting what `trust` does (a private CA, `--insecure`).
    pub async fn connect_trusting(url: &str, token: &str, trust: &Trust) -> Result<Client> {
        let http = Http::new(url, token, trust)?;
        let window = http.window();
        let client = Client { http: http.reconnect_for(Duration::ZERO), ftp_host: None };
        let _: Vec<GraphProgress> = client.get(routes::GRAPHS).await?;
        Ok(client.reconnect_for(window))
    }

    /// Connects with the settings of the environment and `.env`: `RAVSOCK_URL` (default
    /// [`DEFAULT_URL`]), `RAVSOCK_TOKEN` and `RAVSOCK_FTP_HOST`, or the original RDF's names
    /// for them (`RAVENVERSE_URL`, `TOKEN`, `RAVENVERSE_FTP_HOST`); today's names win.
    /// `RAVSOCK_CA_CERT` names a private CA's PEM file, and `RAVSOCK_INSECURE=true` allows
    /// plain HTTP to another machine.
    pub async fn from_env() -> Result<Client> {
        let settings = settings()?;
        let client = Client::connect_trusting(&settings.url, &settings.token, &settings.trust).await?;
        Ok(match settings.ftp_host {
            Some(host) => client.ftp_host(host),
            None => client,
        })
    }

    /// Reaches ravsock's ravftp at `host` instead of the server URL's host (behind a proxy
    /// or a NAT); the port still comes from ravsock.
    pub fn ftp_host(self, host: impl Into<String>) -> Client {
        Client { ftp_host: Some(host.into()), ..self }
    }

    /// How long later requests keep trying while the server cannot be reached
    /// ([`RECONNECT_FOR`] by default; zero fails at the first refused connection).
    pub fn reconnect_for(self, window: Duration) -> Client {
        Client { http: self.http.reconnect_for(window), ..self }
    }

    /// The server's base URL.
    pub(crate) fn base(&self) -> &str {
        self.http.base()
    }

    /// The requester's token.
    pub(crate) fn token(&self) -> &str {
        self.http.token()
    }

    /// Whom the connection trusts.
    pub(crate) fn trust(&self) -> &Trust {
        self.http.trust()
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        Ok(self.http.get(path).await?)
    }

    pub(crate) async fn post<T: DeserializeOwned, B: serde::Serialize>(&self, path: &str, body: &B) -> Result<T> {
        Ok(self.http.post(path, body).await?)
    }

    /// PUT of raw bytes (keys), answered with JSON; storing the same bytes again changes nothing.
    #[cfg_attr(not(feature = "he"), allow(dead_code))]
    pub(crate) async fn put_bytes(&self, path: &str, body: Vec<u8>) -> Result<serde_json::Value> {
        Ok(self.http.put_bytes(path, body).await?)
    }

    /// New ravftp credentials and, with them, a session or why none could be opened.
    ///
    /// A transfer that fails because ravsock went away is tried again from here (new
    /// credentials, a new session: see [`ftp_again`]); the transfers are safe to repeat, as
    /// they store files under fixed names or read them.
    async fn ftp(&self) -> Result<(Result<ravftp::FtpClient, ravftp::FtpError>, FtpCredentials)> {
        // Each call issues a fresh password; asking again only replaces it.
        let credentials: FtpCredentials = self.http.post_as(Repeat::Safe, routes::FTP_CREDENTIALS, &()).await?;
        let host = self.ftp_host.clone().unwrap_or_else(|| ravftp::host_of_url(self.base()));
        let session = ravftp::FtpClient::connect(&host, &credentials, self.http.ftps()).await;
        Ok((session, credentials))
    }

    /// Uploads the slices over the inline limit to this requester's ravftp home, each named
    /// by its SHA-256 (the same bytes twice are one upload, and a retry replaces the file);
    /// leaves their entries empty and answers them as a request names them.
    pub(crate) async fn upload_big_slices(&self, slices: &mut [Vec<u8>]) -> Result<Vec<BigSlice>> {
        use sha2::{Digest, Sha256};
        let mut big = Vec::new();
        let mut uploads = std::collections::BTreeMap::new();
        for (at, slice) in slices.iter_mut().enumerate() {
            if slice.len() <= MAX_SLICE_BYTES {
                continue;
            }
            let sha256 = hex::encode(Sha256::digest(&slice[..]));
            big.push(BigSlice { at: at as u64, len: slice.len() as u64, sha256: sha256.clone() });
            uploads.entry(sha256).or_insert(std::mem::take(slice));
        }
        let mut retry = Retry::new(self.http.window());
        while !uploads.is_empty() {
            let tried = match self.ftp().await?.0 {
                Ok(mut ftp) => {
                    let mut stored = Ok(());
                    for (sha256, bytes) in &uploads {
                        stored = ftp.put(&files::slice_upload(sha256), bytes).await;
                        if stored.is_err() {
                            break;
                        }
                    }
                    if stored.is_ok() {
                        ftp.quit().await;
                    }
                    stored
                }
                Err(failure) => Err(failure),
            };
            match tried {
                Ok(()) => break,
                Err(failure) => ftp_again(&mut retry, failure).await?,
            }
        }
        Ok(big)
    }

    /// A job's result kept as a file by the server (one over the inline limit), through
    /// ravftp, over `session` (opened when there is none, and kept for the next result).
    pub(crate) async fn fetch_job_result(
        &self,
        session: &mut Option<ravftp::FtpClient>,
        job: JobId,
        slice: u64,
    ) -> Result<Vec<u8>> {
        let mut retry = Retry::new(self.http.window());
        loop {
            let ftp = match session {
                Some(ftp) => ftp,
                None => match self.ftp().await?.0 {
                    Ok(ftp) => session.insert(ftp),
                    Err(failure) => {
                        ftp_again(&mut retry, failure).await?;
                        continue;
                    }
                },
            };
            // Placed in the home again on each try, replacing the last try's file.
            let file: SliceFile = self.get(&routes::job_result_file(job, slice)).await?;
            match ftp.get(&file.name, file.len).await {
                Ok(bytes) => {
                    let _ = ftp.delete(&file.name).await;
                    return Ok(bytes);
                }
                // A session that failed (or timed out idle) is not used again.
                Err(failure) => {
                    *session = None;
                    ftp_again(&mut retry, failure).await?;
                }
            }
        }
    }

    /// Creates the graph on the server and uploads its ops; returns the server's id.
    pub async fn submit(&self, graph: &Graph) -> Result<GraphId> {
        self.upload(graph, false).await
    }

    /// [`Client::submit`], and with `execute` the last chunk also starts the graph.
    pub(crate) async fn upload(&self, graph: &Graph, execute: bool) -> Result<GraphId> {
        graph.validate()?;
        let created: CreateGraphResponse = self.post(routes::GRAPHS, &graph.meta()).await?;
        // Values longer than the server's inline limit go to ravftp first, straight from their
        // arrays (no encoded copy), and their ops name the files.
        let big: Vec<_> = graph.values().into_iter().filter(|(_, t)| encoded_len(t) > SMALLEST_LIMIT).collect();
        let mut files = std::collections::BTreeMap::new();
        let mut retry = Retry::new(self.http.window());
        while !big.is_empty() {
            let (session, credentials) = self.ftp().await?;
            let tried = match session {
                Ok(mut ftp) => {
                    let mut stored = Ok(());
                    for (id, tensor) in big.iter().filter(|(_, t)| encoded_len(t) > credentials.inline_limit) {
                        // Named by graph and op: uploading it again replaces it.
                        let name = files::requester_value(created.graph_id, id.0);
                        let header = Value::tensor_header(tensor.dtype(), tensor.shape());
                        stored = ftp.put_parts(&name, &[&header, &tensor.le_bytes()]).await;
                        if stored.is_err() {
                            break;
                        }
                        files.insert(id.0, name);
                    }
                    if stored.is_ok() {
                        ftp.quit().await;
                    }
                    stored
                }
                Err(failure) => Err(failure),
            };
            match tried {
                Ok(()) => break,
                Err(failure) => ftp_again(&mut retry, failure).await?,
            }
        }
        let mut records = graph.records(|node| !files.contains_key(&node.id.0));
        for record in &mut records {
            record.value_file = files.remove(&record.local_id);
        }
        let value_len = |record: &OpRecord| record.value.as_ref().map_or(0, |v| v.encoded_len());
        // Chunks are safe to send again: one the server stored before is answered with its id
        // map (a restart between storing and answering cost the whole upload before).
        let path = routes::graph_ops(created.graph_id);
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        for record in records {
            let len = value_len(&record);
            if !chunk.is_empty() && (chunk.len() == CHUNK_OPS || chunk_bytes + len > CHUNK_VALUE_BYTES) {
                let request = OpChunkRequest { ops: std::mem::take(&mut chunk) };
                let _: OpChunkResponse = self.http.post_as(Repeat::Safe, &path, &request).await?;
                chunk_bytes = 0;
            }
            chunk_bytes += len;
            chunk.push(record);
        }
        if !chunk.is_empty() || execute {
            let last = if execute { format!("{path}?execute=true") } else { path };
            let _: OpChunkResponse = self.http.post_as(Repeat::Safe, &last, &OpChunkRequest { ops: chunk }).await?;
        }
        Ok(created.graph_id)
    }

    /// Starts computing a submitted graph.
    pub async fn execute(&self, graph: GraphId) -> Result<GraphProgress> {
        self.post(&routes::graph_execute(graph), &()).await
    }

    /// The graph's status and op counts.
    pub async fn progress(&self, graph: GraphId) -> Result<GraphProgress> {
        self.get(&routes::graph(graph)).await
    }

    /// Every graph of this requester.
    pub async fn list_graphs(&self) -> Result<Vec<GraphProgress>> {
        self.get(routes::GRAPHS).await
    }

    /// Cancels a graph.
    pub async fn cancel(&self, graph: GraphId) -> Result<GraphProgress> {
        self.post(&routes::graph_cancel(graph), &()).await
    }

    /// Waits until the graph is computed, calling `on_progress` on every change; a failed or
    /// cancelled graph is an error naming the op and the reason.
    pub async fn wait(&self, graph: GraphId, mut on_progress: impl FnMut(&GraphProgress)) -> Result<GraphProgress> {
        loop {
            let path = format!("{}?timeout_ms={WAIT_MS}", routes::graph_wait(graph));
            let progress: GraphProgress = self.get(&path).await?;
            on_progress(&progress);
            if ended(&progress)? {
                return Ok(progress);
            }
        }
    }

    /// A persisted result (big ones come through ravftp).
    pub async fn fetch(&self, graph: GraphId, name: &str) -> Result<TensorValue> {
        let value: Value = match self.get(&routes::graph_result(graph, name)).await {
            Err(Error::Server { code: ErrorCode::TooLarge, .. }) => {
                let mut retry = Retry::new(self.http.window());
                loop {
                    let (session, _) = self.ftp().await?;
                    // Placed in the home again on each try, replacing the last try's file.
                    let file: ResultFile = self.get(&routes::graph_result_file(graph, name)).await?;
                    let tried = match session {
                        Ok(mut ftp) => {
                            let value = ftp.get_value(&file.name, file.len).await;
                            if value.is_ok() {
                                let _ = ftp.delete(&file.name).await;
                                ftp.quit().await;
                            }
                            value
                        }
                        Err(failure) => Err(failure),
                    };
                    match tried {
                        Ok(value) => break value,
                        Err(failure) => ftp_again(&mut retry, failure).await?,
                    }
                }
            }
            other => other?,
        };
        Ok(TensorValue::from_wire_owned(value))
    }

    /// Submits, executes and waits for a graph; returns its id.
    pub async fn run(&self, graph: &Graph, mut on_progress: impl FnMut(&GraphProgress)) -> Result<GraphId> {
        let id = match self.run_whole(graph, false).await? {
            Some(answer) => {
                on_progress(&answer.progress);
                if ended(&answer.progress)? {
                    return Ok(answer.progress.graph_id);
                }
                answer.progress.graph_id
            }
            None => self.upload(graph, true).await?,
        };
        self.wait(id, on_progress).await?;
        Ok(id)
    }

    /// Runs a graph on the providers and returns its id and persisted results, as
    /// [`crate::LocalExecutor::run`] does in this process. A graph that fits one request
    /// (at most [`CHUNK_OPS`] ops, no value big enough for ravftp) is submitted, executed,
    /// waited for and answered with its results in a single request.
    pub async fn compute(&self, graph: &Graph) -> Result<(GraphId, Results)> {
        let (id, values, fetch) = match self.run_whole(graph, true).await? {
            Some(answer) if ended(&answer.progress)? => {
                (answer.progress.graph_id, answer.results, answer.large_results)
            }
            Some(answer) => {
                self.wait(answer.progress.graph_id, |_| {}).await?;
                (answer.progress.graph_id, BTreeMap::new(), graph.persisted().into_keys().collect())
            }
            None => (self.run(graph, |_| {}).await?, BTreeMap::new(), graph.persisted().into_keys().collect()),
        };
        let mut results = BTreeMap::new();
        for (name, value) in values {
            results.insert(name, TensorValue::from_wire_owned(value));
        }
        for name in fetch {
            let value = self.fetch(id, &name).await?;
            results.insert(name, value);
        }
        Ok((id, Results::from_values(results)))
    }

    /// `POST /v1/graphs/run` for a graph that fits one request: created, stored and executed
    /// at once, answered when it ends (or after [`WAIT_MS`]); `None` for a graph that must go
    /// up in chunks or through ravftp, and for a federated graph (it opens to providers).
    async fn run_whole(&self, graph: &Graph, with_results: bool) -> Result<Option<RunGraphResponse>> {
        graph.validate()?;
        if graph.meta().approach == ravproto::messages::Approach::Federated {
            return Ok(None);
        }
        let mut inline_bytes = 0;
        for (_, tensor) in graph.values() {
            let len = encoded_len(&tensor);
            if len > SMALLEST_LIMIT {
                return Ok(None);
            }
            inline_bytes += len;
        }
        if graph.len() > CHUNK_OPS || inline_bytes > CHUNK_VALUE_BYTES {
            return Ok(None);
        }
        let request =
            RunGraphRequest { meta: graph.meta(), ops: graph.records(|_| true), wait_ms: WAIT_MS, with_results };
        Ok(Some(self.post(routes::RUN_GRAPH, &request).await?))
    }
}

/// After a failed ravftp transfer: waits before the next try if ravsock went away under it
/// (and the reconnect window allows), else the error to return.
async fn ftp_again(retry: &mut Retry, failure: ravftp::FtpError) -> Result<()> {
    if failure.is_transient() && retry.pause(&failure.to_string()).await {
        Ok(())
    } else {
        Err(Error::Ftp(retry.describe(failure.to_string())))
    }
}

/// Longest wait asked of the server per request; the client then asks again.
pub(crate) const WAIT_MS: u64 = 10_000;

/// Length of a tensor's wire encoding.
fn encoded_len(tensor: &ravexec::Tensor) -> u64 {
    Value::tensor_encoded_len(tensor.dtype(), tensor.shape()).unwrap_or(u64::MAX)
}

/// Whether a graph in this state is computed (`false` while it computes); a failed,
/// cancelled or never executed graph is the error saying so.
fn ended(progress: &GraphProgress) -> Result<bool> {
    let graph = progress.graph_id;
    match progress.status {
        GraphStatus::Computed => Ok(true),
        GraphStatus::Computing => Ok(false),
        GraphStatus::Failed => Err(Error::GraphFailed { graph, failure: progress.failure.clone() }),
        GraphStatus::Cancelled => Err(Error::Cancelled(graph)),
        GraphStatus::Pending => Err(Error::Transport(format!("{graph} was never executed"))),
    }
}

/// [`Client`] for code without an async runtime.
#[derive(Debug)]
pub struct BlockingClient {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) inner: Client,
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

    /// See [`Client::from_env`].
    pub fn from_env() -> Result<BlockingClient> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Transport(format!("cannot start a runtime: {e}")))?;
        let inner = runtime.block_on(Client::from_env())?;
        Ok(BlockingClient { runtime, inner })
    }

    /// See [`Client::reconnect_for`].
    pub fn reconnect_for(self, window: Duration) -> BlockingClient {
        BlockingClient { runtime: self.runtime, inner: self.inner.reconnect_for(window) }
    }

    /// See [`Client::run`].
    pub fn run(&self, graph: &Graph, on_progress: impl FnMut(&GraphProgress)) -> Result<GraphId> {
        self.runtime.block_on(self.inner.run(graph, on_progress))
    }

    /// See [`Client::compute`].
    pub fn compute(&self, graph: &Graph) -> Result<(GraphId, Results)> {
        self.runtime.block_on(self.inner.compute(graph))
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

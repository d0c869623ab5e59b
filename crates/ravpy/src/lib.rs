//! ravpy, the Raven provider.
//!
//! [`participate`] connects to ravsock's `/provider` socket.io namespace with a token,
//! reports its benchmark, joins a graph (or any), computes assignments with the `ravexec`
//! kernels and sends the outputs back, until its shutdown future resolves. Port of ravpy's
//! `participate` (§4.2) without its failure modes: no `os._exit` on errors (the client
//! reconnects with backoff and re-joins), no lost work queue (assignments are handled as they
//! arrive, several at once), and a refused token or protocol version stops it with a clear
//! error instead of a silent retry loop. [`federated`] contributes a CSV file's statistics to
//! a federated query.

mod assignment;
pub mod bench;
pub mod compute;
pub mod federated;
pub mod metrics;
pub mod node;
mod slices;
pub mod view;

use assignment::{Bulk, Task, handle_assignment};
use bytes::Bytes;
use futures_util::FutureExt;
use ravclient::socket::{describe, first_json, refusal};
use ravexec::MemoryBudget;
use ravproto::messages::{Benchmark, ErrorBody, FtpCredentials};
use ravproto::provider::{
    EVENT_ASSIGN, EVENT_CREDENTIALS, EVENT_JOIN, EVENT_REFUSED, EVENT_REJECTED, EVENT_WITHDRAW, JoinRequest, NAMESPACE,
    ProviderAuth, Rejected, RejectionCode, Withdraw,
};
use ravproto::{GraphId, PROTOCOL_VERSION};
use rust_socketio::Payload;
use rust_socketio::asynchronous::Client;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Provider settings.
#[derive(Clone, Debug)]
pub struct ParticipateConfig {
    /// ravsock's URL, e.g. `http://127.0.0.1:9999`.
    pub server: String,
    /// The provider token.
    pub token: String,
    /// The CAs it trusts and whether plain HTTP to another machine is allowed.
    pub trust: ravclient::Trust,
    /// Host of ravsock's ravftp, when it is not the server URL's host.
    pub ftp_host: Option<String>,
    /// Work only on this graph.
    pub graph: Option<GraphId>,
    /// The benchmark to report (measured when `None`).
    pub benchmark: Option<Benchmark>,
    /// The most memory one op may take here, in bytes (`--max-memory`); `None` keeps the
    /// benchmark's (half of the RAM unless it says otherwise). An op that could take more is
    /// refused before it allocates, and the server sends it to a provider with more.
    pub max_memory: Option<u64>,
    /// Where to report progress (a terminal view, a test waiting for the join).
    pub events: Option<mpsc::UnboundedSender<ProviderEvent>>,
    /// Leave after computing this many subgraphs (work already in hand is finished; work
    /// assigned after that goes back to the server when the connection closes).
    pub max_subgraphs: Option<u64>,
    /// Compute groups to join (`--group key:secret`): their jobs come here too.
    pub groups: Vec<ravproto::jobs::ComputeGroup>,
    /// The most one job slice may use here; a job's limits are lowered to it.
    pub slice_cap: ravproto::work::Limits,
    /// The WebAssembly engine for jobs' slices (`--engine`); `None` takes the fastest built in.
    pub engine: Option<ravwasm::EngineKind>,
}

/// What a provider reports while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderEvent {
    /// Joined (again, after a reconnect).
    Joined,
    /// An assignment was computed and its outputs sent.
    Computed {
        assignment: u64,
        /// Ops computed.
        ops: u64,
        /// Time spent computing.
        millis: f64,
    },
    /// A bundle of a job's slices was run and its outcomes sent.
    Sliced {
        bundle: u64,
        /// Slices run (each a result or a typed error).
        slices: u64,
        /// Time spent.
        millis: f64,
    },
    /// A job ended and its work function, if this provider had it, was let go.
    JobEnded { job: u64 },
    /// An op of an assignment failed.
    Failed {
        assignment: u64,
        /// The kernel's message.
        reason: String,
    },
    /// The server closed this provider's connection (it connects again at once).
    Dropped {
        /// The server's reason, when it gave one (a missed deadline), or what was seen.
        reason: String,
    },
}

fn report(events: &Option<mpsc::UnboundedSender<ProviderEvent>>, event: ProviderEvent) {
    if let Some(events) = events {
        let _ = events.send(event);
    }
}

/// Graphs open to providers now (`approach`: only distributed or only federated ones). Asked
/// again while ravsock cannot be reached, for up to [`ravclient::RECONNECT_FOR`].
pub async fn list_graphs(
    server: &str,
    token: &str,
    trust: &ravclient::Trust,
    approach: Option<ravproto::messages::Approach>,
) -> Result<Vec<ravproto::messages::OpenGraph>, Error> {
    let mut path = ravproto::routes::open_graphs();
    if let Some(approach) = approach {
        let name = serde_json::to_value(approach).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        path.push_str(&format!("?approach={name}"));
    }
    let http = ravclient::Http::new(server, token, trust).map_err(|e| Error::from_http(server, e))?;
    http.get(&path).await.map_err(|e| Error::from_http(server, e))
}

/// The jobs running now that this provider may see (`ravpy list-jobs`).
pub async fn list_jobs(server: &str, token: &str, trust: &ravclient::Trust) -> Result<Vec<ravproto::jobs::Job>, Error> {
    let http = ravclient::Http::new(server, token, trust).map_err(|e| Error::from_http(server, e))?;
    let list: ravproto::jobs::JobList =
        http.get(ravproto::routes::JOBS).await.map_err(|e| Error::from_http(server, e))?;
    Ok(list.jobs)
}

/// This account's balances and its movements, oldest first (`ravpy earnings`): what the
/// work paid, once the server runs with `--accounting on`.
pub async fn earnings(
    server: &str,
    token: &str,
    trust: &ravclient::Trust,
) -> Result<(ravproto::ledger::Balance, Vec<ravproto::ledger::Entry>), Error> {
    let http = ravclient::Http::new(server, token, trust).map_err(|e| Error::from_http(server, e))?;
    let balance = http.get(ravproto::routes::ACCOUNT).await.map_err(|e| Error::from_http(server, e))?;
    let entries = http.ledger_entries().await.map_err(|e| Error::from_http(server, e))?;
    Ok((balance, entries))
}

/// Why participation stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the connection or a request (token, role, protocol version, a
    /// graph that is not open), with its typed reason.
    #[error("the server refused this provider: {message}")]
    Refused {
        /// Kind of refusal.
        code: ravproto::messages::ErrorCode,
        /// The server's reason.
        message: String,
    },
    /// The server refused the join, or ended it (the chosen graph ended).
    #[error("the server rejected the join: {reason}")]
    Rejected {
        /// What to do next: wait and join again, or choose another graph.
        code: RejectionCode,
        /// The server's reason.
        reason: String,
    },
    /// A federated contribution could not be computed (the file, the rules, encryption).
    #[error("{0}")]
    Data(String),
    /// This provider will not talk to the server: plain HTTP to another machine, a
    /// certificate it does not trust, or a CA file it cannot use.
    #[error("{0}")]
    Trust(String),
    /// The engine asked for to run jobs' slices is not in this build or did not start.
    #[error("{0}")]
    Engine(#[from] ravwasm::EngineError),
    /// The server could not be reached, or the socket.io client failed to start.
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        /// The URL.
        server: String,
        /// What the client said.
        reason: String,
    },
}

impl Error {
    /// A request to `server` that got no usable answer.
    pub(crate) fn from_http(server: &str, error: ravclient::Error) -> Error {
        match error {
            ravclient::Error::Server { code, message, .. } => Error::Refused { code, message },
            ravclient::Error::Transport(reason) => Error::Connect { server: server.to_string(), reason },
            ravclient::Error::Trust(reason) => Error::Trust(reason),
        }
    }
}

impl From<ErrorBody> for Error {
    fn from(body: ErrorBody) -> Error {
        Error::Refused { code: body.code, message: body.message }
    }
}

/// What the socket callbacks hand to the main loop.
#[derive(Debug)]
enum Incoming {
    Connected,
    Assign(Bytes),
    Withdraw(u64),
    Slices(ravproto::jobs::SliceBundle),
    JobEnded(ravproto::jobs::JobId),
    Credentials(FtpCredentials),
    Rejected(Rejected),
    /// The server closed the connection (a namespace `disconnect`).
    Closed,
    /// The server dropped an event this provider sent as malformed (a bug on one side).
    Refused(ErrorBody),
    /// The server's refusal of the connection, or a dropped connection (`None`), and its text.
    Error(Option<ErrorBody>, String),
}

fn forward(tx: &mpsc::UnboundedSender<Incoming>, message: Incoming) {
    // The loop only stops when participation ends; later messages have nowhere to go.
    let _ = tx.send(message);
}

/// Counts of the work done, for the final report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Assignments computed and returned.
    pub subgraphs: u64,
    /// Ops computed.
    pub ops: u64,
    /// Job slices run.
    pub slices: u64,
}

/// Runs the provider until `shutdown` resolves (then finishes the work in hand).
///
/// Connections the server closes (an eviction for a missed deadline, a restart) are opened
/// again at once; only a refusal that another try cannot change (a token, a protocol version,
/// a graph that cannot be joined), a server that stays unreachable for the retry window, or a
/// certificate this provider does not trust end it with an error.
pub async fn participate(config: ParticipateConfig, shutdown: impl Future<Output = ()>) -> Result<Summary, Error> {
    // Before the benchmark: an engine this build lacks is the first thing to hear about.
    let runner = Arc::new(slices::Runner::new(config.slice_cap, config.engine)?);
    let mut benchmark = match config.benchmark.clone() {
        Some(b) => b,
        None => tokio::task::spawn_blocking(bench::measure).await.unwrap_or_else(|_| bench::measure()),
    };
    if let Some(max_memory) = config.max_memory {
        benchmark.memory_budget_bytes = Some(max_memory);
    }
    let budget = MemoryBudget::bytes(benchmark.memory_budget());
    tracing::info!(
        score = benchmark.speed_score,
        cores = benchmark.cores,
        ram = benchmark.ram_bytes,
        memory_budget = budget.bytes,
        gpu = benchmark.gpu,
        "benchmark"
    );
    // The same checks and CAs as the HTTP requests; ravftp speaks FTPS when this is https.
    let http = ravclient::Http::new(&config.server, &config.token, &config.trust)
        .map_err(|e| Error::from_http(&config.server, e))?;
    let work = Work {
        summary: Arc::default(),
        withdrawn: Arc::default(),
        sessions: Arc::default(),
        in_hand: tokio::task::JoinSet::new(),
        benchmark,
        budget,
        ftp_host: config.ftp_host.clone().unwrap_or_else(|| ravftp::host_of_url(&config.server)),
        ftps: http.ftps(),
        runner,
    };
    let mut session = Session { config: &config, work, window: http.window() };
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    let outcome = loop {
        let connection = tokio::select! {
            () = &mut shutdown => break Ok(()),
            connection = session.connect() => connection,
        };
        let (client, rx) = match connection {
            Ok(connected) => connected,
            Err(error) => break Err(error),
        };
        let ended = session.serve(&client, rx, &mut shutdown).await;
        let _ = client.disconnect().await;
        match ended {
            Ended::Dropped(reason) => {
                // A closed connection is not the end: in-hand results sent on it are lost
                // (the server reassigns them), and the provider joins again.
                tracing::warn!(%reason, "ravsock closed this provider's connection; connecting again");
                report(&config.events, ProviderEvent::Dropped { reason });
            }
            Ended::Done(outcome) => break outcome,
        }
    };
    // Finish (and report) what is in hand before leaving.
    let Session { mut work, .. } = session;
    while let Some(done) = work.in_hand.join_next().await {
        if let Err(error) = done {
            tracing::error!(cause = %error, "assignment task failed");
        }
    }
    let summary = *work.summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tracing::info!(subgraphs = summary.subgraphs, ops = summary.ops, "stopped");
    outcome.map(|()| summary)
}

/// What outlives one connection: counts, the work in hand, this machine's benchmark.
struct Work {
    summary: Arc<Mutex<Summary>>,
    withdrawn: Arc<Mutex<BTreeSet<u64>>>,
    sessions: Arc<compute::Sessions>,
    in_hand: tokio::task::JoinSet<()>,
    benchmark: Benchmark,
    budget: MemoryBudget,
    ftp_host: String,
    ftps: Option<Arc<rustls::ClientConfig>>,
    /// Jobs' work functions and the sandbox.
    runner: Arc<slices::Runner>,
}

/// How one connection ended.
enum Ended {
    /// The server closed it; the provider connects again.
    Dropped(String),
    /// Participation is over, with this outcome.
    Done(Result<(), Error>),
}

/// A provider's connections, one after another.
struct Session<'a> {
    config: &'a ParticipateConfig,
    work: Work,
    /// How long an unreachable server is waited for.
    window: std::time::Duration,
}

impl Session<'_> {
    /// Opens a connection, waiting for a server that is not up yet (or restarting) as long as
    /// a request would wait: the provider may be started first. Each connection gets its own
    /// channel, so nothing a closed one still delivers reaches the next.
    async fn connect(&self) -> Result<(Client, mpsc::UnboundedReceiver<Incoming>), Error> {
        let config = self.config;
        let auth = ProviderAuth { token: config.token.clone(), protocol_version: PROTOCOL_VERSION };
        let mut retry = ravclient::Retry::new(self.window);
        loop {
            let (tx, rx) = mpsc::unbounded_channel();
            match provider_socket(config, &auth, &tx)?.connect().await {
                Ok(client) => return Ok((client, rx)),
                Err(error) => match ravclient::socket::connect_error(&config.server, &error) {
                    ravclient::Error::Transport(reason) if retry.pause(&reason).await => {}
                    ravclient::Error::Transport(reason) => {
                        return Err(Error::Connect { server: config.server.clone(), reason: retry.describe(reason) });
                    }
                    other => return Err(Error::from_http(&config.server, other)),
                },
            }
        }
    }

    /// Serves one connection until it closes or participation ends.
    async fn serve(
        &mut self,
        client: &Client,
        mut rx: mpsc::UnboundedReceiver<Incoming>,
        shutdown: &mut std::pin::Pin<&mut futures_util::future::Fuse<impl Future<Output = ()>>>,
    ) -> Ended {
        let config = self.config;
        let work = &mut self.work;
        let mut ftp: Option<Arc<Bulk>> = None;
        // Why the server is about to close the connection, when it said.
        let mut notice: Option<String> = None;
        loop {
            tokio::select! {
                () = &mut *shutdown => return Ended::Done(Ok(())),
                Some(done) = work.in_hand.join_next(), if !work.in_hand.is_empty() => {
                    if let Err(error) = done {
                        tracing::error!(cause = %error, "assignment task failed");
                    }
                    let computed = work.summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner).subgraphs;
                    if config.max_subgraphs.is_some_and(|max| computed >= max) {
                        tracing::info!(computed, "computed the subgraphs asked for; leaving");
                        return Ended::Done(Ok(()));
                    }
                }
                message = rx.recv() => match message {
                    None => return Ended::Done(Ok(())),
                    Some(Incoming::Connected) => {
                        // The server knows a connection, not a machine: after a reconnect it
                        // sends the checkpoint of any graph it assigns here, so the old states
                        // only hold memory.
                        work.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                        work.runner.clear();
                        // Join again after every (re)connect: the server forgets a provider
                        // when its socket closes.
                        let join = JoinRequest {
                            benchmark: work.benchmark.clone(),
                            graph: config.graph,
                            groups: config.groups.clone(),
                        };
                        let _ = client.emit(EVENT_JOIN, serde_json::to_value(&join).expect("serializes")).await;
                        tracing::info!(server = %config.server, graph = ?config.graph, "joined");
                        report(&config.events, ProviderEvent::Joined);
                    }
                    Some(Incoming::Credentials(credentials)) => {
                        ftp = Some(Arc::new(Bulk { host: work.ftp_host.clone(), credentials, tls: work.ftps.clone() }));
                    }
                    Some(Incoming::Assign(bytes)) => {
                        let task = Task {
                            client: client.clone(),
                            summary: work.summary.clone(),
                            withdrawn: work.withdrawn.clone(),
                            events: config.events.clone(),
                            ftp: ftp.clone(),
                            sessions: work.sessions.clone(),
                            budget: work.budget,
                        };
                        work.in_hand.spawn(handle_assignment(task, bytes));
                    }
                    Some(Incoming::Slices(bundle)) => {
                        let task = slices::SliceTask {
                            client: client.clone(),
                            runner: work.runner.clone(),
                            withdrawn: work.withdrawn.clone(),
                            summary: work.summary.clone(),
                            events: config.events.clone(),
                            ftp: ftp.clone(),
                        };
                        let bundle = work.runner.prepare(bundle);
                        work.in_hand.spawn(slices::handle_bundle(task, bundle));
                    }
                    Some(Incoming::JobEnded(job)) => {
                        work.runner.forget(job);
                        report(&config.events, ProviderEvent::JobEnded { job: job.0 });
                    }
                    Some(Incoming::Withdraw(assignment)) => {
                        tracing::info!(assignment, "assignment withdrawn by the server");
                        work.withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(assignment);
                    }
                    Some(Incoming::Rejected(Rejected { code: RejectionCode::Evicted, reason })) => {
                        tracing::warn!(%reason, "ravsock is closing this provider's connection");
                        notice = Some(reason);
                    }
                    Some(Incoming::Rejected(Rejected { code, reason })) => {
                        return Ended::Done(Err(Error::Rejected { code, reason }));
                    }
                    Some(Incoming::Closed) => {
                        return Ended::Dropped(notice.take().unwrap_or_else(|| "the server closed the connection".into()));
                    }
                    Some(Incoming::Refused(refusal)) => {
                        tracing::warn!(reason = %refusal.message, "ravsock dropped an event of this provider");
                    }
                    // A refusal that another try cannot change ends participation; a server
                    // fault while checking the token, or a dropped connection, is tried again.
                    Some(Incoming::Error(Some(refused), _)) if !refused.code.is_server_fault() => {
                        return Ended::Done(Err(refused.into()));
                    }
                    Some(Incoming::Error(_, reason)) => {
                        tracing::warn!(%reason, "connection problem; the client reconnects");
                    }
                },
            }
        }
    }
}

/// The socket.io client of the `/provider` namespace, its events forwarded to `tx`; a new one
/// for each try, since connecting consumes it.
fn provider_socket(
    config: &ParticipateConfig,
    auth: &ProviderAuth,
    tx: &mpsc::UnboundedSender<Incoming>,
) -> Result<rust_socketio::asynchronous::ClientBuilder, Error> {
    let on = |make: fn(Payload) -> Option<Incoming>| {
        let tx = tx.clone();
        move |payload: Payload, _client: Client| {
            let tx = tx.clone();
            async move {
                if let Some(message) = make(payload) {
                    forward(&tx, message);
                }
            }
            .boxed()
        }
    };
    let auth = serde_json::to_value(auth).expect("auth serializes");
    Ok(ravclient::socket::reconnecting(&config.server, &config.trust, NAMESPACE, auth)
        .map_err(|e| Error::from_http(&config.server, e))?
        .on("open", on(|_| Some(Incoming::Connected)))
        .on(
            EVENT_ASSIGN,
            on(|p| match p {
                Payload::Binary(bytes) => Some(Incoming::Assign(bytes)),
                _ => None,
            }),
        )
        .on(EVENT_WITHDRAW, on(|p| first_json::<Withdraw>(p).map(|w| Incoming::Withdraw(w.assignment))))
        .on(ravproto::jobs::EVENT_SLICES, on(|p| first_json::<ravproto::jobs::SliceBundle>(p).map(Incoming::Slices)))
        .on(
            ravproto::jobs::EVENT_JOB_ENDED,
            on(|p| first_json::<ravproto::jobs::JobEnded>(p).map(|ended| Incoming::JobEnded(ended.job))),
        )
        .on(
            ravproto::jobs::EVENT_WITHDRAW_SLICES,
            on(|p| first_json::<Withdraw>(p).map(|w| Incoming::Withdraw(w.assignment))),
        )
        .on(EVENT_REJECTED, on(|p| first_json::<Rejected>(p).map(Incoming::Rejected)))
        .on("close", on(|_| Some(Incoming::Closed)))
        .on(EVENT_CREDENTIALS, on(|p| first_json::<FtpCredentials>(p).map(Incoming::Credentials)))
        .on(EVENT_REFUSED, on(|p| first_json::<ErrorBody>(p).map(Incoming::Refused)))
        .on("error", on(|p| Some(Incoming::Error(refusal(&p), describe(&p))))))
}

/// A size in bytes: digits, optionally followed by `K`, `M`, `G` or `T` (powers of 1024, an
/// optional `B` or `iB` after it).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a size: expected a number such as 8G"))?;
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        other => return Err(format!("unknown unit `{other}` in `{text}`: use K, M, G or T")),
    };
    number.checked_mul(1 << shift).ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_with_and_without_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("2kb"), Ok(2048));
        assert!(parse_size("8X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("G").unwrap_err().contains("not a size"));
        assert!(parse_size("99999999999T").unwrap_err().contains("too large"));
    }
}

//! What one attempt of each kind of entry does, and how its end becomes an [`Outcome`].
//!
//! `participate`: joins the entry's current choice of graph (or any) and computes until the
//! node stops; a graph not executing yet is waited for, a graph that ended moves the entry to
//! its next choice, a dropped connection is opened again inside the attempt. `federated`:
//! waits for the query to open, then contributes the file's statistics once. `topics`:
//! answers each round of the topic until the topic ends or the node stops (a dropped
//! connection is opened again inside the attempt).

use super::config::{Entry, FederatedEntry, ParticipateEntry, RetryPolicy, TopicsEntry};
use super::status::{Board, EntryState};
use super::supervise::Outcome;
use crate::{Error, ParticipateConfig, ProviderEvent};
use ravproto::GraphId;
use ravproto::messages::ErrorCode;
use ravproto::provider::RejectionCode;
use ravproto::status::GraphStatus;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// What every attempt needs.
#[derive(Clone)]
pub(super) struct Context {
    pub(super) server: String,
    pub(super) token: String,
    pub(super) trust: ravclient::Trust,
    pub(super) ftp_host: Option<String>,
    pub(super) board: Board,
    /// The node's metrics (served when the file names `metrics_bind`).
    pub(super) metrics: crate::metrics::Metrics,
}

type Attempt = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A maker of attempts for entry `index`.
pub(super) fn attempts(
    index: usize,
    entry: Entry,
    context: Context,
    stopping: watch::Receiver<bool>,
) -> impl FnMut() -> Attempt + Send + 'static {
    // Which of a participate entry's graphs it is on: kept across attempts.
    let choice = Arc::new(Mutex::new(0usize));
    move || -> Attempt {
        let (context, stopping) = (context.clone(), stopping.clone());
        match &entry {
            Entry::Participate { entry: participating, name, .. } => {
                let name = name.clone();
                Box::pin(participate(index, name, participating.clone(), context, stopping, choice.clone()))
            }
            Entry::Federated { entry, .. } => Box::pin(federated(index, entry.clone(), context)),
            Entry::Topics { entry, retry, .. } => Box::pin(topics(index, entry.clone(), *retry, context, stopping)),
        }
    }
}

/// Resolves once the node is stopping.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// An error that another try cannot mend.
fn fatal(error: &Error) -> bool {
    match error {
        Error::Refused { code, .. } => {
            matches!(code, ErrorCode::Unauthorized | ErrorCode::Forbidden | ErrorCode::VersionMismatch)
        }
        // An engine this build lacks stays lacking.
        Error::Trust(_) | Error::Engine(_) => true,
        Error::Rejected { .. } | Error::Data(_) | Error::Connect { .. } => false,
    }
}

async fn participate(
    index: usize,
    name: String,
    entry: ParticipateEntry,
    context: Context,
    stopping: watch::Receiver<bool>,
    choice: Arc<Mutex<usize>>,
) -> Outcome {
    let position = *choice.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let graph = match entry.graphs.get(position) {
        Some(graph) => Some(GraphId(*graph)),
        None if entry.graphs.is_empty() || entry.then_any => None,
        None => return Outcome::Done("every graph it chose has ended".into()),
    };
    let done = context.board.entry(index).map_or(0, |row| row.subgraphs);
    let max_subgraphs = match entry.max_subgraphs {
        Some(max) if done >= max => return Outcome::Done(format!("computed the {max} subgraphs asked for")),
        Some(max) => Some(max - done),
        None => None,
    };
    let (events, mut seen) = mpsc::unbounded_channel();
    let board = context.board.clone();
    let metrics = context.metrics.clone();
    let target = graph.map_or("any graph".to_string(), |g| g.to_string());
    let watcher = tokio::spawn(async move {
        while let Some(event) = seen.recv().await {
            metrics.observe(&name, &event);
            board.update(index, |row| match event {
                ProviderEvent::Joined => row.succeeded(format!("joined {target}; computing")),
                ProviderEvent::Computed { ops, .. } => {
                    row.subgraphs += 1;
                    row.ops += ops;
                    row.succeeded(format!("computing {target}"));
                }
                ProviderEvent::Sliced { .. } => row.succeeded(format!("running job slices ({target})")),
                ProviderEvent::JobEnded { .. } => {}
                ProviderEvent::Failed { reason, .. } => row.detail = format!("an op failed here: {reason}"),
                ProviderEvent::Dropped { reason } => {
                    row.state = EntryState::Connecting;
                    row.detail = format!("dropped by ravsock ({reason}); connecting again");
                    row.last_drop = Some(reason);
                }
            });
        }
    });
    let config = ParticipateConfig {
        server: context.server.clone(),
        token: context.token.clone(),
        trust: context.trust.clone(),
        ftp_host: context.ftp_host.clone(),
        graph,
        benchmark: None,
        max_memory: entry.max_memory.map(|m| m.0),
        events: Some(events),
        max_subgraphs,
        groups: entry.groups.iter().map(|g| g.0.clone()).collect(),
        slice_cap: ravproto::work::Limits {
            fuel: entry.slice_fuel.unwrap_or(ravproto::work::Limits::default().fuel),
            ..ravproto::work::Limits::default()
        },
        engine: entry.engine.map(|e| e.0),
    };
    let ended = crate::participate(config, stopped(stopping.clone())).await;
    let _ = watcher.await;
    let advance = |why: String| {
        *choice.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        Outcome::Next(why)
    };
    match ended {
        Ok(_) if *stopping.borrow() => Outcome::Done("stopped on request".into()),
        Ok(summary) => Outcome::Done(format!("computed the {} subgraphs asked for", summary.subgraphs)),
        Err(Error::Rejected { code: RejectionCode::NotExecuting, reason }) => Outcome::Waiting(reason),
        Err(Error::Rejected { code: RejectionCode::Finished, reason }) => advance(reason),
        Err(Error::Rejected { code: RejectionCode::NotFound, reason }) => {
            tracing::warn!(%reason, "a graph in the worker file does not exist; skipping it");
            advance(reason)
        }
        Err(error) if fatal(&error) => Outcome::Fatal(error.to_string()),
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

async fn federated(index: usize, entry: FederatedEntry, context: Context) -> Outcome {
    let graph = GraphId(entry.graph);
    let spec = match crate::federated::spec(&context.server, &context.token, &context.trust, graph).await {
        Ok(spec) => spec,
        // Graph ids are the server's: a file may name a query before its requester opens it.
        Err(Error::Refused { code: ErrorCode::NotFound, .. }) => {
            return Outcome::Waiting(format!("{graph} does not exist yet"));
        }
        Err(error) if fatal(&error) => return Outcome::Fatal(error.to_string()),
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    match spec.status {
        GraphStatus::Pending => return Outcome::Waiting(format!("{graph} is not open to contributions yet")),
        GraphStatus::Computing => {}
        ended => return Outcome::Done(format!("{graph} has ended ({ended:?}) before this entry contributed")),
    }
    let config = crate::federated::FederatedConfig {
        server: context.server.clone(),
        token: context.token.clone(),
        trust: context.trust.clone(),
        graph,
        file: entry.file.clone(),
    };
    match crate::federated::contribute(&config).await {
        Ok(contribution) => {
            let why = format!(
                "contributed the statistics of {} of {} rows to {graph}",
                contribution.kept_rows, contribution.rows
            );
            context.board.update(index, |row| row.succeeded(why.clone()));
            Outcome::Done(why)
        }
        // The one conflict left once the query is open: this provider has contributed already
        // (an earlier attempt's submission arrived, its answer did not).
        Err(Error::Refused { code: ErrorCode::Conflict, message }) => {
            Outcome::Done(format!("ravsock already has this provider's contribution: {message}"))
        }
        Err(error) if fatal(&error) => Outcome::Fatal(error.to_string()),
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

async fn topics(
    index: usize,
    entry: TopicsEntry,
    retry: RetryPolicy,
    context: Context,
    stopping: watch::Receiver<bool>,
) -> Outcome {
    use super::topics::TopicEvent;
    use ravproto::topics::TopicEndCode;
    let topic = ravproto::topics::TopicId(entry.topic);
    let (events, mut seen) = mpsc::unbounded_channel();
    let board = context.board.clone();
    let watcher = tokio::spawn(async move {
        while let Some(event) = seen.recv().await {
            board.update(index, |row| match event {
                TopicEvent::Subscribed => row.succeeded(format!("subscribed to {topic}; waiting for a round")),
                TopicEvent::Opened { round } => row.detail = format!("round {round} open; fetching"),
                TopicEvent::FetchFailed { round, attempt, reason } => {
                    row.fetch_retries += 1;
                    row.detail = format!("round {round}: fetch {attempt} failed: {reason}");
                }
                TopicEvent::Answered { round, value } => {
                    row.rounds_answered += 1;
                    row.succeeded(format!("answered round {round} with {value}"));
                }
                TopicEvent::Missed { round, reason } => {
                    row.rounds_missed += 1;
                    row.detail = format!("missed round {round}: {reason}");
                }
                TopicEvent::Dropped { reason } => {
                    row.state = EntryState::Connecting;
                    row.detail = format!("dropped by ravsock ({reason}); connecting again");
                    row.last_drop = Some(reason);
                }
            });
        }
    });
    let config = super::topics::TopicWorkerConfig {
        server: context.server.clone(),
        token: context.token.clone(),
        trust: context.trust.clone(),
        topic,
        inference_url: entry.inference_url.0.clone(),
        fetch: super::topics::FetchPolicy { tries: entry.fetch_retries, timeout: entry.fetch_timeout.0, pauses: retry },
        events: Some(events),
    };
    let ended = super::topics::serve_topic(config, stopped(stopping.clone())).await;
    let _ = watcher.await;
    match ended {
        Ok(_) if *stopping.borrow() => Outcome::Done("stopped on request".into()),
        Ok(summary) => match summary.ended {
            // A file may name a topic before its requester opens it.
            Some(ended) if ended.code == TopicEndCode::NotFound => Outcome::Waiting(ended.reason),
            Some(ended) => Outcome::Done(ended.reason),
            None => Outcome::Failed("the topic's connection ended".into()),
        },
        Err(error) if fatal(&error) => Outcome::Fatal(error.to_string()),
        Err(error) => Outcome::Failed(error.to_string()),
    }
}

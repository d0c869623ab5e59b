//! ravpy, the Raven provider.
//!
//! [`participate`] connects to ravsock's `/provider` socket.io namespace with a token,
//! reports its benchmark, joins a graph (or any), computes assignments with the `ravexec`
//! kernels and sends the outputs back, until its shutdown future resolves. Port of ravpy's
//! `participate` (§4.2) without its failure modes: no `os._exit` on errors (the client
//! reconnects with backoff and re-joins), no lost work queue (assignments are handled as they
//! arrive, several at once), and a refused token or protocol version stops it with a clear
//! error instead of a silent retry loop.

pub mod bench;
pub mod compute;

use bytes::Bytes;
use futures_util::FutureExt;
use ravproto::messages::Benchmark;
use ravproto::provider::{
    AssignHeader, EVENT_ASSIGN, EVENT_JOIN, EVENT_OP_FAILED, EVENT_REJECTED, EVENT_RESULT, EVENT_WITHDRAW, Frame,
    JoinRequest, NAMESPACE, ProviderAuth, Rejected, Withdraw,
};
use ravproto::{GraphId, PROTOCOL_VERSION};
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
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
    /// Work only on this graph.
    pub graph: Option<GraphId>,
    /// The benchmark to report (measured when `None`).
    pub benchmark: Option<Benchmark>,
    /// Where to report progress (a terminal view, a test waiting for the join).
    pub events: Option<mpsc::UnboundedSender<ProviderEvent>>,
}

/// What a provider reports while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderEvent {
    /// Joined (again, after a reconnect).
    Joined,
    /// An assignment was computed and its outputs sent.
    Computed {
        /// The assignment.
        assignment: u64,
        /// Ops computed.
        ops: u64,
        /// Time spent computing.
        millis: f64,
    },
    /// An op of an assignment failed.
    Failed {
        /// The assignment.
        assignment: u64,
        /// The kernel's message.
        reason: String,
    },
}

fn report(events: &Option<mpsc::UnboundedSender<ProviderEvent>>, event: ProviderEvent) {
    if let Some(events) = events {
        let _ = events.send(event);
    }
}

/// Why participation stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the connection (token, protocol version).
    #[error("the server refused this provider: {0}")]
    Refused(String),
    /// The server refused the join.
    #[error("the server rejected the join: {0}")]
    Rejected(String),
    /// The socket.io client failed to start.
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        /// The URL.
        server: String,
        /// What the client said.
        reason: String,
    },
}

/// What the socket callbacks hand to the main loop.
#[derive(Debug)]
enum Incoming {
    Connected,
    Assign(Bytes),
    Withdraw(u64),
    Rejected(String),
    Error(String),
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
}

/// Runs the provider until `shutdown` resolves (then finishes the work in hand).
pub async fn participate(config: ParticipateConfig, shutdown: impl Future<Output = ()>) -> Result<Summary, Error> {
    let benchmark = match config.benchmark.clone() {
        Some(b) => b,
        None => tokio::task::spawn_blocking(bench::measure).await.unwrap_or_else(|_| bench::measure()),
    };
    tracing::info!(
        score = benchmark.speed_score,
        cores = benchmark.cores,
        ram = benchmark.ram_bytes,
        gpu = benchmark.gpu,
        "benchmark"
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let auth = ProviderAuth { token: config.token.clone(), protocol_version: PROTOCOL_VERSION };
    let on = |tx: &mpsc::UnboundedSender<Incoming>, make: fn(Payload) -> Option<Incoming>| {
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
    let client = ClientBuilder::new(config.server.clone())
        .namespace(NAMESPACE)
        .auth(serde_json::to_value(&auth).expect("auth serializes"))
        .reconnect(true)
        .reconnect_on_disconnect(true)
        .reconnect_delay(250, 5_000)
        // Handshake on websocket directly: with the polling handshake, messages exchanged
        // while the client upgrades to websocket were seen to get lost.
        .transport_type(rust_socketio::TransportType::Websocket)
        .on("open", on(&tx, |_| Some(Incoming::Connected)))
        .on(
            EVENT_ASSIGN,
            on(&tx, |p| match p {
                Payload::Binary(bytes) => Some(Incoming::Assign(bytes)),
                _ => None,
            }),
        )
        .on(EVENT_WITHDRAW, on(&tx, |p| first_json::<Withdraw>(p).map(|w| Incoming::Withdraw(w.assignment))))
        .on(EVENT_REJECTED, on(&tx, |p| first_json::<Rejected>(p).map(|r| Incoming::Rejected(r.reason))))
        .on("error", on(&tx, |p| Some(Incoming::Error(describe(&p)))))
        .connect()
        .await
        .map_err(|e| Error::Connect { server: config.server.clone(), reason: e.to_string() })?;

    let summary = Arc::new(Mutex::new(Summary::default()));
    let withdrawn: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let mut in_hand = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    let outcome = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            Some(done) = in_hand.join_next(), if !in_hand.is_empty() => {
                if let Err(error) = done {
                    tracing::error!(cause = %error, "assignment task failed");
                }
            }
            message = rx.recv() => match message {
                None => break Ok(()),
                Some(Incoming::Connected) => {
                    // Join again after every (re)connect: the server forgets a provider when
                    // its socket closes.
                    let join = JoinRequest { benchmark: benchmark.clone(), graph: config.graph };
                    let _ = client.emit(EVENT_JOIN, serde_json::to_value(&join).expect("serializes")).await;
                    tracing::info!(server = %config.server, graph = ?config.graph, "joined");
                    report(&config.events, ProviderEvent::Joined);
                }
                Some(Incoming::Assign(bytes)) => {
                    in_hand.spawn(handle_assignment(client.clone(), bytes, summary.clone(), withdrawn.clone(), config.events.clone()));
                }
                Some(Incoming::Withdraw(assignment)) => {
                    tracing::info!(assignment, "assignment withdrawn by the server");
                    withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(assignment);
                }
                Some(Incoming::Rejected(reason)) => break Err(Error::Rejected(reason)),
                Some(Incoming::Error(reason)) => {
                    if reason.contains("invalid token") || reason.contains("protocol version") || reason.contains("cannot provide") {
                        break Err(Error::Refused(reason));
                    }
                    tracing::warn!(%reason, "connection problem; the client reconnects");
                }
            },
        }
    };
    // Finish (and report) what is in hand before leaving.
    while let Some(done) = in_hand.join_next().await {
        if let Err(error) = done {
            tracing::error!(cause = %error, "assignment task failed");
        }
    }
    let _ = client.disconnect().await;
    let summary = *summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tracing::info!(subgraphs = summary.subgraphs, ops = summary.ops, "stopped");
    outcome.map(|()| summary)
}

async fn handle_assignment(
    client: Client,
    bytes: Bytes,
    summary: Arc<Mutex<Summary>>,
    withdrawn: Arc<Mutex<BTreeSet<u64>>>,
    events: Option<mpsc::UnboundedSender<ProviderEvent>>,
) {
    let decoded = ravproto::provider::unstuff(&bytes).and_then(|raw| Frame::<AssignHeader>::decode(&raw));
    let frame = match decoded {
        Ok(frame) => frame,
        Err(error) => {
            tracing::error!(cause = %error, "undecodable assignment");
            return;
        }
    };
    let assignment = frame.header.assignment;
    let ops = frame.header.ops.len() as u64;
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || compute::run(frame)).await;
    if withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&assignment) {
        return;
    }
    match result {
        Ok(Ok(frame)) => {
            let bytes = Bytes::from(frame.encode());
            if let Err(error) = client.emit(EVENT_RESULT, Payload::Binary(bytes)).await {
                tracing::warn!(assignment, cause = %error, "cannot send results; the server will reassign");
                return;
            }
            let mut summary = summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            summary.subgraphs += 1;
            summary.ops += ops;
            let millis = started.elapsed().as_secs_f64() * 1e3;
            tracing::info!(assignment, ops, ms = millis, total_ops = summary.ops, "subgraph computed");
            report(&events, ProviderEvent::Computed { assignment, ops, millis });
        }
        Ok(Err(report)) => {
            tracing::warn!(assignment, op = %report.op_id, reason = %report.reason, "op failed");
            let _ = client.emit(EVENT_OP_FAILED, serde_json::to_value(&report).expect("serializes")).await;
            crate::report(&events, ProviderEvent::Failed { assignment, reason: report.reason });
        }
        Err(error) => tracing::error!(assignment, cause = %error, "compute task panicked"),
    }
}

fn first_json<T: serde::de::DeserializeOwned>(payload: Payload) -> Option<T> {
    match payload {
        Payload::Text(values) => values.into_iter().next().and_then(|v| serde_json::from_value(v).ok()),
        _ => None,
    }
}

fn describe(payload: &Payload) -> String {
    match payload {
        Payload::Text(values) => values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "),
        Payload::Binary(bytes) => format!("<{} bytes>", bytes.len()),
        #[allow(deprecated)]
        Payload::String(text) => text.clone(),
    }
}

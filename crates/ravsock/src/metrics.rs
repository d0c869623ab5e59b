//! ravsock's metrics, for `GET /metrics` in the Prometheus (OpenMetrics) text format.
//!
//! One [`Metrics`] per server, not a process-wide recorder: tests run several servers in one
//! process, and each must count only its own. `prometheus-client` (the Prometheus project's
//! crate) fits that: a registry is a value, and its metrics are atomics the tasks update
//! without locks. The list with each metric's meaning is in the README (Metrics).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use ravproto::status::GraphStatus;
use std::sync::Arc;

/// The labels of a metric split by a graph's status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// `pending`, `computing`, `computed`, `failed` or `cancelled`.
    pub status: &'static str,
}

/// The labels of a metric split by a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A fixed word (see [`Metrics::failures`]).
    pub reason: &'static str,
}

/// The labels of a byte count through ravftp.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// `to_providers` (inputs placed in a provider's home for download), `to_requesters`
    /// (persisted values placed in a requester's home), `from_requesters` (values a requester
    /// uploaded, checked and adopted) or `from_providers`
    /// (results a provider uploaded, checked and adopted).
    pub direction: &'static str,
}

/// The labels of a topic's rounds.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoundLabel {
    /// `opened` or `closed`.
    pub event: &'static str,
}

/// The server's metrics; cloning shares them.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<Inner>);

/// The metrics themselves; fields are public so each task updates its own.
#[derive(Debug)]
pub struct Inner {
    registry: Registry,
    /// Graphs by status, set from the database at each scrape.
    pub graphs: Family<StatusLabel, Gauge>,
    /// Provider connections open now.
    pub providers_connected: Gauge,
    /// Subgraphs ready and waiting for a provider, set from the scheduler at each scrape.
    pub ready_subgraphs: Gauge,
    /// Subgraphs handed out and not yet answered, set from the scheduler at each scrape.
    pub assigned_subgraphs: Gauge,
    /// Subgraphs handed out to providers.
    pub subgraphs_assigned: Counter,
    /// Subgraphs whose results were stored.
    pub subgraphs_computed: Counter,
    /// Ops whose results were stored (through their subgraphs).
    pub ops_computed: Counter,
    /// Failures by reason: `attempt` (a subgraph retried), `graph` (a graph failed),
    /// `evicted` (a provider missed a deadline), `refused_result` (a result of the wrong dtype
    /// or shape), `server` (the server could not hand out or store), `task_panic` (a background
    /// task panicked and was started again).
    pub failures: Family<ReasonLabel, Counter>,
    /// Seconds from a subgraph's hand-out to its results stored.
    pub subgraph_seconds: Histogram,
    /// Seconds to hand a subgraph out: read its inputs, place files, send it.
    pub assign_seconds: Histogram,
    /// Seconds of the transaction that stores a subgraph's results.
    pub db_write_seconds: Histogram,
    /// Bytes of values moved through ravftp, by direction.
    pub ftp_bytes: Family<DirectionLabel, Counter>,
    /// Times the scheduler task panicked and was started again from the database.
    pub scheduler_restarts: Counter,
    /// Topics' rounds opened and closed.
    pub topic_rounds: Family<RoundLabel, Counter>,
    /// Workers' answers to rounds, stored (a repeat of a stored answer is not counted).
    pub topic_answers: Counter,
    /// Provider connections over the last hour, at each change (the dashboard's chart).
    providers_history: std::sync::Mutex<std::collections::VecDeque<(i64, u64)>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl std::ops::Deref for Metrics {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Latency buckets from 100 µs to about 105 s (doubling).
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

impl Metrics {
    /// A fresh set, every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ravsock");
        let inner = Inner {
            graphs: Family::default(),
            providers_connected: Gauge::default(),
            ready_subgraphs: Gauge::default(),
            assigned_subgraphs: Gauge::default(),
            subgraphs_assigned: Counter::default(),
            subgraphs_computed: Counter::default(),
            ops_computed: Counter::default(),
            providers_history: Default::default(),
            failures: Family::default(),
            subgraph_seconds: seconds(),
            assign_seconds: seconds(),
            db_write_seconds: seconds(),
            ftp_bytes: Family::default(),
            scheduler_restarts: Counter::default(),
            topic_rounds: Family::default(),
            topic_answers: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("graphs", "Graphs by status", inner.graphs.clone());
        registry.register("providers_connected", "Provider connections open now", inner.providers_connected.clone());
        registry.register(
            "ready_subgraphs",
            "Subgraphs ready and waiting for a provider",
            inner.ready_subgraphs.clone(),
        );
        registry.register(
            "assigned_subgraphs",
            "Subgraphs handed out and not yet answered",
            inner.assigned_subgraphs.clone(),
        );
        registry.register("subgraphs_assigned", "Subgraphs handed out to providers", inner.subgraphs_assigned.clone());
        registry.register(
            "subgraphs_computed",
            "Subgraphs whose results were stored",
            inner.subgraphs_computed.clone(),
        );
        registry.register("ops_computed", "Ops whose results were stored", inner.ops_computed.clone());
        registry.register("failures", "Failures by reason", inner.failures.clone());
        registry.register(
            "subgraph_seconds",
            "Seconds from a subgraph's hand-out to its results stored",
            inner.subgraph_seconds.clone(),
        );
        registry.register(
            "assign_seconds",
            "Seconds to hand a subgraph out (inputs read, files placed, sent)",
            inner.assign_seconds.clone(),
        );
        registry.register(
            "db_write_seconds",
            "Seconds of the transaction storing a subgraph's results",
            inner.db_write_seconds.clone(),
        );
        registry.register("ftp_bytes", "Bytes of values moved through ravftp", inner.ftp_bytes.clone());
        registry.register(
            "scheduler_restarts",
            "Times the scheduler task panicked and was started again from the database",
            inner.scheduler_restarts.clone(),
        );
        registry.register("topic_rounds", "Topics' rounds opened and closed", inner.topic_rounds.clone());
        registry.register("topic_answers", "Workers' answers to topics' rounds, stored", inner.topic_answers.clone());
        Metrics(Arc::new(Inner { registry, ..inner }))
    }

    /// Sets the graphs-by-status gauge from a count of each status (a missing one is zero).
    pub fn set_graphs(&self, counts: &[(GraphStatus, u64)]) {
        for status in [
            GraphStatus::Pending,
            GraphStatus::Computing,
            GraphStatus::Computed,
            GraphStatus::Failed,
            GraphStatus::Cancelled,
        ] {
            let name = match status {
                GraphStatus::Pending => "pending",
                GraphStatus::Computing => "computing",
                GraphStatus::Computed => "computed",
                GraphStatus::Failed => "failed",
                GraphStatus::Cancelled => "cancelled",
            };
            let count = counts.iter().find(|(counted, _)| *counted == status).map_or(0, |(_, count)| *count);
            self.graphs.get_or_create(&StatusLabel { status: name }).set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// A provider connection opened (`opened`) or closed: the gauge and its hour of history.
    pub fn provider_connection(&self, opened: bool) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64);
        // Under the lock, so that the history's counts come in the gauge's order.
        let mut history = self.providers_history.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = if opened { self.providers_connected.inc() + 1 } else { self.providers_connected.dec() - 1 };
        // One point per second is enough for a chart of an hour.
        if history.back().is_some_and(|&(last, _)| last == at) {
            history.pop_back();
        }
        history.push_back((at, now.max(0) as u64));
        while history.front().is_some_and(|&(first, _)| first < at - 3_600) && history.len() > 1 {
            history.pop_front();
        }
    }

    /// Provider connections over the last hour: `(unix seconds, count)` at each change.
    pub fn providers_history(&self) -> Vec<(i64, u64)> {
        self.providers_history.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().copied().collect()
    }

    /// Sets the queue gauges: subgraphs `ready` for a provider and `assigned` to one.
    pub fn set_depth(&self, ready: u64, assigned: u64) {
        self.ready_subgraphs.set(i64::try_from(ready).unwrap_or(i64::MAX));
        self.assigned_subgraphs.set(i64::try_from(assigned).unwrap_or(i64::MAX));
    }

    /// Counts a failure.
    pub fn failed(&self, reason: &'static str) {
        self.failures.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts a round `opened` or `closed`.
    pub fn round(&self, event: &'static str) {
        self.topic_rounds.get_or_create(&RoundLabel { event }).inc();
    }

    /// Counts bytes through ravftp.
    pub fn ftp(&self, direction: &'static str, bytes: u64) {
        self.ftp_bytes.get_or_create(&DirectionLabel { direction }).inc_by(bytes);
    }

    /// Every metric in the OpenMetrics text format (which Prometheus reads).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

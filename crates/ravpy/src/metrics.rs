//! A provider's own metrics, for `GET /metrics` in the Prometheus (OpenMetrics) text format on
//! an optional address (`ravpy participate --metrics-bind`, `metrics_bind` in a worker file):
//! subgraphs and ops computed, failures, joins and dropped connections, by entry (the worker
//! file's entry name, `participate` for the command), and the time spent computing.
//!
//! Counted from the [`ProviderEvent`]s that the terminal view and the node's board already
//! read, so the compute path has nothing more to do. One [`Metrics`] per node, not a
//! process-wide recorder (as in ravsock): tests run several in one process. The README lists
//! each metric (Metrics).

use crate::ProviderEvent;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The labels of a metric split by entry.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EntryLabel {
    /// The worker file's entry name, or `participate`.
    pub entry: String,
}

/// A provider's metrics; cloning shares them.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    subgraphs: Family<EntryLabel, Counter>,
    ops: Family<EntryLabel, Counter>,
    failures: Family<EntryLabel, Counter>,
    joins: Family<EntryLabel, Counter>,
    drops: Family<EntryLabel, Counter>,
    compute_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("ravpy");
        let subgraphs = Family::<EntryLabel, Counter>::default();
        registry.register("subgraphs_computed", "Subgraphs computed and sent back", subgraphs.clone());
        let ops = Family::<EntryLabel, Counter>::default();
        registry.register("ops_computed", "Ops computed in those subgraphs", ops.clone());
        let failures = Family::<EntryLabel, Counter>::default();
        registry.register("subgraph_failures", "Subgraphs an op of which failed here", failures.clone());
        let joins = Family::<EntryLabel, Counter>::default();
        registry.register("joins", "Joins to ravsock (the first and each after a reconnect)", joins.clone());
        let drops = Family::<EntryLabel, Counter>::default();
        registry.register("connection_drops", "Connections ravsock closed or that broke", drops.clone());
        // 1 ms to about 65 s.
        let compute_seconds = Histogram::new(exponential_buckets(0.001, 4.0, 9));
        registry.register("compute_seconds", "Time computing one subgraph", compute_seconds.clone());
        Metrics(Arc::new(Inner { registry, subgraphs, ops, failures, joins, drops, compute_seconds }))
    }
}

impl Metrics {
    /// Counts what `event` of the entry `entry` says happened.
    pub fn observe(&self, entry: &str, event: &ProviderEvent) {
        let label = EntryLabel { entry: entry.to_string() };
        let m = &self.0;
        match event {
            ProviderEvent::Joined => {
                m.joins.get_or_create(&label).inc();
            }
            ProviderEvent::Computed { ops, millis, .. } => {
                m.subgraphs.get_or_create(&label).inc();
                m.ops.get_or_create(&label).inc_by(*ops);
                m.compute_seconds.observe(millis / 1000.0);
            }
            ProviderEvent::Failed { .. } => {
                m.failures.get_or_create(&label).inc();
            }
            // Counted by the server (a job's counts); the node's own metrics are for graphs.
            ProviderEvent::Sliced { .. } | ProviderEvent::JobEnded { .. } => {}
            ProviderEvent::Dropped { .. } => {
                m.drops.get_or_create(&label).inc();
            }
        }
    }

    /// The metrics as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.0.registry);
        text
    }

    /// Serves `GET /metrics` on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = self.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        );
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await
    }

    /// Binds `address` and serves `GET /metrics` there in the background (for the node's
    /// lifetime); the bound address, or why it could not be bound.
    pub async fn spawn_server(&self, address: std::net::SocketAddr) -> std::io::Result<std::net::SocketAddr> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        let metrics = self.clone();
        tokio::spawn(async move {
            if let Err(error) = metrics.serve(listener, std::future::pending()).await {
                tracing::error!(cause = %error, "the metrics server stopped");
            }
        });
        tracing::info!(%bound, "metrics at http://{bound}/metrics");
        Ok(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_are_counted_by_entry_and_served_as_openmetrics() {
        let metrics = Metrics::default();
        metrics.observe("gpu-box", &ProviderEvent::Joined);
        for _ in 0..2 {
            metrics.observe("gpu-box", &ProviderEvent::Computed { assignment: 1, ops: 5, millis: 3.0 });
        }
        metrics.observe("any", &ProviderEvent::Failed { assignment: 2, reason: "singular".into() });
        metrics.observe("any", &ProviderEvent::Dropped { reason: "deadline".into() });
        let bound = metrics.spawn_server("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let http = ravclient::Trust::system().reqwest().expect("an HTTP client");
        let reply = http.get(format!("http://{bound}/metrics")).send().await.unwrap();
        assert!(reply.status().is_success());
        let text = reply.text().await.unwrap();
        for line in [
            r#"ravpy_subgraphs_computed_total{entry="gpu-box"} 2"#,
            r#"ravpy_ops_computed_total{entry="gpu-box"} 10"#,
            r#"ravpy_joins_total{entry="gpu-box"} 1"#,
            r#"ravpy_subgraph_failures_total{entry="any"} 1"#,
            r#"ravpy_connection_drops_total{entry="any"} 1"#,
            "ravpy_compute_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}

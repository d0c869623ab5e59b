//! Whether the server can take work (`GET /readyz`), and its metrics (`GET /metrics`): the database and the data directory each
//! take a write, and the scheduler task runs; with the last storage failure seen.

use super::graphs::Graphs;
use ravproto::messages::{Readiness, ReadinessCheck};
use std::time::Duration;

/// A check that takes longer than this fails: a load balancer asking must get an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a scrape waits for the scheduler's queue depth.
const DEPTH_WAIT: Duration = Duration::from_secs(1);

impl Graphs {
    /// Each readiness check, run now.
    pub async fn readiness(&self) -> Readiness {
        let check = |name: &str, outcome: Result<(), String>| ReadinessCheck {
            name: name.into(),
            ok: outcome.is_ok(),
            detail: outcome.err(),
        };
        let database = match tokio::time::timeout(PROBE_TIMEOUT, self.db.probe_write()).await {
            Ok(written) => written.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        };
        // File I/O blocks: a hung disk must not hang a runtime thread too.
        let bulk = self.bulk.clone();
        let data_dir =
            match tokio::time::timeout(PROBE_TIMEOUT, tokio::task::spawn_blocking(move || bulk.probe())).await {
                Ok(Ok(written)) => written.map_err(|e| e.to_string()),
                Ok(Err(panicked)) => Err(panicked.to_string()),
                Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
            };
        let scheduler = match self.scheduler.running() {
            true => Ok(()),
            false => Err("the scheduler task has stopped".to_string()),
        };
        let checks = vec![check("database", database), check("data_dir", data_dir), check("scheduler", scheduler)];
        let last_storage_fault =
            self.scheduler.health().last_fault().map(|(at, what)| format!("at {at} (unix time): {what}"));
        Readiness { ready: checks.iter().all(|c| c.ok), checks, last_storage_fault }
    }
}

impl Graphs {
    /// `GET /metrics` (admin only): every metric, the graphs by status read now.
    pub async fn metrics(&self, caller: &crate::db::Account) -> crate::error::Result<String> {
        super::access::admin(caller)?;
        let metrics = self.scheduler.metrics();
        metrics.set_graphs(&self.db.graph_counts().await?);
        // The scheduler answers after what it has queued: a scrape waits at most a second for
        // it, and a busier one keeps the depth of the last scrape.
        if let Ok(Ok(depth)) = tokio::time::timeout(DEPTH_WAIT, self.scheduler.depth()).await {
            metrics.set_depth(depth.ready_subgraphs, depth.assigned_subgraphs);
        }
        Ok(metrics.render())
    }
}

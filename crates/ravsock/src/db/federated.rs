//! The federated tables: a query's keys and aggregate (`federated_queries`) and one submission
//! per provider (`federated_submissions`, whose key refuses a second one).

use super::graphs::computed_status;
use super::{Db, now_secs, parse_status, status_name};
use crate::error::{Error, Result};
use ravproto::GraphId;
use ravproto::status::{GraphStatus, OpStatus};

impl Db {
    /// Stores a federated graph's evaluation keys and the public key providers download.
    pub async fn set_federated_keys(&self, graph: GraphId, public_key: &[u8], evaluation_keys: &[u8]) -> Result<()> {
        on_backend!(self, |pool, sql, DB| sqlx::query(
            "INSERT INTO federated_queries (graph_id, public_key, evaluation_keys) VALUES ($1, $2, $3)
             ON CONFLICT (graph_id) DO UPDATE SET public_key = excluded.public_key,
             evaluation_keys = excluded.evaluation_keys",
        )
        .bind(graph.0 as i64)
        .bind(public_key)
        .bind(evaluation_keys)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The public key of a federated graph, if uploaded.
    pub async fn federated_public_key(&self, graph: GraphId) -> Result<Option<Vec<u8>>> {
        let key: Option<Option<Vec<u8>>> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT public_key FROM federated_queries WHERE graph_id = $1"
        )
        .bind(graph.0 as i64)
        .fetch_optional(pool)
        .await)?;
        Ok(key.flatten())
    }

    /// The evaluation keys of a federated graph, if uploaded.
    pub async fn federated_evaluation_keys(&self, graph: GraphId) -> Result<Option<Vec<u8>>> {
        let keys: Option<Option<Vec<u8>>> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT evaluation_keys FROM federated_queries WHERE graph_id = $1"
        )
        .bind(graph.0 as i64)
        .fetch_optional(pool)
        .await)?;
        Ok(keys.flatten())
    }

    /// Records a provider's submission to an open federated graph; the number of contributors
    /// after it. Refused when the graph is not open, when it already has `max_clients`, and
    /// when this provider already reported.
    pub async fn add_federated_submission(
        &self,
        graph: GraphId,
        provider: i64,
        payload: &str,
        max_clients: u32,
    ) -> Result<u32> {
        let count = on_backend!(self, |pool, sql, DB| {
            let mut tx = pool.begin_with(sql.begin_write).await?;
            let status: Option<String> =
                sqlx::query_scalar(sql.graph_status_for_update).bind(graph.0 as i64).fetch_optional(&mut *tx).await?;
            if status.as_deref().map(parse_status::<GraphStatus>).transpose()? != Some(GraphStatus::Computing) {
                return Err(Error::Conflict(format!("{graph} is not open to submissions")));
            }
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM federated_submissions WHERE graph_id = $1")
                .bind(graph.0 as i64)
                .fetch_one(&mut *tx)
                .await?;
            if count >= i64::from(max_clients) {
                return Err(Error::Conflict(format!("{graph} already has its {max_clients} providers")));
            }
            let inserted = sqlx::query(
                "INSERT INTO federated_submissions (graph_id, provider, payload, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(graph.0 as i64)
            .bind(provider)
            .bind(payload)
            .bind(now_secs())
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(Error::Conflict(format!(
                        "this provider already reported to {graph}; each provider reports once"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            count
        });
        Ok(count as u32 + 1)
    }

    /// Providers that reported to a federated graph.
    pub async fn federated_contributors(&self, graph: GraphId) -> Result<u32> {
        let count: i64 = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT COUNT(*) FROM federated_submissions WHERE graph_id = $1"
        )
        .bind(graph.0 as i64)
        .fetch_one(pool)
        .await)?;
        Ok(count as u32)
    }

    /// Every submission to a federated graph (their payload JSON), oldest first.
    pub async fn federated_submissions(&self, graph: GraphId) -> Result<Vec<String>> {
        Ok(on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT payload FROM federated_submissions WHERE graph_id = $1 ORDER BY created_at, provider",
        )
        .bind(graph.0 as i64)
        .fetch_all(pool)
        .await)?)
    }

    /// The aggregate of a closed federated graph (JSON of a `FederatedAggregate`).
    pub async fn federated_aggregate(&self, graph: GraphId) -> Result<Option<String>> {
        let aggregate: Option<Option<String>> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT aggregate FROM federated_queries WHERE graph_id = $1"
        )
        .bind(graph.0 as i64)
        .fetch_optional(pool)
        .await)?;
        Ok(aggregate.flatten())
    }

    /// Closes a federated graph in one transaction: stores its aggregate and marks the graph
    /// and its ops computed.
    pub async fn close_federated(&self, graph: GraphId, aggregate: &str) -> Result<()> {
        self.writing_graph(graph, computed_status, self.close_federated_tx(graph, aggregate)).await
    }

    async fn close_federated_tx(&self, graph: GraphId, aggregate: &str) -> Result<()> {
        on_backend!(self, |pool, sql, DB| {
            let mut tx = pool.begin_with(sql.begin_write).await?;
            sqlx::query(
                "INSERT INTO federated_queries (graph_id, aggregate) VALUES ($1, $2)
                 ON CONFLICT (graph_id) DO UPDATE SET aggregate = excluded.aggregate",
            )
            .bind(graph.0 as i64)
            .bind(aggregate)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE graphs SET status = $1, failure = NULL WHERE id = $2")
                .bind(status_name(GraphStatus::Computed))
                .bind(graph.0 as i64)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE ops SET status = $1 WHERE graph_id = $2")
                .bind(status_name(OpStatus::Computed))
                .bind(graph.0 as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

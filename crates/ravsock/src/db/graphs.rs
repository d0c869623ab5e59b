//! The `graphs` table: one row per graph with its owner, meta (the requester's description and
//! requirements) and status; its progress counted over its ops.

use super::cache::NextIds;
use super::rows::GraphRow;
use super::{Db, Statement, now_secs, parse_status, status_name, to_json};
use crate::error::Result;
use ravproto::GraphId;
use ravproto::messages::{GraphMeta, GraphProgress, OpFailure};
use ravproto::status::{GraphStatus, OpStatus};
use std::collections::BTreeMap;

/// A graph row.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredGraph {
    pub id: GraphId,
    /// Owning account.
    pub owner: i64,
    /// Requester's description.
    pub meta: GraphMeta,
    pub status: GraphStatus,
    /// Why it failed (JSON of an `OpFailure`).
    pub failure: Option<String>,
    /// When its values were removed after the result retention (unix seconds), if they were.
    pub expired_at: Option<i64>,
}

impl StoredGraph {
    /// The row of a graph just created, as stored.
    pub(super) fn new(id: GraphId, owner: i64, meta: GraphMeta, status: GraphStatus) -> StoredGraph {
        StoredGraph { id, owner, meta, status, failure: None, expired_at: None }
    }
}

/// The change to a graph row that storing its last results or closing its federated query
/// makes.
pub(super) fn computed_status(row: &mut StoredGraph) {
    row.status = GraphStatus::Computed;
    row.failure = None;
}

impl Db {
    /// Creates a graph owned by `owner`.
    pub async fn create_graph(&self, owner: i64, meta: &GraphMeta) -> Result<GraphId> {
        let meta = to_json(meta)?;
        let graph = self.next_ids().await?.graph();
        let mut tx = self.write_tx().await?;
        tx.execute(self.graph_insert(graph, owner, meta, GraphStatus::Pending)).await?;
        tx.commit().await?;
        Ok(graph)
    }

    /// The `INSERT` of a new graph row.
    pub(super) fn graph_insert(&self, graph: GraphId, owner: i64, meta: String, status: GraphStatus) -> Statement {
        Statement::new(self.dialect().insert_graph)
            .int(graph.0 as i64)
            .sql(", ")
            .int(owner)
            .sql(", ")
            .text(Some(meta))
            .sql(", ")
            .text(Some(status_name(status)))
            .sql(", ")
            .int(now_secs())
            .sql(")")
    }

    /// The next free ids, read from the database at first use.
    pub(super) async fn next_ids(&self) -> Result<&NextIds> {
        self.ids
            .get_or_try_init(|| async {
                let (graph, op): (i64, i64) =
                    on_backend!(self, |pool, sql, DB| sqlx::query_as(sql.next_ids).fetch_one(pool).await)?;
                Ok(NextIds { graph: graph.into(), op: op.into() })
            })
            .await
    }

    /// Replaces a graph's meta (e.g. requirements learned from its ops).
    pub async fn set_graph_meta(&self, graph: GraphId, meta: &GraphMeta) -> Result<()> {
        let json = to_json(meta)?;
        let cached = meta.clone();
        self.update_graph(graph, |row| row.meta = cached, "UPDATE graphs SET meta = $1 WHERE id = $2", &[Some(&json)])
            .await
    }

    /// Sets a graph's status (and failure reason).
    pub async fn set_graph_status(&self, graph: GraphId, status: GraphStatus, failure: Option<&str>) -> Result<()> {
        let cached = failure.map(str::to_string);
        let change = |row: &mut StoredGraph| {
            row.status = status;
            row.failure = cached;
        };
        let statement = "UPDATE graphs SET status = $1, failure = $2 WHERE id = $3";
        self.update_graph(graph, change, statement, &[Some(&status_name(status)), failure]).await
    }

    /// Runs one `UPDATE` of the row of `graph` (`statement` binds `values` as `$1`… and the
    /// graph's id last), which changes it as `change` does.
    async fn update_graph(
        &self,
        graph: GraphId,
        change: impl FnOnce(&mut StoredGraph),
        statement: &'static str,
        values: &[Option<&str>],
    ) -> Result<()> {
        self.writing_graph(graph, change, async {
            on_backend!(self, |pool, sql, DB| {
                let mut query = sqlx::query(statement);
                for value in values {
                    query = query.bind(*value);
                }
                query.bind(graph.0 as i64).execute(pool).await?;
            });
            Ok(())
        })
        .await
    }

    /// Runs `write`, which changes the row of `graph` as `change` does, then brings the cached
    /// row up to date.
    pub(super) async fn writing_graph<T>(
        &self,
        graph: GraphId,
        change: impl FnOnce(&mut StoredGraph),
        write: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let written = write.await;
        self.graphs.written(graph, written.is_ok(), change);
        written
    }

    /// A graph, if it exists.
    pub async fn graph(&self, graph: GraphId) -> Result<Option<StoredGraph>> {
        if let Some(row) = self.graphs.get(graph) {
            return Ok(Some(row));
        }
        let read_at = self.graphs.generation();
        let row: Option<GraphRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(
            "SELECT ",
            graph_columns!(),
            " FROM graphs WHERE id = $1"
        ))
        .bind(graph.0 as i64)
        .fetch_optional(pool)
        .await)?;
        let row = row.map(GraphRow::into_graph).transpose()?;
        if let Some(row) = &row {
            self.graphs.fill(read_at, row);
        }
        Ok(row)
    }

    /// Every graph of an owner, newest first.
    pub async fn graphs_of(&self, owner: i64) -> Result<Vec<StoredGraph>> {
        let rows: Vec<GraphRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(
            "SELECT ",
            graph_columns!(),
            " FROM graphs WHERE owner = $1 ORDER BY id DESC"
        ))
        .bind(owner)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(GraphRow::into_graph).collect()
    }

    /// Every graph with this status, newest first.
    pub async fn graphs_with_status(&self, status: GraphStatus) -> Result<Vec<StoredGraph>> {
        let rows: Vec<GraphRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(
            "SELECT ",
            graph_columns!(),
            " FROM graphs WHERE status = $1 ORDER BY id DESC"
        ))
        .bind(status_name(status))
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(GraphRow::into_graph).collect()
    }

    /// Graphs that were executing: a restarted server resumes them.
    pub async fn unfinished_graphs(&self) -> Result<Vec<GraphId>> {
        let ids: Vec<i64> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT id FROM graphs WHERE status = $1 ORDER BY id"
        )
        .bind(status_name(GraphStatus::Computing))
        .fetch_all(pool)
        .await)?;
        Ok(ids.into_iter().map(|id| GraphId(id as u64)).collect())
    }

    /// Number of graphs per status (for `GET /metrics`).
    pub async fn graph_counts(&self) -> Result<Vec<(GraphStatus, u64)>> {
        let rows: Vec<(String, i64)> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as("SELECT status, COUNT(*) FROM graphs GROUP BY status")
                .fetch_all(pool)
                .await)?;
        rows.into_iter().map(|(status, count)| Ok((parse_status(&status)?, count as u64))).collect()
    }

    /// Number of ops per status in a graph.
    pub async fn op_counts(&self, graph: GraphId) -> Result<BTreeMap<OpStatus, u64>> {
        let rows: Vec<(String, i64)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT status, COUNT(*) FROM ops WHERE graph_id = $1 GROUP BY status"
        )
        .bind(graph.0 as i64)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(|(status, count)| Ok((parse_status(&status)?, count as u64))).collect()
    }

    /// A stored graph's status and op counts.
    pub async fn progress(&self, graph: &StoredGraph) -> Result<GraphProgress> {
        let ops = self.op_counts(graph.id).await?;
        let failure: Option<OpFailure> = graph.failure.as_deref().and_then(|f| serde_json::from_str(f).ok());
        Ok(GraphProgress::from_counts(graph.id, graph.status, ops, failure))
    }
}

//! The `ops` table: a graph's ops as uploaded, with the requester's ids mapped to server ids
//! (inputs and param references alike), stored in multi-row INSERTs per chunk.

use super::rows::OpRow;
use super::values::value_inserts;
use super::{Db, Statement, StoredGraph, status_name, to_json};
use crate::error::{Error, Result};
use ravproto::messages::{GraphMeta, OpRecord, OpRef};
use ravproto::status::{GraphStatus, OpStatus};
use ravproto::{GraphId, OpId, Operation};
use std::collections::BTreeMap;

/// Rows per multi-row INSERT (7 columns each, far under SQLite's 32,766 and PostgreSQL's 65,535
/// bind variables).
pub(super) const ROWS_PER_INSERT: usize = 500;

/// One stored op.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredOp {
    /// Server id.
    pub id: OpId,
    /// The client's number.
    pub local_id: u64,
    /// Operator and params; param references name server ids.
    pub operation: Operation,
    /// Inputs, as server ids.
    pub inputs: Vec<OpId>,
    /// Persist name.
    pub persist: Option<String>,
    pub status: OpStatus,
}

/// The graph an upload goes to.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// One that exists.
    Graph(GraphId),
    /// One created in the upload's transaction, with its meta as JSON.
    New { owner: i64, meta: &'a str },
}

impl Db {
    /// Stores one upload chunk in a transaction, mapping the client's ids to server ids, and
    /// returns its ops as stored. `known` maps local ids already stored for this graph; it is
    /// extended with the chunk's (and must be dropped by the caller if this fails).
    ///
    /// Rows go in as multi-row INSERTs with ids allocated here: each statement is a round trip
    /// to SQLite's worker thread, and one per op held uploads to about 20,000 ops/s.
    ///
    /// With `then_compute`, the same transaction marks the graph computing (the last chunk of
    /// an upload with `?execute=true`: one commit fewer on the requester's round trip).
    pub async fn insert_ops(
        &self,
        graph: GraphId,
        records: &[OpRecord],
        known: &mut BTreeMap<u64, OpId>,
        adopt_file: impl FnMut(OpId, &OpRecord) -> Result<u64>,
        then_compute: bool,
    ) -> Result<Vec<StoredOp>> {
        let insert = self.insert_ops_tx(Target::Graph(graph), records, known, adopt_file, then_compute);
        let change = |row: &mut StoredGraph| {
            if then_compute {
                row.status = GraphStatus::Computing;
            }
        };
        Ok(self.writing_graph(graph, change, insert).await?.1)
    }

    /// Creates a graph owned by `owner` with all its `records`, already computing, in one
    /// transaction (`POST /graphs/run`: one commit for the whole submission).
    pub async fn create_computing_graph(
        &self,
        owner: i64,
        meta: &GraphMeta,
        records: &[OpRecord],
        adopt_file: impl FnMut(OpId, &OpRecord) -> Result<u64>,
    ) -> Result<(GraphId, Vec<StoredOp>)> {
        let json = to_json(meta)?;
        let read_at = self.graphs.generation();
        let target = Target::New { owner, meta: &json };
        let (graph, stored) = self.insert_ops_tx(target, records, &mut BTreeMap::new(), adopt_file, true).await?;
        // Nobody knows the new id yet: the row as written is the row as stored.
        let row = StoredGraph::new(graph, owner, meta.clone(), GraphStatus::Computing);
        self.graphs.fill(read_at, &row);
        Ok((graph, stored))
    }

    async fn insert_ops_tx(
        &self,
        target: Target<'_>,
        records: &[OpRecord],
        known: &mut BTreeMap<u64, OpId>,
        mut adopt_file: impl FnMut(OpId, &OpRecord) -> Result<u64>,
        then_compute: bool,
    ) -> Result<(GraphId, Vec<StoredOp>)> {
        let ids = self.next_ids().await?;
        let mut tx = self.write_tx().await?;
        let graph = match target {
            Target::Graph(graph) => graph,
            Target::New { owner, meta } => {
                let graph = ids.graph();
                let status = if then_compute { GraphStatus::Computing } else { GraphStatus::Pending };
                tx.execute(self.graph_insert(graph, owner, meta.to_string(), status)).await?;
                graph
            }
        };
        let next = ids.ops(records.len());
        let mut stored = Vec::with_capacity(records.len());
        for (offset, record) in records.iter().enumerate() {
            let id = OpId((next + offset as i64) as u64);
            let inputs: Vec<OpId> = record
                .inputs
                .iter()
                .map(|input| match input {
                    OpRef::Local(local) => known.get(local).copied(),
                    OpRef::Server(id) => Some(*id),
                })
                .collect::<Option<_>>()
                .ok_or_else(|| Error::Internal("inputs were validated before storing".into()))?;
            // Params name earlier ops by the requester's ids too: stored with the server's,
            // like the inputs, so nothing downstream translates them again.
            let mut operation = record.operation.clone();
            operation
                .map_param_refs(|local| known.get(&local.0).copied())
                .map_err(|_| Error::Internal("param references were validated before storing".into()))?;
            let has_value = record.value.is_some() || record.value_file.is_some();
            known.insert(record.local_id, id);
            stored.push(StoredOp {
                id,
                local_id: record.local_id,
                operation,
                inputs,
                persist: record.persist.clone(),
                status: if has_value { OpStatus::Computed } else { OpStatus::Pending },
            });
        }
        let mapped: BTreeMap<u64, OpId> = stored.iter().map(|op| (op.local_id, op.id)).collect();
        for batch in stored.chunks(ROWS_PER_INSERT) {
            let mut insert =
                Statement::new("INSERT INTO ops (id, graph_id, local_id, operation, inputs, persist, status) VALUES ");
            for (i, op) in batch.iter().enumerate() {
                let inputs: Vec<u64> = op.inputs.iter().map(|id| id.0).collect();
                let operation = to_json(&op.operation)?;
                let inputs = to_json(&inputs)?;
                insert = insert
                    .sql(if i == 0 { "(" } else { ", (" })
                    .int(op.id.0 as i64)
                    .sql(", ")
                    .int(graph.0 as i64)
                    .sql(", ")
                    .int(op.local_id as i64)
                    .sql(", ")
                    .text(Some(operation))
                    .sql(", ")
                    .text(Some(inputs))
                    .sql(", ")
                    .text(op.persist.clone())
                    .sql(", ")
                    .text(Some(status_name(op.status)))
                    .sql(")");
            }
            if let Err(error) = tx.execute(insert).await {
                drop(tx);
                return Err(self.refused(error, graph, records).await);
            }
        }
        let values: Vec<(i64, Vec<u8>)> = records
            .iter()
            .filter_map(|record| Some((mapped[&record.local_id].0 as i64, record.value.as_ref()?.encode_binary())))
            .collect();
        for insert in value_inserts(values) {
            tx.execute(insert).await?;
        }
        let files: Vec<&OpRecord> = records.iter().filter(|record| record.value_file.is_some()).collect();
        if !files.is_empty() {
            // The ops go in before their files are adopted: a chunk refused (a persist name
            // used twice) leaves the requester's files where they were.
            if let Err(error) = tx.ids(Vec::new()).await {
                drop(tx);
                return Err(self.refused(error, graph, records).await);
            }
        }
        for record in files {
            let id = mapped[&record.local_id];
            // Moved before the commit: if the commit fails the blob is an orphan, never a
            // computed op without its value.
            let len = adopt_file(id, record)?;
            tx.execute(
                Statement::new("INSERT INTO op_files (op_id, len) VALUES (")
                    .int(id.0 as i64)
                    .sql(", ")
                    .int(len as i64)
                    .sql(")"),
            )
            .await?;
        }
        if then_compute && matches!(target, Target::Graph(_)) {
            let update = Statement::new("UPDATE graphs SET status = ")
                .text(Some(status_name(GraphStatus::Computing)))
                .sql(" WHERE id = ")
                .int(graph.0 as i64);
            tx.execute(update).await?;
        }
        match tx.commit().await {
            Ok(()) => Ok((graph, stored)),
            Err(error) => Err(self.refused(error, graph, records).await),
        }
    }

    /// The error for a chunk whose storing failed with `error`: a broken uniqueness rule is a
    /// persist name used twice.
    async fn refused(&self, error: sqlx::Error, graph: GraphId, records: &[OpRecord]) -> Error {
        match error {
            sqlx::Error::Database(e) if e.is_unique_violation() => self.duplicate_name(graph, records).await,
            error => error.into(),
        }
    }

    /// The error for a chunk that broke a uniqueness rule: local ids were validated, so it is a
    /// persist name used twice (within the chunk, or by an op stored earlier).
    async fn duplicate_name(&self, graph: GraphId, records: &[OpRecord]) -> Error {
        let mut seen = std::collections::BTreeSet::new();
        for record in records {
            let Some(name) = &record.persist else { continue };
            let stored: std::result::Result<Option<i64>, _> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
                "SELECT id FROM ops WHERE graph_id = $1 AND persist = $2"
            )
            .bind(graph.0 as i64)
            .bind(name)
            .fetch_optional(pool)
            .await);
            if !seen.insert(name) || matches!(stored, Ok(Some(_))) {
                return Error::InvalidOp {
                    op: OpRef::Local(record.local_id),
                    reason: format!("persist name `{name}` is used twice in this graph"),
                };
            }
        }
        Error::BadRequest("local id or persist name used twice in this graph".into())
    }

    /// Every op of a graph, in id (dependency) order.
    pub async fn ops(&self, graph: GraphId) -> Result<Vec<StoredOp>> {
        let rows: Vec<OpRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT id, local_id, operation, inputs, persist, status FROM ops WHERE graph_id = $1 ORDER BY id",
        )
        .bind(graph.0 as i64)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(OpRow::into_op).collect()
    }

    /// Local id → server id of every op of a graph.
    pub async fn id_map(&self, graph: GraphId) -> Result<BTreeMap<u64, OpId>> {
        let rows: Vec<(i64, i64)> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as("SELECT local_id, id FROM ops WHERE graph_id = $1")
                .bind(graph.0 as i64)
                .fetch_all(pool)
                .await)?;
        Ok(rows.into_iter().map(|(local, id)| (local as u64, OpId(id as u64))).collect())
    }

    /// Marks every not-computed op of a graph with `status` (failed graphs fail their ops).
    pub async fn set_pending_ops(&self, graph: GraphId, status: OpStatus) -> Result<()> {
        on_backend!(self, |pool, sql, DB| sqlx::query(
            "UPDATE ops SET status = $1 WHERE graph_id = $2 AND status != $3"
        )
        .bind(status_name(status))
        .bind(graph.0 as i64)
        .bind(status_name(OpStatus::Computed))
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

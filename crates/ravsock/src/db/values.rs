//! Op values (`op_values` inline, `op_files` for values in the blob store) and training
//! checkpoints (`checkpoints`): the results of a subgraph, its ops marked computed and its
//! checkpoint go in one transaction.

use super::graphs::computed_status;
use super::ledger::{Movement, movement_statements};
use super::rows::{PersistedRow, ValueRow};
use super::{Db, Statement, status_name};
use crate::error::{Error, Result};
use ravproto::checkpoint::Checkpoint;
use ravproto::status::{GraphStatus, OpStatus};
use ravproto::{GraphId, OpId, Value};
use std::collections::BTreeMap;

/// A stored value: in the database, or a file of the blob store ([`crate::bulk`]).
#[derive(Clone, Debug, PartialEq)]
pub enum StoredValue {
    /// Kept in `op_values`.
    Inline(Value),
    /// Kept in the blob store; its length in bytes.
    File {
        /// Length of the encoded value.
        len: u64,
    },
}

/// Encoded value bytes per multi-row INSERT of values.
const VALUE_BYTES_PER_INSERT: usize = 8 << 20;

/// A JSON array of op ids, bound as one parameter for any count (see the `Dialect`'s `…_in`).
fn id_list(ops: &[OpId]) -> String {
    let ids: Vec<u64> = ops.iter().map(|op| op.0).collect();
    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into())
}

/// The statements inserting `(op_id, encoded value)` rows into `op_values`, several rows per
/// statement; an op that has a value already gets the new one.
pub(super) fn value_inserts(values: Vec<(i64, Vec<u8>)>) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut values = values.into_iter().peekable();
    while values.peek().is_some() {
        let mut insert = Statement::new("INSERT INTO op_values (op_id, value) VALUES ");
        let (mut rows, mut bytes) = (0, 0);
        while let Some((op, value)) = values.next_if(|(_, value)| {
            rows == 0 || (rows < super::ops::ROWS_PER_INSERT && bytes + value.len() <= VALUE_BYTES_PER_INSERT)
        }) {
            bytes += value.len();
            insert = insert.sql(if rows == 0 { "(" } else { ", (" }).int(op).sql(", ").blob(value).sql(")");
            rows += 1;
        }
        statements.push(insert.sql(" ON CONFLICT (op_id) DO UPDATE SET value = excluded.value"));
    }
    statements
}

impl Db {
    /// Stores the results of a subgraph and marks its ops computed, in one transaction of a
    /// few statements. `files` are values already moved into the blob store, with their lengths.
    /// With `finishes`, that graph is marked computed in the same transaction (its last
    /// subgraph: one commit fewer before the requester hears of it). The `payments` (the
    /// subgraph's price, with accounting on, to each provider whose answer was stored or
    /// agreed with it) are made in the same transaction too: a result is stored and paid
    /// together, or neither.
    pub async fn store_results(
        &self,
        values: &[(OpId, Value)],
        files: &[(OpId, u64)],
        computed: &[OpId],
        checkpoint: Option<(GraphId, &Checkpoint)>,
        finishes: Option<GraphId>,
        payments: &[Movement],
    ) -> Result<()> {
        let mut payment = Vec::new();
        for movement in payments {
            payment.extend(movement_statements(movement)?);
        }
        let values: Vec<(i64, Vec<u8>)> =
            values.iter().map(|(op, value)| (op.0 as i64, value.encode_binary())).collect();
        // One round trip to SQLite's worker thread for the whole transaction.
        let store = async {
            let sql = self.dialect();
            let mut tx = self.write_tx().await?;
            for insert in value_inserts(values) {
                tx.execute(insert).await?;
            }
            for (op, len) in files {
                let upsert = Statement::new("INSERT INTO op_files (op_id, len) VALUES (")
                    .int(op.0 as i64)
                    .sql(", ")
                    .int(*len as i64)
                    .sql(") ON CONFLICT (op_id) DO UPDATE SET len = excluded.len");
                tx.execute(upsert).await?;
            }
            let (before, after) = sql.id_in_list;
            let mark = Statement::new("UPDATE ops SET status = ")
                .text(Some(status_name(OpStatus::Computed)))
                .sql(before)
                .text(Some(id_list(computed)))
                .sql(after);
            tx.execute(mark).await?;
            if let Some((graph, checkpoint)) = checkpoint {
                let upsert = Statement::new("INSERT INTO checkpoints (graph_id, version, data) VALUES (")
                    .int(graph.0 as i64)
                    .sql(", ")
                    .int(checkpoint.version as i64)
                    .sql(", ")
                    .blob(checkpoint.encode())
                    .sql(") ON CONFLICT (graph_id) DO UPDATE SET version = excluded.version, data = excluded.data");
                tx.execute(upsert).await?;
            }
            if let Some(graph) = finishes {
                let update = Statement::new("UPDATE graphs SET status = ")
                    .text(Some(status_name(GraphStatus::Computed)))
                    .sql(", failure = NULL WHERE id = ")
                    .int(graph.0 as i64);
                tx.execute(update).await?;
            }
            for statement in payment {
                tx.execute(statement).await?;
            }
            tx.commit().await?;
            Ok(())
        };
        match finishes {
            Some(graph) => self.writing_graph(graph, computed_status, store).await,
            None => store.await,
        }
    }

    /// Values of these ops (those that have one), in the order asked.
    pub async fn values(&self, ops: &[OpId]) -> Result<Vec<(OpId, StoredValue)>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let ids = id_list(ops);
        // One query for both places a value may be: this runs before every hand-out.
        let rows: Vec<ValueRow> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as(sql.values_in).bind(&ids).fetch_all(pool).await)?;
        let mut found = BTreeMap::new();
        for row in rows {
            let op = OpId(row.op_id as u64);
            if let Some(value) = row.into_value()? {
                found.insert(op, value);
            }
        }
        Ok(ops.iter().filter_map(|op| Some((*op, found.remove(op)?))).collect())
    }

    /// The persisted value named `name` in a graph: `Ok(None)` while it is not computed.
    pub async fn persisted_value(&self, graph: GraphId, name: &str) -> Result<Option<(OpId, StoredValue)>> {
        // One query, not a lookup and then the value: results are fetched on the requester's
        // round trip.
        let row: Option<ValueRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT ops.id AS op_id, op_values.value, op_files.len FROM ops \
             LEFT JOIN op_values ON op_values.op_id = ops.id \
             LEFT JOIN op_files ON op_files.op_id = ops.id \
             WHERE ops.graph_id = $1 AND ops.persist = $2"
        )
        .bind(graph.0 as i64)
        .bind(name)
        .fetch_optional(pool)
        .await)?;
        let Some(row) = row else {
            return Err(Error::NotFound(format!("no op persisted as `{name}` in {graph}")));
        };
        let op = OpId(row.op_id as u64);
        Ok(row.into_value()?.map(|value| (op, value)))
    }

    /// Every persisted value of a graph by name (`None` for one not computed), in one query.
    pub async fn persisted_values(&self, graph: GraphId) -> Result<Vec<(String, OpId, Option<StoredValue>)>> {
        let rows: Vec<PersistedRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT ops.persist, ops.id AS op_id, op_values.value, op_files.len FROM ops \
             LEFT JOIN op_values ON op_values.op_id = ops.id \
             LEFT JOIN op_files ON op_files.op_id = ops.id \
             WHERE ops.graph_id = $1 AND ops.persist IS NOT NULL"
        )
        .bind(graph.0 as i64)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|row| {
                let op = OpId(row.value.op_id as u64);
                Ok((row.persist, op, row.value.into_value()?))
            })
            .collect()
    }

    /// The version of a graph's latest training checkpoint (0 when it has none).
    pub async fn checkpoint_version(&self, graph: GraphId) -> Result<u64> {
        let version: Option<i64> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT version FROM checkpoints WHERE graph_id = $1"
        )
        .bind(graph.0 as i64)
        .fetch_optional(pool)
        .await)?;
        Ok(version.map_or(0, |v| v as u64))
    }

    /// A graph's latest training checkpoint; [`Checkpoint::empty`] before its first step.
    pub async fn checkpoint(&self, graph: GraphId) -> Result<Checkpoint> {
        let data: Option<Vec<u8>> =
            on_backend!(self, |pool, sql, DB| sqlx::query_scalar("SELECT data FROM checkpoints WHERE graph_id = $1")
                .bind(graph.0 as i64)
                .fetch_optional(pool)
                .await)?;
        match data {
            None => Ok(Checkpoint::empty()),
            Some(bytes) => Checkpoint::decode(&bytes)
                .map_err(|e| Error::Internal(format!("stored checkpoint of {graph} is unreadable: {e}"))),
        }
    }
}

impl Db {
    /// Forgets the blob-store values of `graph`'s ops that were not persisted (intermediate
    /// values, inputs uploaded as files): nothing reads them once the graph has ended. Returns
    /// the ops whose blob files the caller should remove.
    pub async fn forget_intermediate_files(&self, graph: GraphId) -> Result<Vec<OpId>> {
        let ids: Vec<(i64,)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "DELETE FROM op_files WHERE op_id IN (SELECT id FROM ops WHERE graph_id = $1 AND persist IS NULL) \
             RETURNING op_id"
        )
        .bind(graph.0 as i64)
        .fetch_all(pool)
        .await)?;
        Ok(ids.into_iter().map(|(id,)| OpId(id as u64)).collect())
    }
}

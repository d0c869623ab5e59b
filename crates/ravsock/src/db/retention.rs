//! Result retention: an ended graph's values (inline and in the blob store) and its training
//! checkpoint are removed once the retention has passed since it ended; the graph row stays,
//! marked with when, so a late fetch is answered "expired" rather than "not computed".
//!
//! The end is stamped by the database itself (triggers of migration 0008 / postgres 0004) on
//! every change of status, so this module only reads `ended_at`.

use super::Db;
use super::write::Statement;
use crate::error::Result;
use ravproto::{GraphId, OpId};

/// Graphs expired per transaction: a sweep after a long pause (or the first after an upgrade)
/// works through a backlog in bounded transactions rather than one that locks the database.
const GRAPHS_PER_SWEEP: i64 = 200;

/// How long ended graphs' values and ftp home files are kept, in seconds; 0 keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// After a graph ends, its values.
    pub results_secs: u64,
    /// After its last change, a file in an ftp home.
    pub ftp_files_secs: u64,
}

/// What one call of [`Db::expire_results`] removed from the database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// The graphs whose values were removed.
    pub graphs: Vec<GraphId>,
    /// Ops whose values lived in the blob store: the caller removes their files (after the
    /// commit, so a failed transaction leaves every value readable).
    pub files: Vec<OpId>,
}

impl Db {
    /// The earliest end (unix seconds) among graphs whose values are still kept: the next sweep
    /// is due at that time plus the retention. `None` when no ended graph keeps values.
    pub async fn oldest_kept_end(&self) -> Result<Option<i64>> {
        Ok(on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT MIN(ended_at) FROM graphs WHERE expired_at IS NULL AND ended_at IS NOT NULL"
        )
        .fetch_one(pool)
        .await)?)
    }

    /// Removes the values, op files and checkpoints of up to [`GRAPHS_PER_SWEEP`] graphs that
    /// ended at or before `ended_by` (unix seconds) and marks them expired at `now`, in one
    /// transaction. Call again while it returns graphs.
    pub async fn expire_results(&self, ended_by: i64, now: i64) -> Result<Expired> {
        let mut tx = self.write_tx().await?;
        let graphs = tx
            .ids(vec![
                Statement::new("UPDATE graphs SET expired_at = ")
                    .int(now)
                    .sql(" WHERE id IN (SELECT id FROM graphs WHERE expired_at IS NULL AND ended_at <= ")
                    .int(ended_by)
                    .sql(" ORDER BY ended_at LIMIT ")
                    .int(GRAPHS_PER_SWEEP)
                    .sql(") RETURNING id"),
            ])
            .await?;
        if graphs.is_empty() {
            return Ok(Expired::default());
        }
        // The graphs just marked are those expired at `now` (any earlier sweep with the same
        // `now` left nothing of its own graphs to remove).
        const EXPIRED_OPS: &str =
            "(SELECT ops.id FROM ops JOIN graphs ON graphs.id = ops.graph_id WHERE graphs.expired_at = ";
        let delete = |table: &'static str| {
            Statement::new(format!("DELETE FROM {table} WHERE op_id IN {EXPIRED_OPS}")).int(now).sql(")")
        };
        tx.execute(delete("op_values")).await?;
        let files = tx.ids(vec![delete("op_files").sql(" RETURNING op_id")]).await?;
        tx.execute(
            Statement::new("DELETE FROM checkpoints WHERE graph_id IN (SELECT id FROM graphs WHERE expired_at = ")
                .int(now)
                .sql(")"),
        )
        .await?;
        let graphs: Vec<GraphId> = graphs.into_iter().map(|id| GraphId(id as u64)).collect();
        let committed = tx.commit().await;
        for graph in &graphs {
            self.graphs.written(*graph, committed.is_ok(), |row| row.expired_at = Some(now));
        }
        committed?;
        Ok(Expired { graphs, files: files.into_iter().map(|id| OpId(id as u64)).collect() })
    }
}

//! What the operators' dashboard reads: a page of graphs (every owner's or one owner's,
//! optionally matching a search) with their owners' names and times, graph counts of one
//! owner, and account names by id.

use super::rows::GraphRow;
use super::{Db, StoredGraph, parse_status};
use crate::error::Result;
use ravproto::GraphId;
use ravproto::status::GraphStatus;
use std::collections::BTreeMap;

/// A graph as the dashboard lists it.
#[derive(Clone, Debug)]
pub struct ListedGraph {
    pub graph: StoredGraph,
    /// Its owner's name.
    pub owner_name: String,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Ended (unix seconds), if it has.
    pub ended_at: Option<i64>,
}

/// A [`GraphRow`] with what the listing adds.
#[derive(sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    row: GraphRow,
    owner_name: String,
    created_at: i64,
    ended_at: Option<i64>,
}

impl ListedRow {
    fn into_listed(self) -> Result<ListedGraph> {
        Ok(ListedGraph {
            graph: self.row.into_graph()?,
            owner_name: self.owner_name,
            created_at: self.created_at,
            ended_at: self.ended_at,
        })
    }
}

/// The start of a query of [`ListedRow`]s, up to its `WHERE`.
macro_rules! listed_columns {
    () => {
        concat!(
            "SELECT g.id, g.owner, g.meta, g.status, g.failure, g.expired_at, a.name AS owner_name, ",
            "g.created_at, g.ended_at FROM graphs g JOIN accounts a ON a.id = g.owner "
        )
    };
}

/// Matches every owner in [`Db::graph_page`].
pub const EVERY_OWNER: i64 = -1;

impl Db {
    /// Graphs newest first, `limit` of them after `offset`, of `owner` (or [`EVERY_OWNER`]),
    /// whose name or id contains `search` (every graph when it is empty); and how many match.
    pub async fn graph_page(
        &self,
        owner: i64,
        search: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<ListedGraph>, u64)> {
        // `LIKE` with the search's own wildcards escaped, so `%` finds a percent sign.
        let escaped = search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let rows: Vec<ListedRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(
            listed_columns!(),
            "WHERE ($1 < 0 OR g.owner = $1) AND ($2 = '' OR g.meta LIKE $3 ESCAPE '\\' ",
            "OR CAST(g.id AS TEXT) = $2) ORDER BY g.id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(owner)
        .bind(search)
        .bind(&pattern)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(pool)
        .await)?;
        let total: i64 = on_backend!(self, |pool, sql, DB| {
            sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM graphs g WHERE ($1 < 0 OR g.owner = $1) AND ($2 = '' OR g.meta LIKE $3 ESCAPE '\\' ",
            "OR CAST(g.id AS TEXT) = $2)"
        ))
        .bind(owner)
        .bind(search)
        .bind(&pattern)
        .fetch_one(pool)
        .await
        })?;
        let listed = rows.into_iter().map(ListedRow::into_listed).collect::<Result<Vec<_>>>()?;
        Ok((listed, total as u64))
    }

    /// One graph as the dashboard lists it, if it exists.
    pub async fn listed_graph(&self, graph: GraphId) -> Result<Option<ListedGraph>> {
        let row: Option<ListedRow> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(listed_columns!(), "WHERE g.id = $1"))
                .bind(graph.0 as i64)
                .fetch_optional(pool)
                .await)?;
        row.map(ListedRow::into_listed).transpose()
    }

    /// Number of `owner`'s graphs per status.
    pub async fn graph_counts_of(&self, owner: i64) -> Result<BTreeMap<GraphStatus, u64>> {
        let rows: Vec<(String, i64)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT status, COUNT(*) FROM graphs WHERE owner = $1 GROUP BY status"
        )
        .bind(owner)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(|(status, count)| Ok((parse_status(&status)?, count as u64))).collect()
    }

    /// The name of account `id`, if it exists.
    pub async fn account_name(&self, id: i64) -> Result<Option<String>> {
        Ok(on_backend!(self, |pool, sql, DB| sqlx::query_scalar("SELECT name FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }
}

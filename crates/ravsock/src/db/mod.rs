//! The ravsock database: accounts, graphs, ops and their values, training checkpoints and
//! federated queries, in SQLite (the default, a file in the data directory) or PostgreSQL (a
//! `postgres://` URL).
//!
//! Port of the original's tables (§3.2) reduced to what the scheduler needs, with statuses as
//! checked enums and server-allocated ids. One file per table group, each adding methods to
//! [`Db`]: [`accounts`], [`graphs`], [`ops`], [`values`] (with the checkpoints stored beside
//! results), [`federated`], [`topics`] (topics, rounds and answers), [`jobs`] (jobs, slices and compute groups), [`ledger`] (balances and movements), [`dash`] (what the dashboard lists), [`retention`] (ended graphs' values removed after a time); [`rows`] reads rows into named structs; [`cache`] keeps what this
//! process, the only writer, already knows; [`write`] batches a transaction's statements.
//!
//! Every query is written once, with `$N` placeholders (which SQLite accepts too), and runs on
//! the backend's own sqlx driver through [`on_backend!`]; the few statements that differ live in
//! a [`Dialect`]. sqlx's `Any` driver would avoid the macro but copies every row and argument
//! into its own representation. Statuses are bound as parameters, never spelled in SQL.

use crate::error::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;
use write::{Statement, WriteTx};

/// Runs `$body` once per backend: `$pool` is the backend's pool, `$sql` its [`Dialect`] and
/// `$DB` its sqlx database type, so the queries in `$body` are written once and each backend
/// runs them with its own driver.
macro_rules! on_backend {
    ($db:expr, |$pool:ident, $sql:ident, $DB:ident| $body:expr) => {
        match &$db.pool {
            $crate::db::Pool::Sqlite($pool) => {
                #[allow(unused)]
                type $DB = sqlx::Sqlite;
                #[allow(unused)]
                let $sql = &$crate::db::SQLITE;
                $body
            }
            $crate::db::Pool::Postgres($pool) => {
                #[allow(unused)]
                type $DB = sqlx::Postgres;
                #[allow(unused)]
                let $sql = &$crate::db::POSTGRES;
                $body
            }
        }
    };
}

#[macro_use]
mod rows;
pub mod accounts;
mod cache;
pub mod dash;
pub mod federated;
pub mod graphs;
pub mod jobs;
pub mod ledger;
pub mod ops;
pub mod retention;
mod scratch;
pub mod stakes;
#[cfg(test)]
mod tests;
pub mod topics;
pub mod values;
mod write;

pub use accounts::Account;
pub use graphs::StoredGraph;
pub use ops::StoredOp;
pub use scratch::{TEST_POSTGRES_ENV, scratch_database_url};
pub use values::StoredValue;

/// The embedded SQLite migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
/// The embedded PostgreSQL migrations (the same schema in PostgreSQL's DDL).
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Handle to the database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    /// Accounts by token hash, so a request does not wait on the database to authenticate,
    /// and their last uses not yet written ([`accounts`]).
    tokens: std::sync::Arc<accounts::Tokens>,
    graphs: std::sync::Arc<cache::GraphCache>,
    ids: std::sync::Arc<tokio::sync::OnceCell<cache::NextIds>>,
}

/// The connection pool of the backend in use.
#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The statements whose SQL differs between the backends.
struct Dialect {
    /// Starts a transaction that writes.
    begin_write: &'static str,
    /// The first free graph id and op id ([`cache::NextIds`]).
    next_ids: &'static str,
    /// An `INSERT` of a graph row with its id, up to the opening parenthesis of its values
    /// (`id, owner, meta, status, created_at`).
    insert_graph: &'static str,
    /// The condition on `id` that picks the ops listed in a JSON array of ids: the SQL before
    /// the array and after it.
    id_in_list: (&'static str, &'static str),
    /// `(op id, inline value, blob length)` of each op listed in `$1`. The values are looked up
    /// per id by key: a join let PostgreSQL's planner scan the whole `op_values` table.
    values_in: &'static str,
    /// A graph's status, locked until the commit where the backend can lock rows.
    graph_status_for_update: &'static str,
}

const SQLITE: Dialect = Dialect {
    // IMMEDIATE takes the write lock now rather than at the first write, so two writers never
    // deadlock upgrading their read locks.
    begin_write: "BEGIN IMMEDIATE",
    // sqlite_sequence too: AUTOINCREMENT never reuses the id of a deleted row.
    next_ids: "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'graphs'), 0), \
               COALESCE((SELECT MAX(id) FROM graphs), 0)) + 1, \
               MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ops'), 0), \
               COALESCE((SELECT MAX(id) FROM ops), 0)) + 1",
    insert_graph: "INSERT INTO graphs (id, owner, meta, status, created_at) VALUES (",
    id_in_list: (" WHERE id IN (SELECT value FROM json_each(", "))"),
    values_in: "SELECT ids.value AS op_id, (SELECT value FROM op_values WHERE op_id = ids.value) AS value, \
                (SELECT len FROM op_files WHERE op_id = ids.value) AS len FROM json_each($1) AS ids",
    graph_status_for_update: "SELECT status FROM graphs WHERE id = $1",
};

const POSTGRES: Dialect = Dialect {
    begin_write: "BEGIN",
    next_ids: "SELECT COALESCE((SELECT MAX(id) FROM graphs), 0) + 1, COALESCE((SELECT MAX(id) FROM ops), 0) + 1",
    // Graph ids come from `NextIds`, never from the identity column.
    insert_graph: "INSERT INTO graphs (id, owner, meta, status, created_at) OVERRIDING SYSTEM VALUE VALUES (",
    // An array, not `IN (subquery)`: the generic plan of the prepared statement then still
    // looks ids up by key instead of scanning `ops` (3–5 ms per subgraph at 20,000 ops).
    id_in_list: (" WHERE id = ANY(ARRAY(SELECT json_array_elements_text(", "::json)::bigint))"),
    values_in: "SELECT ids.id AS op_id, (SELECT value FROM op_values WHERE op_id = ids.id) AS value, \
                (SELECT len FROM op_files WHERE op_id = ids.id) AS len \
                FROM (SELECT json_array_elements_text($1::json)::bigint AS id) AS ids",
    graph_status_for_update: "SELECT status FROM graphs WHERE id = $1 FOR UPDATE",
};

impl Db {
    /// Opens the database at `url` and applies the migrations: PostgreSQL for a `postgres://`
    /// (or `postgresql://`) URL, otherwise SQLite, creating the file if it is missing.
    pub async fn connect(url: &str) -> Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Db::connect_postgres(url).await;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL keeps the database consistent across a crash; a committed batch
            // may be lost on power failure, and its subgraph is then simply recomputed.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // 64 MiB of page cache per connection (the default is 2 MiB): a graph of 100,000
            // ops and its indexes outgrow the default, and every insert then reads pages back.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            .foreign_keys(true);
        // An in-memory database exists once per connection, so it must use exactly one.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        // No ping before each use: an SQLite connection is a file handle in this process and
        // cannot go stale, and the ping is one more round trip to its worker thread per query.
        let pool =
            SqlitePoolOptions::new().max_connections(max).test_before_acquire(false).connect_with(options).await?;
        MIGRATOR.run(&pool).await.map_err(|e| Error::Internal(format!("migrations failed: {e}")))?;
        Ok(Db::from_pool(pool))
    }

    async fn connect_postgres(url: &str) -> Result<Db> {
        let options = PgConnectOptions::from_str(url)?.application_name("ravsock");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        POSTGRES_MIGRATOR.run(&pool).await.map_err(|e| Error::Internal(format!("migrations failed: {e}")))?;
        Ok(Db::with_pool(Pool::Postgres(pool)))
    }

    /// Wraps an existing SQLite pool (migrations already applied).
    pub fn from_pool(pool: SqlitePool) -> Db {
        Db::with_pool(Pool::Sqlite(pool))
    }

    fn with_pool(pool: Pool) -> Db {
        Db { pool, tokens: Default::default(), graphs: Default::default(), ids: Default::default() }
    }

    /// The statements of the backend in use.
    fn dialect(&self) -> &'static Dialect {
        match self.pool {
            Pool::Sqlite(_) => &SQLITE,
            Pool::Postgres(_) => &POSTGRES,
        }
    }

    /// A write transaction on the backend in use.
    async fn write_tx(&self) -> Result<WriteTx> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => WriteTx::sqlite(pool).await?,
            Pool::Postgres(pool) => WriteTx::postgres(pool).await?,
        })
    }

    /// Closes every connection (callers that hand the file to another process).
    pub async fn close(&self) {
        on_backend!(self, |pool, sql, DB| pool.close().await)
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The stored name of a status enum (its serde name, as in the migration's CHECK lists).
fn status_name<T: serde::Serialize>(status: T) -> String {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(name)) => name,
        _ => unreachable!("status enums serialize as strings"),
    }
}

/// Parses a stored status name.
fn parse_status<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.into()))
        .map_err(|_| Error::Internal(format!("unknown status {text:?} in the database")))
}

/// Reads a JSON column.
fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("unreadable JSON in the database: {e}")))
}

/// Writes a JSON column.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))
}

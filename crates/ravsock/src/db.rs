//! The ravsock database: accounts, graphs, ops and their values, in SQLite (the default, a file
//! in the data directory) or PostgreSQL (a `postgres://` URL).
//!
//! Port of the original's tables (§3.2) reduced to what the scheduler needs, with statuses as
//! checked enums and server-allocated ids. Results of a subgraph are written in one transaction
//! ([`Db::store_results`]), never one fsync per op.
//!
//! Every query is written once, with `$N` placeholders (which SQLite accepts too), and runs on
//! the backend's own sqlx driver through [`on_backend!`]; the few statements that differ live in
//! a [`Dialect`]. sqlx's `Any` driver would avoid the macro but copies every row and argument
//! into its own representation.

use crate::auth::{self, Role};
use crate::error::{Error, Result};
use ravproto::checkpoint::Checkpoint;
use ravproto::messages::{GraphMeta, OpRecord, OpRef};
use ravproto::status::{GraphStatus, OpStatus};
use ravproto::{GraphId, OpId, Operation, Value};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;
use write::{Statement, WriteTx};

mod write;

/// The embedded SQLite migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
/// The embedded PostgreSQL migrations (the same schema in PostgreSQL's DDL).
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// An authenticated account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// One stored op.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredOp {
    /// Server id.
    pub id: OpId,
    /// The client's number.
    pub local_id: u64,
    /// Operator and params.
    pub operation: Operation,
    /// Inputs, as server ids.
    pub inputs: Vec<OpId>,
    /// Persist name.
    pub persist: Option<String>,
    /// Status.
    pub status: OpStatus,
}

/// A graph row.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredGraph {
    /// Id.
    pub id: GraphId,
    /// Owning account.
    pub owner: i64,
    /// Requester's description.
    pub meta: GraphMeta,
    /// Status.
    pub status: GraphStatus,
    /// Why it failed (JSON of an `OpFailure`).
    pub failure: Option<String>,
}

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

/// Handle to the database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    /// Accounts by token hash, so a request does not wait on the database to authenticate.
    /// Tokens cannot be revoked yet; a revoke command must remove its entry here.
    accounts: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, Account>>>,
    graphs: std::sync::Arc<GraphCache>,
    ids: std::sync::Arc<tokio::sync::OnceCell<NextIds>>,
}

/// The next free graph and op ids, handed out by this process so that storing a graph needs no
/// read of them inside its transaction. ravsock is the only writer of `graphs` and `ops` (as
/// [`GraphCache`] assumes); the ids are read from the database at first use, and the ids of a
/// transaction that failed are skipped.
#[derive(Debug)]
struct NextIds {
    graph: std::sync::atomic::AtomicI64,
    op: std::sync::atomic::AtomicI64,
}

impl NextIds {
    /// A new graph's id.
    fn graph(&self) -> GraphId {
        GraphId(self.graph.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u64)
    }

    /// The first of `count` consecutive new op ids.
    fn ops(&self, count: usize) -> i64 {
        self.op.fetch_add(count as i64, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Graph rows as this process last read them: a requester's round trip (upload, wait,
/// fetch) checks the graph's owner and status at every step, and each read is a round trip
/// to the database.
///
/// ravsock is the only writer of `graphs`, and every write in [`Db`] forgets the row once it
/// has committed. A read fills the cache only if no write was made while it ran (the
/// generation), so a row read before a commit cannot outlive it.
#[derive(Debug, Default)]
struct GraphCache {
    rows: std::sync::Mutex<std::collections::HashMap<GraphId, StoredGraph>>,
    generation: std::sync::atomic::AtomicU64,
}

impl GraphCache {
    /// Rows kept at most; the cache starts over when it is full.
    const LIMIT: usize = 10_000;

    fn rows(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<GraphId, StoredGraph>> {
        self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, graph: GraphId) -> Option<StoredGraph> {
        self.rows().get(&graph).cloned()
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Keeps `row`, read from the database when the generation was `read_at`.
    fn fill(&self, read_at: u64, row: &StoredGraph) {
        let mut rows = self.rows();
        if self.generation() == read_at {
            if rows.len() >= GraphCache::LIMIT {
                rows.clear();
            }
            rows.insert(row.id, row.clone());
        }
    }

    /// After a write of the row of `graph`: applies `change` to the cached row when the write
    /// committed, forgets the row when it did not (a failed commit may still have landed).
    fn written(&self, graph: GraphId, committed: bool, change: impl FnOnce(&mut StoredGraph)) {
        let mut rows = self.rows();
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match (committed, rows.get_mut(&graph)) {
            (true, Some(row)) => change(row),
            _ => {
                rows.remove(&graph);
            }
        }
    }
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
    /// The first free graph id and op id ([`NextIds`]).
    next_ids: &'static str,
    /// An `INSERT` of a graph row with its id, up to the opening parenthesis of its values
    /// (`id, owner, meta, status, created_at`).
    insert_graph: &'static str,
    /// Marks the ops listed in a JSON array of ids computed: the SQL before the array and
    /// after it.
    mark_computed: (&'static str, &'static str),
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
    mark_computed: ("UPDATE ops SET status = 'computed' WHERE id IN (SELECT value FROM json_each(", "))"),
    values_in: "SELECT ids.value, (SELECT value FROM op_values WHERE op_id = ids.value), \
                (SELECT len FROM op_files WHERE op_id = ids.value) FROM json_each($1) AS ids",
    graph_status_for_update: "SELECT status FROM graphs WHERE id = $1",
};

const POSTGRES: Dialect = Dialect {
    begin_write: "BEGIN",
    next_ids: "SELECT COALESCE((SELECT MAX(id) FROM graphs), 0) + 1, COALESCE((SELECT MAX(id) FROM ops), 0) + 1",
    // Graph ids come from `NextIds`, never from the identity column.
    insert_graph: "INSERT INTO graphs (id, owner, meta, status, created_at) OVERRIDING SYSTEM VALUE VALUES (",
    // An array, not `IN (subquery)`: the generic plan of the prepared statement then still
    // looks ids up by key instead of scanning `ops` (3–5 ms per subgraph at 20,000 ops).
    mark_computed: (
        "UPDATE ops SET status = 'computed' WHERE id = ANY(ARRAY(SELECT json_array_elements_text(",
        "::json)::bigint))",
    ),
    values_in: "SELECT ids.id, (SELECT value FROM op_values WHERE op_id = ids.id), \
                (SELECT len FROM op_files WHERE op_id = ids.id) \
                FROM (SELECT json_array_elements_text($1::json)::bigint AS id) AS ids",
    graph_status_for_update: "SELECT status FROM graphs WHERE id = $1 FOR UPDATE",
};

/// Runs `$body` once per backend: `$pool` is the backend's pool, `$sql` its [`Dialect`] and
/// `$DB` its sqlx database type, so the queries in `$body` are written once and each backend
/// runs them with its own driver.
macro_rules! on_backend {
    ($db:expr, |$pool:ident, $sql:ident, $DB:ident| $body:expr) => {
        match &$db.pool {
            Pool::Sqlite($pool) => {
                #[allow(unused)]
                type $DB = sqlx::Sqlite;
                #[allow(unused)]
                let $sql = &SQLITE;
                $body
            }
            Pool::Postgres($pool) => {
                #[allow(unused)]
                type $DB = sqlx::Postgres;
                #[allow(unused)]
                let $sql = &POSTGRES;
                $body
            }
        }
    };
}

/// Rows per multi-row INSERT (7 columns each, far under SQLite's 32,766 and PostgreSQL's 65,535
/// bind variables).
const ROWS_PER_INSERT: usize = 500;
/// Encoded value bytes per multi-row INSERT of values.
const VALUE_BYTES_PER_INSERT: usize = 8 << 20;

/// The graph an upload goes to.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// One that exists.
    Graph(GraphId),
    /// One created in the upload's transaction, with its meta as JSON.
    New { owner: i64, meta: &'a str },
}

/// A JSON array of op ids, bound as one parameter for any count (see the `Dialect`'s `…_in`).
fn id_list(ops: &[OpId]) -> String {
    let ids: Vec<u64> = ops.iter().map(|op| op.0).collect();
    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into())
}

/// The statements inserting `(op_id, encoded value)` rows into `op_values`, several rows per
/// statement; an op that has a value already gets the new one.
fn value_inserts(values: Vec<(i64, Vec<u8>)>) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut values = values.into_iter().peekable();
    while values.peek().is_some() {
        let mut insert = Statement::new("INSERT INTO op_values (op_id, value) VALUES ");
        let (mut rows, mut bytes) = (0, 0);
        while let Some((op, value)) = values.next_if(|(_, value)| {
            rows == 0 || (rows < ROWS_PER_INSERT && bytes + value.len() <= VALUE_BYTES_PER_INSERT)
        }) {
            bytes += value.len();
            insert = insert.sql(if rows == 0 { "(" } else { ", (" }).int(op).sql(", ").blob(value).sql(")");
            rows += 1;
        }
        statements.push(insert.sql(" ON CONFLICT (op_id) DO UPDATE SET value = excluded.value"));
    }
    statements
}

/// The variable naming a PostgreSQL server (a URL whose account may create databases) on which
/// tests and benchmarks run instead of SQLite; see [`scratch_database_url`].
pub const TEST_POSTGRES_ENV: &str = "RAVEN_TEST_POSTGRES_URL";

/// A database for one test or benchmark run: a new, empty database on the PostgreSQL server
/// named by [`TEST_POSTGRES_ENV`] when that is set (CI runs the end-to-end suites on both
/// backends this way), otherwise a SQLite file in `dir`.
pub async fn scratch_database_url(dir: &std::path::Path) -> Result<String> {
    let Ok(server) = std::env::var(TEST_POSTGRES_ENV) else {
        return Ok(format!("sqlite://{}", dir.join("ravsock.db").display()));
    };
    use sqlx::Connection;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // Unique across the processes of a run (pid) and across runs on one server (time).
    let name = format!(
        "raven_scratch_{}_{}_{}",
        now_secs(),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut admin = sqlx::PgConnection::connect(&server).await?;
    // The name is ours and plain ([a-z0-9_]), so it is safe to splice in; CREATE DATABASE takes
    // no bind parameters.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    admin.close().await?;
    Ok(url_with_database(&server, &name))
}

/// `url` (a PostgreSQL URL) naming database `name` instead of its own.
fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let host = base.find("://").map_or(0, |scheme| scheme + 3);
    let base = base[host..].find('/').map_or(base, |slash| &base[..host + slash]);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A `graphs` row: id, owner, meta, status, failure.
type GraphRow = (i64, i64, String, String, Option<String>);

fn stored_graph((id, owner, meta, status, failure): GraphRow) -> Result<StoredGraph> {
    Ok(StoredGraph {
        id: GraphId(id as u64),
        owner,
        meta: serde_json::from_str(&meta).map_err(|e| Error::Internal(e.to_string()))?,
        status: parse_status(&status)?,
        failure,
    })
}

/// An op's stored value as queried: `(op id, inline value, blob length)`.
type ValueRow = (i64, Option<Vec<u8>>, Option<i64>);
/// `(persist name, op id, inline value, blob length)` of a persisted op.
type PersistedRow = (String, i64, Option<Vec<u8>>, Option<i64>);

/// The value of a [`ValueRow`]. An op has one or the other; should it have both, the inline
/// value is used.
fn stored_value(op: OpId, inline: Option<Vec<u8>>, file: Option<i64>) -> Result<Option<StoredValue>> {
    Ok(match (inline, file) {
        (Some(bytes), _) => Some(StoredValue::Inline(
            Value::decode_binary_owned(bytes).map_err(|e| Error::Internal(format!("stored value of {op}: {e}")))?,
        )),
        (None, Some(len)) => Some(StoredValue::File { len: len as u64 }),
        (None, None) => None,
    })
}

/// The change to a graph row that [`Db::store_results`] and [`Db::close_federated`] make.
fn computed_status(row: &mut StoredGraph) {
    row.status = GraphStatus::Computed;
    row.failure = None;
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
        Ok(Db {
            pool: Pool::Postgres(pool),
            accounts: Default::default(),
            graphs: Default::default(),
            ids: Default::default(),
        })
    }

    /// Wraps an existing SQLite pool (migrations already applied).
    pub fn from_pool(pool: SqlitePool) -> Db {
        Db {
            pool: Pool::Sqlite(pool),
            accounts: Default::default(),
            graphs: Default::default(),
            ids: Default::default(),
        }
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

    /// Which backend this is, for logs: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Creates an account and returns its token; only the token's hash is stored.
    pub async fn create_account(&self, name: &str, role: Role) -> Result<String> {
        let token = auth::new_token()?;
        let inserted = on_backend!(self, |pool, sql, DB| sqlx::query(
            "INSERT INTO accounts (name, role, token_sha256, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(name)
        .bind(role.name())
        .bind(auth::token_hash(&token))
        .bind(now_secs())
        .execute(pool)
        .await
        .map(|_| ()));
        match inserted {
            Ok(_) => Ok(token),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::Conflict(format!("an account named `{name}` already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account holding `token`, if any.
    pub async fn account_by_token(&self, token: &str) -> Result<Option<Account>> {
        let hash = auth::token_hash(token);
        if let Some(account) = self.accounts.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&hash) {
            return Ok(Some(account.clone()));
        }
        let row: Option<(i64, String, String)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT id, name, role FROM accounts WHERE token_sha256 = $1"
        )
        .bind(&hash)
        .fetch_optional(pool)
        .await)?;
        let account = row
            .map(|(id, name, role)| Ok::<_, Error>(Account { id, name, role: Role::from_name(&role)? }))
            .transpose()?;
        if let Some(account) = &account {
            // Only found accounts are kept: a token created later by another process is
            // looked up again.
            self.accounts.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(hash, account.clone());
        }
        Ok(account)
    }

    /// Creates a graph owned by `owner`.
    pub async fn create_graph(&self, owner: i64, meta: &GraphMeta) -> Result<GraphId> {
        let meta = serde_json::to_string(meta).map_err(|e| Error::Internal(e.to_string()))?;
        let graph = self.next_ids().await?.graph();
        let mut tx = self.write_tx().await?;
        tx.execute(self.graph_insert(graph, owner, meta, GraphStatus::Pending)).await?;
        tx.commit().await?;
        Ok(graph)
    }

    /// The `INSERT` of a new graph row.
    fn graph_insert(&self, graph: GraphId, owner: i64, meta: String, status: GraphStatus) -> Statement {
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
    async fn next_ids(&self) -> Result<&NextIds> {
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
        let json = serde_json::to_string(meta).map_err(|e| Error::Internal(e.to_string()))?;
        let cached = meta.clone();
        self.update_graph(graph, |row| row.meta = cached, "UPDATE graphs SET meta = $1 WHERE id = $2", &[Some(&json)])
            .await
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
    async fn writing_graph<T>(
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
        let row: Option<GraphRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT id, owner, meta, status, failure FROM graphs WHERE id = $1"
        )
        .bind(graph.0 as i64)
        .fetch_optional(pool)
        .await)?;
        let row = row.map(stored_graph).transpose()?;
        if let Some(row) = &row {
            self.graphs.fill(read_at, row);
        }
        Ok(row)
    }

    /// Every graph of an owner, newest first.
    pub async fn graphs_of(&self, owner: i64) -> Result<Vec<StoredGraph>> {
        let rows: Vec<GraphRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT id, owner, meta, status, failure FROM graphs WHERE owner = $1 ORDER BY id DESC"
        )
        .bind(owner)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(stored_graph).collect()
    }

    /// Every graph with this status, newest first.
    pub async fn graphs_with_status(&self, status: GraphStatus) -> Result<Vec<StoredGraph>> {
        let rows: Vec<GraphRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT id, owner, meta, status, failure FROM graphs WHERE status = $1 ORDER BY id DESC"
        )
        .bind(status_name(status))
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(stored_graph).collect()
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
        let json = serde_json::to_string(meta).map_err(|e| Error::Internal(e.to_string()))?;
        let read_at = self.graphs.generation();
        let target = Target::New { owner, meta: &json };
        let (graph, stored) = self.insert_ops_tx(target, records, &mut BTreeMap::new(), adopt_file, true).await?;
        // Nobody knows the new id yet: the row as written is the row as stored.
        let row = StoredGraph { id: graph, owner, meta: meta.clone(), status: GraphStatus::Computing, failure: None };
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
            let has_value = record.value.is_some() || record.value_file.is_some();
            known.insert(record.local_id, id);
            stored.push(StoredOp {
                id,
                local_id: record.local_id,
                operation: record.operation.clone(),
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
                let operation = serde_json::to_string(&op.operation).map_err(|e| Error::Internal(e.to_string()))?;
                let inputs = serde_json::to_string(&inputs).map_err(|e| Error::Internal(e.to_string()))?;
                let status = if op.status == OpStatus::Computed { "computed" } else { "pending" };
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
                    .text(Some(status.to_string()))
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
            tx.execute(Statement::new("UPDATE graphs SET status = 'computing' WHERE id = ").int(graph.0 as i64))
                .await?;
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
        let rows: Vec<(i64, i64, String, String, Option<String>, String)> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as(
                "SELECT id, local_id, operation, inputs, persist, status FROM ops WHERE graph_id = $1 ORDER BY id",
            )
            .bind(graph.0 as i64)
            .fetch_all(pool)
            .await)?;
        rows.into_iter()
            .map(|(id, local_id, operation, inputs, persist, status)| {
                let inputs: Vec<u64> = serde_json::from_str(&inputs).map_err(|e| Error::Internal(e.to_string()))?;
                Ok(StoredOp {
                    id: OpId(id as u64),
                    local_id: local_id as u64,
                    operation: serde_json::from_str(&operation).map_err(|e| Error::Internal(e.to_string()))?,
                    inputs: inputs.into_iter().map(OpId).collect(),
                    persist,
                    status: parse_status(&status)?,
                })
            })
            .collect()
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

    /// Stores the results of a subgraph and marks its ops computed, in one transaction of a
    /// few statements. `files` are values already moved into the blob store, with their lengths.
    /// With `finishes`, that graph is marked computed in the same transaction (its last
    /// subgraph: one commit fewer before the requester hears of it).
    pub async fn store_results(
        &self,
        values: &[(OpId, Value)],
        files: &[(OpId, u64)],
        computed: &[OpId],
        checkpoint: Option<(GraphId, &Checkpoint)>,
        finishes: Option<GraphId>,
    ) -> Result<()> {
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
            let (before, after) = sql.mark_computed;
            tx.execute(Statement::new(before).text(Some(id_list(computed))).sql(after)).await?;
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
                let update = "UPDATE graphs SET status = 'computed', failure = NULL WHERE id = ";
                tx.execute(Statement::new(update).int(graph.0 as i64)).await?;
            }
            tx.commit().await?;
            Ok(())
        };
        match finishes {
            Some(graph) => self.writing_graph(graph, computed_status, store).await,
            None => store.await,
        }
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
        for (op, inline, file) in rows {
            let op = OpId(op as u64);
            if let Some(value) = stored_value(op, inline, file)? {
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
            "SELECT ops.id, op_values.value, op_files.len FROM ops \
             LEFT JOIN op_values ON op_values.op_id = ops.id \
             LEFT JOIN op_files ON op_files.op_id = ops.id \
             WHERE ops.graph_id = $1 AND ops.persist = $2"
        )
        .bind(graph.0 as i64)
        .bind(name)
        .fetch_optional(pool)
        .await)?;
        let Some((op, inline, file)) = row else {
            return Err(Error::NotFound(format!("no op persisted as `{name}` in {graph}")));
        };
        let op = OpId(op as u64);
        Ok(stored_value(op, inline, file)?.map(|value| (op, value)))
    }

    /// Every persisted value of a graph by name (`None` for one not computed), in one query.
    pub async fn persisted_values(&self, graph: GraphId) -> Result<Vec<(String, OpId, Option<StoredValue>)>> {
        let rows: Vec<PersistedRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT ops.persist, ops.id, op_values.value, op_files.len FROM ops \
             LEFT JOIN op_values ON op_values.op_id = ops.id \
             LEFT JOIN op_files ON op_files.op_id = ops.id \
             WHERE ops.graph_id = $1 AND ops.persist IS NOT NULL"
        )
        .bind(graph.0 as i64)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(name, op, inline, file)| {
                let op = OpId(op as u64);
                Ok((name, op, stored_value(op, inline, file)?))
            })
            .collect()
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

    /// Marks every not-computed op of a graph with `status` (failed graphs fail their ops).
    pub async fn set_pending_ops(&self, graph: GraphId, status: OpStatus) -> Result<()> {
        on_backend!(self, |pool, sql, DB| sqlx::query(
            "UPDATE ops SET status = $1 WHERE graph_id = $2 AND status != 'computed'"
        )
        .bind(status_name(status))
        .bind(graph.0 as i64)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Closes every connection (callers that hand the file to another process).
    pub async fn close(&self) {
        on_backend!(self, |pool, sql, DB| pool.close().await)
    }

    /// Graphs that were executing: a restarted server resumes them.
    pub async fn unfinished_graphs(&self) -> Result<Vec<GraphId>> {
        let ids: Vec<i64> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT id FROM graphs WHERE status = 'computing' ORDER BY id"
        )
        .fetch_all(pool)
        .await)?;
        Ok(ids.into_iter().map(|id| GraphId(id as u64)).collect())
    }

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
            if status.as_deref() != Some("computing") {
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
            sqlx::query("UPDATE graphs SET status = 'computed', failure = NULL WHERE id = $1")
                .bind(graph.0 as i64)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE ops SET status = 'computed' WHERE graph_id = $1")
                .bind(graph.0 as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, status: GraphStatus) -> StoredGraph {
        StoredGraph { id: GraphId(id), owner: 1, meta: GraphMeta::default(), status, failure: None }
    }

    #[test]
    fn the_graph_cache_never_keeps_a_row_older_than_a_write() {
        let cache = GraphCache::default();
        let graph = GraphId(7);
        // A read that started before a write does not fill the cache...
        let read_at = cache.generation();
        cache.written(graph, true, |row| row.status = GraphStatus::Computing);
        cache.fill(read_at, &row(7, GraphStatus::Pending));
        assert_eq!(cache.get(graph), None);
        // ...one after it does, and later writes change the cached row.
        cache.fill(cache.generation(), &row(7, GraphStatus::Computing));
        cache.written(graph, true, |row| row.status = GraphStatus::Computed);
        assert_eq!(cache.get(graph).map(|r| r.status), Some(GraphStatus::Computed));
        // A write that may not have committed drops the row: the next read asks the database.
        cache.written(graph, false, |row| row.status = GraphStatus::Failed);
        assert_eq!(cache.get(graph), None);
    }

    #[tokio::test]
    async fn graph_reads_see_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let owner = db.create_account("req", Role::Requester).await.unwrap();
        let owner = db.account_by_token(&owner).await.unwrap().unwrap().id;
        let graph = db.create_graph(owner, &GraphMeta::default()).await.unwrap();
        let status = |db: Db| async move { db.graph(graph).await.unwrap().unwrap().status };
        assert_eq!(status(db.clone()).await, GraphStatus::Pending);
        let record = OpRecord {
            local_id: 0,
            operation: serde_json::from_value(
                serde_json::json!({"operator": "lin", "params": {"dtype": "f64", "shape": []}}),
            )
            .unwrap(),
            inputs: vec![],
            persist: Some("x".into()),
            value: Some(Value::Tensor(ravproto::TensorData::from_f64(vec![], &[1.0]).unwrap())),
            value_file: None,
        };
        let refuse = |_: OpId, _: &OpRecord| -> Result<u64> { unreachable!("no files") };
        let stored = db.insert_ops(graph, &[record], &mut BTreeMap::new(), refuse, true).await.unwrap();
        assert_eq!(status(db.clone()).await, GraphStatus::Computing);
        db.set_graph_status(graph, GraphStatus::Failed, Some("why")).await.unwrap();
        assert_eq!(db.graph(graph).await.unwrap().unwrap().failure.as_deref(), Some("why"));
        db.store_results(&[], &[], &[stored[0].id], None, Some(graph)).await.unwrap();
        let read = db.graph(graph).await.unwrap().unwrap();
        assert_eq!((read.status, read.failure.as_deref()), (GraphStatus::Computed, None));
        // What the cache says is what the database says.
        let fresh = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        assert_eq!(fresh.graph(graph).await.unwrap(), Some(read));
    }

    #[tokio::test]
    async fn a_write_transaction_given_up_or_failed_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let owner = Db::connect(&url).await.unwrap().create_account("req", Role::Requester).await.unwrap();
        // One connection: a transaction left open on it would block or break every later write.
        let options = SqliteConnectOptions::from_str(&url).unwrap().foreign_keys(true);
        let db = Db::from_pool(SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap());
        let owner = db.account_by_token(&owner).await.unwrap().unwrap().id;
        let insert = || {
            Statement::new("INSERT INTO graphs (owner, meta, status, created_at) VALUES (")
                .int(owner)
                .sql(r#", '{"name": "t"}', 'pending', 0)"#)
        };
        let count = || Statement::new("SELECT COUNT(*) FROM graphs");
        // Given up after a batch went (its transaction is open): rolled back, connection reused.
        let mut tx = db.write_tx().await.unwrap();
        tx.execute(insert()).await.unwrap();
        assert_eq!(tx.ids(vec![count()]).await.unwrap(), [1]);
        drop(tx);
        let mut tx = db.write_tx().await.unwrap();
        assert_eq!(tx.ids(vec![count()]).await.unwrap(), [0]);
        tx.commit().await.unwrap();
        // A batch that fails part-way is undone as a whole.
        let mut tx = db.write_tx().await.unwrap();
        tx.execute(insert()).await.unwrap();
        tx.execute(Statement::new("INSERT INTO no_such_table VALUES (1)")).await.unwrap();
        assert!(tx.commit().await.is_err());
        // And a batch that commits keeps everything, reading its own rows on the way.
        let mut tx = db.write_tx().await.unwrap();
        tx.execute(insert()).await.unwrap();
        assert_eq!(tx.ids(vec![insert().sql(" RETURNING 5"), count()]).await.unwrap(), [5, 2]);
        tx.commit().await.unwrap();
        assert_eq!(db.graphs_of(owner).await.unwrap().len(), 2);
    }

    #[test]
    fn scratch_urls_name_the_new_database_and_keep_the_rest() {
        assert_eq!(url_with_database("postgres://u:p@h:5432/postgres", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(url_with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(url_with_database("postgresql://h/db?sslmode=disable", "x"), "postgresql://h/x?sslmode=disable");
    }
}

//! Write transactions that cost SQLite one round trip to its worker thread per batch of
//! statements instead of one per statement.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement, `BEGIN` and
//! `COMMIT` is a message to that thread and an answer back: about 50 µs each on a small
//! machine, most of a requester's round trip. A [`WriteTx`] on SQLite holds its statements back
//! and sends them as one multi-statement query (`BEGIN IMMEDIATE; …; COMMIT`) when the caller
//! needs rows back or commits. On PostgreSQL, which cannot prepare several statements at once,
//! it is a plain sqlx transaction and each statement runs when it is added.
//!
//! A batch that fails part-way, or whose caller gives up on it, leaves SQLite's transaction
//! open on the connection; [`WriteTx`] then rolls it back before the connection goes back to
//! the pool (see its `Drop`).

use sqlx::pool::PoolConnection;
use sqlx::{Postgres, QueryBuilder, Row, Sqlite};
use std::borrow::Cow;

/// A statement of a [`WriteTx`]: SQL with its arguments in place, rendered for the backend in
/// use (`?` for SQLite, `$N` for PostgreSQL).
#[derive(Debug, Default)]
pub(super) struct Statement {
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Sql(Cow<'static, str>),
    Int(i64),
    Float(f64),
    Text(Option<String>),
    Blob(Vec<u8>),
}

impl Statement {
    /// A statement starting with `sql`.
    pub(super) fn new(sql: impl Into<Cow<'static, str>>) -> Statement {
        Statement { parts: vec![Part::Sql(sql.into())] }
    }

    /// Appends SQL.
    pub(super) fn sql(mut self, sql: impl Into<Cow<'static, str>>) -> Statement {
        self.parts.push(Part::Sql(sql.into()));
        self
    }

    /// Appends an integer argument.
    pub(super) fn int(mut self, value: i64) -> Statement {
        self.parts.push(Part::Int(value));
        self
    }

    /// Appends a float argument.
    pub(super) fn float(mut self, value: f64) -> Statement {
        self.parts.push(Part::Float(value));
        self
    }

    /// Appends a text argument (`None` is NULL).
    pub(super) fn text(mut self, value: Option<String>) -> Statement {
        self.parts.push(Part::Text(value));
        self
    }

    /// Appends a blob argument.
    pub(super) fn blob(mut self, value: Vec<u8>) -> Statement {
        self.parts.push(Part::Blob(value));
        self
    }
}

/// Appends `$statement` to query builder `$query` (of either backend: the argument types are
/// the same, their placeholders differ).
macro_rules! render {
    ($query:expr, $statement:expr) => {
        for part in $statement.parts {
            match part {
                Part::Sql(sql) => $query.push(sql),
                Part::Int(value) => $query.push_bind(value),
                Part::Float(value) => $query.push_bind(value),
                Part::Text(value) => $query.push_bind(value),
                Part::Blob(value) => $query.push_bind(value),
            };
        }
    };
}

/// A write transaction; see the module docs. Dropped without [`WriteTx::commit`], it rolls
/// back.
pub(super) enum WriteTx {
    /// Statements not sent yet, on a connection whose transaction may be open.
    Sqlite {
        /// The connection; taken by `Drop` to roll back.
        conn: Option<PoolConnection<Sqlite>>,
        /// Statements waiting to be sent, `BEGIN IMMEDIATE` first until the first batch goes.
        batch: QueryBuilder<Sqlite>,
        /// Whether a batch was sent and the transaction not yet ended.
        open: bool,
    },
    /// An sqlx transaction (taken by the commit).
    Postgres(Option<sqlx::Transaction<'static, Postgres>>),
}

impl WriteTx {
    /// Starts a transaction on SQLite that holds the database's write lock from its first
    /// statement (`BEGIN IMMEDIATE`, so two writers never deadlock upgrading read locks).
    pub(super) async fn sqlite(pool: &sqlx::SqlitePool) -> Result<WriteTx, sqlx::Error> {
        let conn = pool.acquire().await?;
        Ok(WriteTx::Sqlite { conn: Some(conn), batch: QueryBuilder::new("BEGIN IMMEDIATE"), open: false })
    }

    /// Starts a transaction on PostgreSQL.
    pub(super) async fn postgres(pool: &sqlx::PgPool) -> Result<WriteTx, sqlx::Error> {
        Ok(WriteTx::Postgres(Some(pool.begin().await?)))
    }

    /// Adds a statement that returns no rows (on SQLite it runs with the next batch, so its
    /// errors come from [`WriteTx::ids`] or [`WriteTx::commit`]).
    pub(super) async fn execute(&mut self, statement: Statement) -> Result<(), sqlx::Error> {
        match self {
            WriteTx::Sqlite { batch, .. } => {
                batch.push("; ");
                render!(batch, statement);
                Ok(())
            }
            WriteTx::Postgres(tx) => {
                let tx = tx.as_mut().ok_or(sqlx::Error::PoolClosed)?;
                let mut query = QueryBuilder::<Postgres>::new("");
                render!(query, statement);
                query.build().execute(&mut **tx).await.map(|_| ())
            }
        }
    }

    /// Runs the statements held back and these, and returns the first column (an integer) of
    /// every row these return, in order.
    pub(super) async fn ids(&mut self, statements: Vec<Statement>) -> Result<Vec<i64>, sqlx::Error> {
        match self {
            WriteTx::Sqlite { .. } => {
                for statement in statements {
                    self.execute(statement).await?;
                }
                self.send(false).await
            }
            WriteTx::Postgres(tx) => {
                let tx = tx.as_mut().ok_or(sqlx::Error::PoolClosed)?;
                let mut ids = Vec::new();
                for statement in statements {
                    let mut query = QueryBuilder::<Postgres>::new("");
                    render!(query, statement);
                    for row in query.build().fetch_all(&mut **tx).await? {
                        ids.push(row.try_get(0)?);
                    }
                }
                Ok(ids)
            }
        }
    }

    /// Runs the statements held back and commits.
    pub(super) async fn commit(mut self) -> Result<(), sqlx::Error> {
        match &mut self {
            WriteTx::Sqlite { .. } => self.send(true).await.map(|_| ()),
            WriteTx::Postgres(tx) => tx.take().ok_or(sqlx::Error::PoolClosed)?.commit().await,
        }
    }

    /// SQLite: sends the batch (with `COMMIT` at its end when `commit`) as one query; the
    /// first column of the rows it returns. A failed batch is rolled back at once.
    async fn send(&mut self, commit: bool) -> Result<Vec<i64>, sqlx::Error> {
        let WriteTx::Sqlite { conn: Some(conn), batch, open } = self else {
            return Err(sqlx::Error::PoolClosed);
        };
        if commit {
            batch.push("; COMMIT");
        }
        let mut query = std::mem::replace(batch, QueryBuilder::new(""));
        *open = true;
        let sent = query.build().fetch_all(&mut **conn).await;
        let rows = match sent {
            Ok(rows) => rows,
            Err(error) => {
                // Whatever part ran is undone here, on this connection, before anyone reuses it.
                let _ = sqlx::query("ROLLBACK").execute(&mut **conn).await;
                *open = false;
                return Err(error);
            }
        };
        *open = !commit;
        rows.iter().map(|row| row.try_get(0)).collect()
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let WriteTx::Sqlite { conn, open: true, .. } = self else { return };
        let Some(mut conn) = conn.take() else { return };
        // The connection goes back to the pool only once the transaction is rolled back; a
        // batch still running (its caller gave up) ends first, as the worker thread runs one
        // command at a time. Without a runtime to roll back on, the connection is closed.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                        tracing::debug!(cause = %error, "rollback of an abandoned transaction");
                    }
                });
            }
            Err(_) => drop(conn.detach()),
        }
    }
}

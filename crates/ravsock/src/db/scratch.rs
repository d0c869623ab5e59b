//! Throwaway databases for tests and benchmarks: SQLite in a directory, or a new database on
//! a PostgreSQL server when [`TEST_POSTGRES_ENV`] names one (CI runs the storing suites on
//! both backends this way).

use crate::error::Result;

/// The variable naming a PostgreSQL server (a URL whose account may create databases) on which
/// tests and benchmarks run instead of SQLite; see [`scratch_database_url`].
pub const TEST_POSTGRES_ENV: &str = "RAVEN_TEST_POSTGRES_URL";

/// A database for one test or benchmark run: a new, empty database on the PostgreSQL server
/// named by [`TEST_POSTGRES_ENV`] when that is set, otherwise a SQLite file in `dir`.
pub async fn scratch_database_url(dir: &std::path::Path) -> Result<String> {
    let Ok(server) = std::env::var(TEST_POSTGRES_ENV) else {
        return Ok(format!("sqlite://{}", dir.join("ravsock.db").display()));
    };
    use sqlx::Connection;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // Unique across the processes of a run (pid) and across runs on one server (time).
    let name = format!(
        "raven_scratch_{}_{}_{}",
        super::now_secs(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_urls_name_the_new_database_and_keep_the_rest() {
        assert_eq!(url_with_database("postgres://u:p@h:5432/postgres", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(url_with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(url_with_database("postgresql://h/db?sslmode=disable", "x"), "postgresql://h/x?sslmode=disable");
    }
}

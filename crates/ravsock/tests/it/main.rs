//! ravsock integration tests: the HTTP API against a real database, in-process; the `ravsock`
//! binary killed with SIGKILL mid-graph, its settings from a `.env` file, and its logging to a
//! full device, its peak memory under amplification probes, what it removes after the
//! retention, the admin token routes, the ledger (credits, a topic's rewards, `ravsock ledger check`, a paid graph through SIGKILLs), every route against callers it must refuse, the dashboard's sessions and data, and a worker node
//! (`ravpy::node`) riding out a SIGKILL, with a topic's rounds among its entries. The database is SQLite, or PostgreSQL when `RAVEN_TEST_POSTGRES_URL` names a server (`ravsock::db::scratch_database_url`).

mod dash;
mod http;
mod kill;
mod ledger;
mod logging;
mod memory;
mod paid;
mod resume;
mod retention;
mod routes;
mod settings;
mod tokens;
mod topics;
mod worker;

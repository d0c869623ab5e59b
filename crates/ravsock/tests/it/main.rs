//! ravsock integration tests: the HTTP API against a real SQLite database, in-process, and the
//! `ravsock` binary killed with SIGKILL mid-graph.

mod http;
mod kill;

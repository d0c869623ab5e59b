//! ravsock integration tests: the HTTP API against a real SQLite database, in-process.

mod http;

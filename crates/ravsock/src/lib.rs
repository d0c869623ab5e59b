//! ravsock, the Raven scheduler server.
//!
//! - [`scheduler`]: one event-driven state machine that partitions graphs into subgraphs,
//!   keeps the ready frontier, dispatches ready subgraphs to idle eligible providers in
//!   parallel, and handles deadlines, failures, retries and late results. It does no I/O.
//! - [`db`]: SQLite storage (accounts with hashed tokens, graphs, ops, values), results
//!   written one transaction per subgraph.
//! - [`http`]: the requester API; [`server`]: the task that runs the scheduler against the
//!   database and resumes unfinished graphs after a restart.
//!
//! Still to come (the distributed-path issue): the socket.io provider protocol, the embedded
//! FTP server, the `ravsock` binary and PostgreSQL.

pub mod auth;
pub mod db;
pub mod error;
pub mod http;
pub mod scheduler;
pub mod server;
pub mod validate;

pub use error::{Error, Result};

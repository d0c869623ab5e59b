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
pub mod socket;
pub mod validate;

pub use error::{Error, Result};

pub mod config;

use std::future::Future;

/// Runs the server on `listener` until `shutdown` resolves: database, scheduler task, HTTP API
/// and socket.io on one port.
pub async fn run(
    config: config::Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::Internal(format!("cannot create {}: {e}", config.data_dir.display())))?;
    }
    let db = db::Db::connect(&config.database_url()).await?;
    let (scheduler, inbox) = server::scheduler_channel();
    let (socket_layer, io) = socket::layer(socket::SocketState::new(db.clone(), scheduler.clone()));
    server::start_scheduler(&scheduler, inbox, db.clone(), config.scheduler(), Some(io)).await?;
    let app = http::router(http::AppState { db, scheduler }).layer(socket_layer);
    tracing::info!(address = %listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?, "ravsock listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Internal(format!("server stopped: {e}")))
}

//! ravsock, the Raven scheduler server.
//!
//! - [`scheduler`]: one event-driven state machine that partitions graphs into subgraphs,
//!   keeps the ready frontier, dispatches ready subgraphs to idle eligible providers in
//!   parallel, and handles deadlines, failures, retries and late results. It does no I/O.
//! - [`db`]: storage in SQLite (the default) or PostgreSQL (a `postgres://` database URL):
//!   accounts with hashed tokens, graphs, ops, values; results written one transaction per
//!   subgraph.
//! - [`http`]: the requester API; [`server`]: the task that runs the scheduler against the
//!   database and resumes unfinished graphs after a restart; [`socket`]: the provider
//!   protocol over socket.io.
//! - [`federated`]: federated queries (rules, keys, one submission per provider, the
//!   aggregate), outside the scheduler; encrypted ones need the cargo feature `he`.
//! - [`bulk`]: the embedded ravftp server and the blob store for values above the inline
//!   limit.

pub mod auth;
pub mod bulk;
pub mod db;
pub mod error;
pub mod federated;
pub mod http;
pub mod scheduler;
pub mod server;
pub mod socket;
pub mod validate;

pub use error::{Error, Result};

pub mod config;

use std::future::Future;

/// Runs the server on `listener` until `shutdown` resolves: database, scheduler task, HTTP API
/// and socket.io on one port, and ravftp on `config.ftp_bind`.
pub async fn run(
    config: config::Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::Internal(format!("cannot create {}: {e}", config.data_dir.display())))?;
    let db = db::Db::connect(&config.database_url()).await?;
    let ftp_listener = tokio::net::TcpListener::bind(config.ftp_bind)
        .await
        .map_err(|e| Error::Internal(format!("cannot bind the ftp address {}: {e}", config.ftp_bind)))?;
    let ftp_port = ftp_listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?.port();
    let bulk = bulk::Bulk::new(&config.data_dir, ftp_port, config.inline_limit)?;
    let (ftp_stop, ftp_stopped) = tokio::sync::oneshot::channel::<()>();
    let ftp_config = ravftp::server::ServerConfig {
        passive_ports: config.ftp_passive_from..=config.ftp_passive_to,
        ..Default::default()
    };
    let ftp = tokio::spawn(ravftp::server::serve(ftp_listener, bulk.users(), ftp_config, async {
        let _ = ftp_stopped.await;
    }));
    let (scheduler, inbox) = server::scheduler_channel();
    let (socket_layer, io) = socket::layer(socket::SocketState::new(db.clone(), scheduler.clone(), bulk.clone()));
    server::start_scheduler(&scheduler, inbox, db.clone(), bulk.clone(), config.scheduler(), Some(io)).await?;
    let app = http::router(http::AppState::new(db, scheduler, bulk)).layer(socket_layer);
    let address = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(%address, ftp_port, "ravsock listening");
    // Small messages (assignments, results, long-poll answers) must not wait for Nagle's
    // algorithm to meet a delayed ACK: that alone cost 40 ms per round trip.
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(cause = %error, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    let _ = ftp_stop.send(());
    let _ = ftp.await;
    served.map_err(|e| Error::Internal(format!("server stopped: {e}")))
}

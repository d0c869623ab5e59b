//! ravsock, the Raven scheduler server. Its modules, from the front doors down (a module
//! uses only those below it; the `tidy` test checks it):
//!
//! - [`api`]: the front doors: HTTP routes with thin handlers, and the socket.io namespaces.
//! - [`service`]: what the server does for its callers (graphs, access, results, federated
//!   queries), taking the database and typed state.
//! - [`dispatch`]: the scheduler's I/O shell, one task that feeds the [`scheduler`] commands
//!   and deadlines and performs its actions (assignments, results, emits); it resumes
//!   unfinished graphs after a restart.
//! - [`scheduler`]: one event-driven state machine that partitions graphs into subgraphs,
//!   keeps the ready frontier, dispatches ready subgraphs to idle eligible providers in
//!   parallel, and handles deadlines, failures, retries and late results. It does no I/O.
//! - [`db`]: storage in SQLite (the default) or PostgreSQL (a `postgres://` database URL), a
//!   file per table group; results written one transaction per subgraph.
//! - [`bulk`]: the embedded ravftp server and the blob store for values above the inline
//!   limit; [`validate`]: checks on uploaded ops.
//! - [`auth`], [`config`], [`error`]: roles and tokens, flags, errors and their wire codes;
//!   [`metrics`]: the counters behind `GET /metrics`.

pub mod api;
pub mod auth;
pub mod bulk;
pub mod config;
pub mod db;
pub mod dispatch;
pub mod error;
pub mod metrics;
pub mod scheduler;
pub mod service;
pub mod validate;

pub use error::{Error, Result};

use std::future::Future;

/// Runs the server on `listener` until `shutdown` resolves: database, scheduler task, HTTP API
/// and socket.io on one port, and ravftp on `config.ftp_bind`; all over TLS when the config
/// names a certificate and key.
pub async fn run(
    config: config::Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // A certificate that cannot be used stops the start, before anything is opened.
    let tls_files = config.tls().map_err(Error::BadRequest)?;
    let tls = match &tls_files {
        Some(files) => Some(api::tls::server_config(&files.cert, &files.key)?),
        None => None,
    };
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
        home_quota: config.ftp_home_quota,
        tls: tls_files,
        ..Default::default()
    };
    let ftp = tokio::spawn(ravftp::server::serve(ftp_listener, bulk.users(), ftp_config, async {
        let _ = ftp_stopped.await;
    }));
    let (scheduler, inbox) = dispatch::scheduler_channel();
    let mut socket_state = api::socket::SocketState::new(db.clone(), scheduler.clone(), bulk.clone());
    socket_state.dash.secure = tls.is_some();
    let dash = socket_state.dash.clone();
    let (socket_layer, io) = api::socket::layer(socket_state, config.heartbeat());
    let dashboards = api::dash_socket::spawn(dash.clone(), io.clone());
    let watched = io.clone();
    dispatch::start_scheduler(&scheduler, inbox, db.clone(), bulk.clone(), config.scheduler(), Some(io)).await?;
    let tokens = api::tokens::spawn(db.clone(), watched, scheduler.metrics().clone());
    let retention =
        dispatch::retention::spawn(db.clone(), bulk.clone(), config.retention(), scheduler.metrics().clone());
    let state = api::AppState::new(db, scheduler, bulk)
        .with_max_op_bytes(config.max_op_bytes)
        .with_accounting(config.accounting)
        .with_dash(dash);
    let app = api::router(state).layer(socket_layer);
    let address = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(%address, ftp_port, tls = tls.is_some(), "ravsock listening");
    let served = match tls {
        Some(tls) => {
            let listener = api::tls::TlsListener::new(listener, tls)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
        None => {
            // Small messages (assignments, results, long-poll answers) must not wait for
            // Nagle's algorithm to meet a delayed ACK: that alone cost 40 ms per round trip.
            let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(cause = %error, "cannot set TCP_NODELAY");
                }
            });
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
    };
    let _ = ftp_stop.send(());
    let _ = ftp.await;
    retention.abort();
    tokens.abort();
    dashboards.abort();
    served.map_err(|e| Error::Internal(format!("server stopped: {e}")))
}

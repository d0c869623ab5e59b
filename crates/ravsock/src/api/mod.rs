//! ravsock's front doors: the HTTP routes and their extractors, and the socket.io namespaces.
//! Handlers are thin: they read a request, call the service layer ([`crate::service`]) and
//! turn its answer or [`crate::Error`] into a reply. Route paths come from `ravproto::routes`,
//! which the clients use too.
//!
//! - [`extract`]: JSON bodies, path ids and the authenticated caller;
//! - [`graphs`]: the requester API;
//! - [`federated`]: federated queries;
//! - [`topics`]: topics, their rounds and answers;
//! - [`jobs`]: jobs, their slices, results and events;
//! - [`socket`]: the `/provider` and `/requester` socket.io namespaces; [`topic_socket`]:
//!   `/topics`;
//! - [`malformed`]: what becomes of malformed socket.io events;
//! - [`health`]: liveness and readiness, without a token;
//! - [`account`]: the caller's balances and movements, and an admin's credit;
//! - [`admin`]: token management (admin tokens only);
//! - [`tokens`]: the token watcher, which closes the sockets of revoked and expired tokens;
//! - [`tls`]: HTTPS and WSS: the listener that finishes TLS handshakes for axum;
//! - [`dash`]: the dashboard's pages and data routes; [`dash_socket`]: its live namespace.

mod account;
mod admin;
mod dash;
pub mod dash_socket;
mod extract;
mod federated;
mod graphs;
mod health;
mod job_socket;
mod jobs;
pub mod malformed;
pub mod socket;
pub mod tls;
pub mod tokens;
mod topic_socket;
mod topics;

pub use extract::{BodyBudget, BodyLimit, Bytes, Caller, GraphCall, Json, Path, SMALL_BODY_BYTES, body_limit};
pub use federated::{MAX_KEYS_BYTES, MAX_SUBMISSION_BYTES};

use crate::bulk::Bulk;
use crate::db::Db;
use crate::dispatch::SchedulerHandle;
use crate::service::{Federated, Graphs};
use axum::Router;
use axum::routing::{get, post};
use ravproto::routes;

/// Largest request body (an op chunk with inline values); bulk tensors use the file server.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Largest body of the routes that take no ops or values (a graph's metadata is at most
/// `validate::MAX_META_BYTES`): a 50 MB graph name is refused before it is read.
pub const MAX_SMALL_BODY_BYTES: usize = 64 << 10;

/// Bytes of big request bodies read and parsed at once ([`BodyBudget`]): one op chunk at the
/// body limit, or several of what ravop sends (at most 8 MiB of values per chunk).
pub const BODY_BUDGET_BYTES: u64 = 64 << 20;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// The database (the callers' tokens).
    pub db: Db,
    pub graphs: Graphs,
    /// Federated queries.
    pub federated: Federated,
    /// Topics and their rounds.
    pub topics: crate::service::Topics,
    /// Jobs and their slices.
    pub jobs: crate::service::Jobs,
    /// The dashboard and its sessions.
    pub dash: crate::service::Dash,
}

impl AppState {
    /// State for the handlers: graphs in `db`, run by `scheduler`, bulk values in `bulk`.
    pub fn new(db: Db, scheduler: SchedulerHandle, bulk: Bulk) -> AppState {
        let federated = Federated::new(db.clone());
        let topics = crate::service::Topics::new(db.clone(), scheduler.clone());
        let dash = crate::service::Dash::new(db.clone(), scheduler.clone());
        let jobs = crate::service::Jobs::new(db.clone(), scheduler.clone(), bulk.clone());
        AppState {
            graphs: Graphs::new(db.clone(), scheduler, bulk, federated.clone()),
            federated,
            topics,
            jobs,
            dash,
            db,
        }
    }

    /// The same, refusing at upload an op that needs more than `max` bytes where the upload
    /// decides its size (`--max-op-bytes`).
    pub fn with_max_op_bytes(mut self, max: u64) -> AppState {
        self.graphs.set_max_op_bytes(max);
        self
    }

    /// The same, with the dashboard (and the sessions) the socket.io namespace uses.
    pub fn with_dash(mut self, dash: crate::service::Dash) -> AppState {
        self.dash = dash;
        self
    }

    /// The same, paying for work through the ledger when `accounting` is on.
    pub fn with_accounting(mut self, accounting: crate::service::ledger::Accounting) -> AppState {
        self.topics.set_accounting(accounting);
        self.graphs.set_accounting(accounting);
        self
    }
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(routes::GRAPHS, post(graphs::create).layer(extract::body_limit(MAX_SMALL_BODY_BYTES)).get(graphs::list))
        .route(routes::RUN_GRAPH, post(graphs::run))
        .route(routes::GRAPH, get(graphs::progress))
        .route(routes::GRAPH_OPS, post(graphs::upload))
        .route(routes::GRAPH_EXECUTE, post(graphs::execute).layer(extract::body_limit(MAX_SMALL_BODY_BYTES)))
        .route(routes::GRAPH_CANCEL, post(graphs::cancel).layer(extract::body_limit(MAX_SMALL_BODY_BYTES)))
        .route(routes::GRAPH_RESULT, get(graphs::result))
        .route(routes::GRAPH_RESULT_FILE, get(graphs::result_file))
        .route(routes::FTP_CREDENTIALS, post(graphs::ftp_credentials))
        .route(routes::OPEN_GRAPHS, get(graphs::open_graphs))
        .route(routes::GRAPH_WAIT, get(graphs::wait))
        .route(
            routes::ADMIN_TOKENS,
            get(admin::list_tokens).post(admin::create_token).layer(extract::body_limit(MAX_SMALL_BODY_BYTES)),
        )
        .route(routes::ACCOUNT, get(account::balance))
        .route(routes::ACCOUNT_ENTRIES, get(account::entries))
        .route(routes::ADMIN_CREDIT, post(account::credit).layer(extract::body_limit(MAX_SMALL_BODY_BYTES)))
        .route(routes::ADMIN_TOKEN_REVOKE, post(admin::revoke_token).layer(extract::body_limit(MAX_SMALL_BODY_BYTES)))
        .route(routes::HEALTHZ, get(health::healthz))
        .route(routes::READYZ, get(health::readyz))
        .route(routes::METRICS, get(health::metrics))
        .layer(extract::body_limit(MAX_BODY_BYTES))
        .merge(federated::routes())
        .merge(topics::routes())
        .merge(jobs::routes())
        .merge(dash::routes().layer(extract::body_limit(MAX_SMALL_BODY_BYTES)))
        .layer(axum::Extension(BodyBudget::new(BODY_BUDGET_BYTES)))
        .with_state(state)
}

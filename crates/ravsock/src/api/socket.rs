//! ravsock's socket.io namespaces: `/provider` for compute, `/requester` for graph events
//! (and `/topics` for topic workers, in [`super::topic_socket`], and `/dash` for dashboards,
//! in [`super::dash_socket`]).
//!
//! Port of the original's `/client` namespace (§3.4). A provider connects with its token and
//! protocol version in the auth payload (refused with a clear message otherwise), joins a graph
//! or any with its benchmark, and then receives assignments and answers them. Every
//! event becomes a scheduler command; the scheduler task emits assignments and withdrawals
//! to the provider's own room.
//!
//! A requester connects to `/requester` the same way and subscribes to its own graphs (see
//! `ravproto::requester`); each subscribed socket joins the graph's room, where the scheduler
//! task emits progress, failed attempts and the graph's end. It may also follow its jobs,
//! whose events are pushed page by page ([`super::job_socket`]).
//!
//! A refused connection gets a typed [`ErrorBody`] as its CONNECT_ERROR message
//! ([`ErrorBody::to_connect_error`]), so clients read the code instead of matching words. A
//! malformed or unknown event is answered the same way ([`super::malformed`]).

use super::malformed::{self, MalformedTotal};
use crate::auth::Role;
use crate::bulk::{Bulk, provider_user};
use crate::db::{Account, Db};
use crate::dispatch::{Command, SchedulerHandle, graph_room, provider_room};
use crate::error::Error;
use crate::scheduler::{AssignmentId, Event};
use crate::service::access::owned_graph;
use ravproto::jobs::{BundleResults, EVENT_SLICE_RESULTS};
use ravproto::messages::{ErrorBody, ErrorCode, OpFailure};
use ravproto::provider::{
    EVENT_CREDENTIALS, EVENT_JOIN, EVENT_OP_FAILED, EVENT_REFUSED, EVENT_REJECTED, EVENT_RESULT, JoinRequest,
    NAMESPACE, OpFailedReport, ProviderAuth, Rejected, RejectionCode, ResultMessage,
};
use ravproto::requester::{
    self, EVENT_ERROR, EVENT_GRAPH_DONE, EVENT_PROGRESS, EVENT_SUBSCRIBE, RequesterAuth, Subscribe,
};
use ravproto::status::GraphStatus;
use ravproto::{PROTOCOL_VERSION, ProviderId};
use socketioxide::SocketIo;
use socketioxide::extract::{Event as EventName, Extension, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// State shared by the socket handlers.
#[derive(Clone)]
pub struct SocketState {
    /// The database (tokens).
    pub db: Db,
    /// The scheduler task.
    pub scheduler: SchedulerHandle,
    /// ravftp credentials for each connection.
    pub bulk: Bulk,
    /// Malformed events received, on every connection.
    pub malformed: MalformedTotal,
    /// The dashboard (its sessions are shared with the HTTP routes: see `AppState::with_dash`).
    pub dash: crate::service::Dash,
    /// Jobs, whose events `/requester` pushes (see [`super::job_socket`]).
    pub jobs: crate::service::jobs::Jobs,
    next_provider: Arc<AtomicU64>,
}

impl SocketState {
    /// State for the socket handlers.
    pub fn new(db: Db, scheduler: SchedulerHandle, bulk: Bulk) -> SocketState {
        SocketState {
            dash: crate::service::Dash::new(db.clone(), scheduler.clone()),
            jobs: crate::service::jobs::Jobs::new(db.clone(), scheduler.clone(), bulk.clone()),
            db,
            scheduler,
            bulk,
            malformed: MalformedTotal::default(),
            next_provider: Arc::new(AtomicU64::new(1)),
        }
    }
}

/// The refusal of a connection, sent as the CONNECT_ERROR message.
#[derive(Debug)]
pub(super) struct Refusal(ErrorBody);

impl Refusal {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal(ErrorBody { code, message: message.into(), op: None })
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_connect_error())
    }
}

/// Builds the socket.io layer and its handle, with this heartbeat.
pub fn layer(state: SocketState, heartbeat: crate::config::Heartbeat) -> (SocketIoLayer, SocketIo) {
    let (layer, io) = SocketIo::builder()
        .ping_interval(heartbeat.interval)
        .ping_timeout(heartbeat.timeout)
        .max_payload(super::MAX_BODY_BYTES as u64)
        .max_buffer_size(4096)
        .with_state(state)
        .build_layer();
    io.ns(NAMESPACE, on_connect.with(authenticate));
    io.ns(requester::NAMESPACE, requester_connected.with(authenticate_requester));
    io.ns(ravproto::topics::NAMESPACE, super::topic_socket::connected.with(super::topic_socket::authenticate));
    io.ns(ravproto::dash::NAMESPACE, super::dash_socket::connected.with(super::dash_socket::authenticate));
    (layer, io)
}

/// The account of a connecting peer (`who`: "provider" or "requester"), or the reason it is
/// refused: another protocol version, or an unknown token.
pub(super) async fn check_peer(state: &SocketState, token: &str, version: u32, who: &str) -> Result<Account, Refusal> {
    if version != PROTOCOL_VERSION {
        return Err(Refusal::new(
            ErrorCode::VersionMismatch,
            format!("protocol version mismatch: this server speaks {PROTOCOL_VERSION}, the {who} {version}"),
        ));
    }
    match state.db.authenticate(token).await {
        Ok(account) => Ok(account),
        Err(Error::Unauthorized(why)) => Err(Refusal::new(ErrorCode::Unauthorized, why)),
        Err(error) => {
            tracing::error!(cause = %error, "token lookup failed");
            Err(Refusal::new(ErrorCode::Internal, "server error while checking the token"))
        }
    }
}

/// The account behind a provider connection: the scheduler counts retries and quarantines by
/// account, since a reconnect is a new connection of the same account.
#[derive(Clone, Copy, Debug)]
struct ProviderAccount(crate::scheduler::Account);

/// The refusal of a malformed auth payload.
pub(super) fn malformed_auth(error: impl std::fmt::Display) -> Refusal {
    Refusal::new(
        ErrorCode::BadRequest,
        format!("malformed auth payload (expected token and protocol_version): {error}"),
    )
}

/// Connect middleware: the protocol version must match and the token must be a provider's.
async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<ProviderAuth>,
    State(state): State<SocketState>,
) -> Result<(), Refusal> {
    let auth = auth.map_err(malformed_auth)?;
    let account = check_peer(&state, &auth.token, auth.protocol_version, "provider").await?;
    if account.role == Role::Requester {
        return Err(Refusal::new(ErrorCode::Forbidden, "requester tokens cannot provide compute"));
    }
    let provider = ProviderId(state.next_provider.fetch_add(1, Ordering::Relaxed));
    socket.extensions.insert(provider);
    socket.extensions.insert(ProviderAccount(account.id));
    tracing::info!(%provider, account = %account.name, "provider connected");
    // The token watcher (`api::tokens`) finds a revoked or expired account's sockets by it.
    socket.extensions.insert(account);
    state.scheduler.metrics().provider_connection(true);
    register(&socket, provider);
    Ok(())
}

/// Sends the connection's ravftp credentials. (Runs in a task of its own after the CONNECT
/// packet; a provider given input files before these arrive gives the assignment back.)
async fn on_connect(socket: SocketRef, Extension(provider): Extension<ProviderId>, State(state): State<SocketState>) {
    match state.bulk.issue(&provider_user(provider)) {
        Ok(credentials) => {
            if let Err(error) = socket.emit(EVENT_CREDENTIALS, &credentials) {
                tracing::warn!(%provider, cause = %error, "cannot send ftp credentials");
            }
        }
        Err(error) => tracing::error!(%provider, cause = %error, "cannot issue ftp credentials"),
    }
}

/// Joins the provider's room and registers its event handlers: from the connect middleware,
/// because socketioxide sends the CONNECT packet before it spawns the connect handler, and a
/// fast client's `join` could otherwise arrive before the handlers exist and be dropped (seen
/// as a provider that never got work, about one run in seven).
fn register(socket: &SocketRef, provider: ProviderId) {
    socket.join(provider_room(provider));
    socket.on(
        EVENT_JOIN,
        |socket: SocketRef,
         TryData(join): TryData<JoinRequest>,
         State(state): State<SocketState>,
         Extension(provider): Extension<ProviderId>,
         Extension(ProviderAccount(account)): Extension<ProviderAccount>| async move {
            let join = match join {
                Ok(join) => join,
                Err(error) => return malformed::refuse(&socket, &state.malformed, EVENT_REFUSED, EVENT_JOIN, &error),
            };
            // Groups are proved here, with the secret's hash: the scheduler only sees keys.
            let mut groups = std::collections::BTreeSet::new();
            for group in &join.groups {
                let refusal = match state.db.check_group(&group.key, &group.secret).await {
                    Ok(Some(true)) => None,
                    Ok(Some(false)) => {
                        Some(format!("the secret given for compute group {} is not its secret", group.key))
                    }
                    Ok(None) => Some(format!("there is no compute group {} (a job naming it creates it)", group.key)),
                    Err(error) => {
                        tracing::error!(%provider, cause = %error, "cannot check a compute group");
                        Some(format!("the server could not check compute group {}", group.key))
                    }
                };
                if let Some(reason) = refusal {
                    let rejected = Rejected { reason, code: RejectionCode::Group };
                    if let Err(error) = socket.emit(EVENT_REJECTED, &rejected) {
                        tracing::debug!(%provider, cause = %error, "cannot reject a join");
                    }
                    return;
                }
                groups.insert(group.key.clone());
            }
            let event =
                Event::ProviderJoined { provider, account, benchmark: join.benchmark, graph: join.graph, groups };
            send(&state, Command::Event(event)).await;
        },
    );
    socket.on(
        EVENT_RESULT,
        |socket: SocketRef,
         TryData(message): TryData<ResultMessage>,
         State(state): State<SocketState>,
         Extension(provider): Extension<ProviderId>| async move {
            let decoded = match message {
                Ok(message) => message.decode(),
                Err(error) => return malformed::refuse(&socket, &state.malformed, EVENT_REFUSED, EVENT_RESULT, &error),
            };
            match decoded {
                Ok(mut frame) => {
                    // An unreadable checkpoint is a missing one: the scheduler retries the subgraph.
                    let checkpoint = frame.take_checkpoint().unwrap_or_else(|error| {
                        tracing::warn!(%provider, cause = %error, "unreadable training checkpoint");
                        None
                    });
                    let values = frame.header.outputs.into_iter().zip(frame.values).collect();
                    let assignment = AssignmentId(frame.header.assignment);
                    let files = frame.header.files;
                    send(&state, Command::Results { provider, assignment, values, files, checkpoint }).await;
                }
                Err(error) => malformed::refuse(&socket, &state.malformed, EVENT_REFUSED, EVENT_RESULT, &error),
            }
        },
    );
    socket.on(
        EVENT_OP_FAILED,
        |socket: SocketRef,
         TryData(report): TryData<OpFailedReport>,
         State(state): State<SocketState>,
         Extension(provider): Extension<ProviderId>| async move {
            let report = match report {
                Ok(report) => report,
                Err(error) => {
                    return malformed::refuse(&socket, &state.malformed, EVENT_REFUSED, EVENT_OP_FAILED, &error);
                }
            };
            let failure = OpFailure { op_id: report.op_id, operator: report.operator, reason: report.reason };
            let event = Event::SubgraphFailed {
                provider,
                assignment: AssignmentId(report.assignment),
                failure,
                retryable: report.retryable,
                over_budget: report.over_budget,
            };
            send(&state, Command::Event(event)).await;
        },
    );
    socket.on(
        EVENT_SLICE_RESULTS,
        |socket: SocketRef,
         TryData(results): TryData<BundleResults>,
         State(state): State<SocketState>,
         Extension(provider): Extension<ProviderId>| async move {
            match results {
                Ok(results) => send(&state, Command::SliceResults { provider, results }).await,
                Err(error) => malformed::refuse(&socket, &state.malformed, EVENT_REFUSED, EVENT_SLICE_RESULTS, &error),
            }
        },
    );
    socket.on_fallback(|socket: SocketRef, EventName(event): EventName, State(state): State<SocketState>| async move {
        malformed::refuse(&socket, &state.malformed, EVENT_REFUSED, &event, &"no such event on the provider namespace");
    });
    socket.on_disconnect(|State(state): State<SocketState>, Extension(provider): Extension<ProviderId>| async move {
        tracing::info!(%provider, "provider disconnected");
        state.scheduler.metrics().provider_connection(false);
        send(&state, Command::Event(Event::ProviderLeft { provider })).await;
        state.bulk.revoke(&provider_user(provider));
    });
}

/// Connect middleware of `/requester`: the protocol version must match and the token must be a
/// requester's (or an admin's). Registers the subscribe handler, before CONNECT (see
/// [`register`]).
async fn authenticate_requester(
    socket: SocketRef,
    TryData(auth): TryData<RequesterAuth>,
    State(state): State<SocketState>,
) -> Result<(), Refusal> {
    let auth = auth.map_err(malformed_auth)?;
    let account = check_peer(&state, &auth.token, auth.protocol_version, "requester").await?;
    if account.role == Role::Provider {
        return Err(Refusal::new(ErrorCode::Forbidden, "provider tokens cannot follow graphs"));
    }
    socket.extensions.insert(account);
    socket.on(EVENT_SUBSCRIBE, subscribe);
    socket.on(requester::EVENT_JOB_SUBSCRIBE, super::job_socket::subscribe);
    socket.on_fallback(|socket: SocketRef, EventName(event): EventName, State(state): State<SocketState>| async move {
        malformed::refuse(&socket, &state.malformed, EVENT_ERROR, &event, &"no such event on the requester namespace");
    });
    Ok(())
}

/// Nothing to do once connected: the middleware registered the handlers.
async fn requester_connected() {}

/// Joins the graph's room, then sends its current state: whatever changes after the join
/// reaches the socket through the room, so nothing falls between the two.
async fn subscribe(
    socket: SocketRef,
    TryData(request): TryData<Subscribe>,
    State(state): State<SocketState>,
    Extension(account): Extension<Account>,
) {
    let current = async {
        // A malformed request is answered like any refusal, never dropped in silence.
        let request =
            request.map_err(|e| Error::BadRequest(format!("malformed subscribe (expected graph_id): {e}")))?;
        owned_graph(&state.db, &account, request.graph_id.0).await?;
        socket.join(graph_room(request.graph_id));
        let graph = owned_graph(&state.db, &account, request.graph_id.0).await?;
        state.db.progress(&graph).await
    };
    let sent = match current.await {
        Ok(progress) if matches!(progress.status, GraphStatus::Pending | GraphStatus::Computing) => {
            socket.emit(EVENT_PROGRESS, &progress)
        }
        Ok(progress) => socket.emit(EVENT_GRAPH_DONE, &progress),
        Err(error) => socket.emit(EVENT_ERROR, &Error::body(&error)),
    };
    if let Err(error) = sent {
        tracing::debug!(cause = %error, "cannot answer a subscription");
    }
}

async fn send(state: &SocketState, command: Command) {
    if let Err(error) = state.scheduler.send(command).await {
        tracing::error!(cause = %error, "cannot reach the scheduler");
    }
}

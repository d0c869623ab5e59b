//! The dashboard's socket.io namespace (`/dash`): a browser connects with its session cookie
//! (the same check as the pages), joins the room of the graphs it may see (every graph for an
//! admin, its own for a requester) and, on `watch`, the room of one graph's ops.
//!
//! [`spawn`] starts the task that feeds it: graph changes (the dispatch task's progress and
//! ends) go to the rooms of their owner and of the admins; ops handed out and computed go to
//! the graph's room, batched, and are remembered for the op view
//! ([`crate::service::Dash::record`]). The browser never polls.

use super::dash::session_of;
use super::socket::{Refusal, SocketState};
use crate::auth::Role;
use crate::db::Account;
use crate::dispatch::OpsEvent;
use crate::error::Error;
use crate::service::Dash;
use crate::service::access::owned_graph;
use ravproto::GraphId;
use ravproto::dash::{EVENT_ERROR, EVENT_GRAPH, EVENT_OPS, EVENT_WATCH, NAMESPACE, OpsChange};
use ravproto::messages::ErrorCode;
use ravproto::status::OpStatus;
use socketioxide::SocketIo;
use socketioxide::extract::{Extension, SocketRef, State, TryData};
use tokio::sync::broadcast::error::RecvError;

/// The room of the admins' dashboards.
const ADMINS: &str = "dash-admins";
/// Op events sent in one batch at most.
const BATCH: usize = 1_024;

fn owner_room(owner: i64) -> String {
    format!("dash-owner-{owner}")
}

fn graph_room(graph: GraphId) -> String {
    format!("dash-graph-{}", graph.0)
}

/// Connect middleware: a live session of a requester or an admin.
pub(super) async fn authenticate(socket: SocketRef, State(state): State<SocketState>) -> Result<(), Refusal> {
    let Some(session) = session_of(&socket.req_parts().headers) else {
        return Err(Refusal::new(ErrorCode::Unauthorized, "no dashboard session: log in at /dash/login"));
    };
    let account = state.dash.session_caller(&session).await.map_err(|error| match error {
        Error::Unauthorized(why) => Refusal::new(ErrorCode::Unauthorized, why),
        other => Refusal::new(ErrorCode::Internal, other.to_string()),
    })?;
    Dash::check(&account).map_err(|e| Refusal::new(ErrorCode::Forbidden, e.to_string()))?;
    match account.role {
        Role::Admin => socket.join(ADMINS),
        _ => socket.join(owner_room(account.id)),
    }
    // The token watcher (`api::tokens`) closes the socket when the token stops working.
    socket.extensions.insert(account);
    socket.on(EVENT_WATCH, watch);
    Ok(())
}

/// Nothing to do once connected: the middleware registered the handler.
pub(super) async fn connected() {}

/// Watches one graph: leaves the room of the graph watched before, joins this one's.
async fn watch(
    socket: SocketRef,
    TryData(graph): TryData<GraphId>,
    State(state): State<SocketState>,
    Extension(account): Extension<Account>,
) {
    let joined = async {
        let graph = graph.map_err(|e| Error::BadRequest(format!("malformed watch (expected a graph id): {e}")))?;
        owned_graph(&state.db, &account, graph.0).await?;
        let watched: Vec<_> = socket.rooms().into_iter().filter(|room| room.starts_with("dash-graph-")).collect();
        socket.leave(watched);
        socket.join(graph_room(graph));
        Ok::<_, Error>(())
    };
    if let Err(error) = joined.await
        && let Err(error) = socket.emit(EVENT_ERROR, &Error::body(&error))
    {
        tracing::debug!(cause = %error, "cannot answer a watch");
    }
}

/// Starts the task that pushes graph and op changes to the dashboards; it runs until aborted.
pub fn spawn(dash: Dash, io: SocketIo) -> tokio::task::JoinHandle<()> {
    let metrics = dash.scheduler().metrics().clone();
    crate::dispatch::supervised::spawn("dashboard", metrics, move || feed(dash.clone(), io.clone()))
}

async fn feed(dash: Dash, io: SocketIo) {
    let mut graphs = dash.scheduler().subscribe();
    let mut ops = dash.scheduler().subscribe_ops();
    loop {
        tokio::select! {
            event = graphs.recv() => match event {
                Ok(event) => {
                    let Some(namespace) = io.of(NAMESPACE) else { continue };
                    let owner = match dash.owner_of(event.graph).await {
                        Ok(Some(owner)) => owner,
                        Ok(None) => continue,
                        Err(error) => {
                            tracing::debug!(cause = %error, "cannot read a graph's owner");
                            continue;
                        }
                    };
                    if let Err(error) = namespace.to([ADMINS.to_string(), owner_room(owner)]).emit(EVENT_GRAPH, &event.progress).await {
                        tracing::debug!(cause = %error, "cannot reach a dashboard");
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            event = ops.recv() => match event {
                Ok(first) => {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match ops.try_recv() {
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                    push_ops(&dash, &io, batch).await;
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
        }
    }
}

/// Records a batch of op events and sends them to their graphs' rooms, one message per run of
/// events of the same graph, status and account.
async fn push_ops(dash: &Dash, io: &SocketIo, batch: Vec<OpsEvent>) {
    let mut changes: Vec<OpsChange> = Vec::new();
    for event in batch {
        dash.record(&event);
        let status = if event.computed { OpStatus::Computed } else { OpStatus::Computing };
        let provider = match event.account {
            Some(account) => dash.name_of(account).await.ok(),
            None => None,
        };
        // Only into the last change, so that an op handed out and then computed in one batch
        // is told in that order.
        match changes.last_mut().filter(|c| c.graph == event.graph && c.status == status && c.provider == provider) {
            Some(change) => change.ops.extend(event.ops),
            None => changes.push(OpsChange { graph: event.graph, ops: event.ops, status, provider }),
        }
    }
    for change in changes {
        let Some(namespace) = io.of(NAMESPACE) else { return };
        if let Err(error) = namespace.to(graph_room(change.graph)).emit(EVENT_OPS, &change).await {
            tracing::debug!(cause = %error, "cannot reach a dashboard");
        }
    }
}

//! The requester HTTP API (JSON bodies from `ravproto::messages`).
//!
//! Port of the original's requester endpoints (§3.3), reshaped: the server allocates graph ids,
//! ops go up in chunks with client-side ids mapped to server ids, a requester sees only its own
//! graphs (others' answer 404, so ids leak nothing), and every error is an `ErrorBody`.

use crate::auth::Role;
use crate::bulk::{Bulk, requester_user};
use crate::db::{Account, Db, StoredGraph, StoredOp, StoredValue};
use crate::error::{Error, Result};
use crate::server::{Command, SchedulerHandle};
use crate::validate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use ravproto::messages::{
    Approach, CreateGraphResponse, FtpCredentials, GraphMeta, GraphProgress, OpChunkRequest, OpChunkResponse,
    OpFailure, OpRecord, OpRef, OpenGraph, ResultFile, RunGraphRequest, RunGraphResponse,
};
use ravproto::status::{GraphStatus, OpStatus};
use ravproto::{GraphId, Operation, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Largest request body (an op chunk with inline values); bulk tensors use the file server.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The scheduler task.
    pub scheduler: SchedulerHandle,
    /// Bulk values (ravftp and the blob store).
    pub bulk: Bulk,
    /// Federated queries' long polls and locks.
    pub(crate) federated: crate::federated::FederatedState,
    /// Local → server ids of graphs being uploaded, so a chunk does not re-read every earlier
    /// op; the lock also serialises concurrent uploads to one graph.
    uploads: Arc<std::sync::Mutex<HashMap<GraphId, UploadSlot>>>,
}

type UploadSlot = Arc<tokio::sync::Mutex<Option<BTreeMap<u64, ravproto::OpId>>>>;

impl AppState {
    /// State for the handlers.
    pub fn new(db: Db, scheduler: SchedulerHandle, bulk: Bulk) -> AppState {
        AppState { db, scheduler, bulk, federated: Default::default(), uploads: Arc::default() }
    }

    fn upload_slot(&self, graph: GraphId) -> UploadSlot {
        self.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(graph).or_default().clone()
    }

    fn forget_upload(&self, graph: GraphId) {
        self.uploads.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&graph);
    }
}

/// `axum::Json`, but a malformed body becomes a JSON [`Error`] instead of plain text.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Json<T>> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(Error::BadRequest(rejection.body_text())),
        }
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path`, but a malformed id becomes a JSON [`Error`].
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(Error::BadRequest(rejection.body_text())),
        }
    }
}

/// The authenticated caller.
pub struct Caller(pub Account);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(Error::Unauthorized)?;
        let token = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).ok_or(Error::Unauthorized)?;
        let account = state.db.account_by_token(token.trim()).await?.ok_or(Error::Unauthorized)?;
        Ok(Caller(account))
    }
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/graphs", post(create_graph).get(list_graphs))
        .route("/v1/graphs/run", post(run_graph))
        .route("/v1/graphs/{id}", get(progress))
        .route("/v1/graphs/{id}/ops", post(upload_ops))
        .route("/v1/graphs/{id}/execute", post(execute))
        .route("/v1/graphs/{id}/cancel", post(cancel))
        .route("/v1/graphs/{id}/results/{name}", get(result))
        .route("/v1/graphs/{id}/results/{name}/file", get(result_file))
        .route("/v1/ftp/credentials", post(ftp_credentials))
        .route("/v1/open-graphs", get(open_graphs))
        .route("/v1/graphs/{id}/wait", get(wait))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(crate::federated::routes())
        .with_state(state)
}

fn requester(caller: &Account) -> Result<()> {
    match caller.role {
        Role::Requester | Role::Admin => Ok(()),
        Role::Provider => Err(Error::Forbidden("provider tokens cannot submit or read graphs".into())),
    }
}

/// The caller's graph, or 404 for a missing graph and for anyone else's.
pub(crate) async fn owned_graph(db: &Db, caller: &Account, id: u64) -> Result<StoredGraph> {
    requester(caller)?;
    match db.graph(GraphId(id)).await? {
        Some(graph) if graph.owner == caller.id || caller.role == Role::Admin => Ok(graph),
        _ => Err(Error::NotFound(format!("no graph {id}"))),
    }
}

async fn create_graph(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(meta): Json<GraphMeta>,
) -> Result<Json<CreateGraphResponse>> {
    requester(&caller)?;
    crate::federated::check_meta(&meta)?;
    let graph_id = state.db.create_graph(caller.id, &meta).await?;
    // A new graph has no ops: its first chunk needs no id map read from the database.
    *state
        .upload_slot(graph_id)
        .try_lock()
        .map_err(|_| Error::Internal("a new graph's upload slot is busy".into()))? = Some(BTreeMap::new());
    tracing::info!(%graph_id, owner = %caller.name, "graph created");
    Ok(Json(CreateGraphResponse { graph_id }))
}

async fn list_graphs(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Vec<GraphProgress>>> {
    requester(&caller)?;
    let mut out = Vec::new();
    for graph in state.db.graphs_of(caller.id).await? {
        out.push(graph_progress(&state.db, &graph).await?);
    }
    Ok(Json(out))
}

#[derive(serde::Deserialize)]
struct UploadQuery {
    /// Execute the graph once this (last) chunk is stored: one request instead of two.
    #[serde(default)]
    execute: bool,
}

async fn upload_ops(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
    axum::extract::Query(query): axum::extract::Query<UploadQuery>,
    Json(chunk): Json<OpChunkRequest>,
) -> Result<Json<OpChunkResponse>> {
    let graph = owned_graph(&state.db, &caller, id).await?;
    if graph.status != GraphStatus::Pending {
        return Err(Error::Conflict(format!(
            "{} is already executing; ops can only be added before execute",
            graph.id
        )));
    }
    let slot = state.upload_slot(graph.id);
    let mut cached = slot.lock().await;
    // Checked again under the lock: an execute may have won the race for it.
    if owned_graph(&state.db, &caller, id).await?.status != GraphStatus::Pending {
        return Err(Error::Conflict(format!(
            "{} is already executing; ops can only be added before execute",
            graph.id
        )));
    }
    let known = match cached.as_mut() {
        Some(known) => known,
        None => cached.insert(state.db.id_map(graph.id).await?),
    };
    validate::chunk(&chunk.ops, known)?;
    crate::federated::check_ops(&graph.meta, &chunk.ops)?;
    let user = requester_user(caller.id);
    let adopt = |op, record: &OpRecord| adopt_value_file(&state.bulk, &user, op, record);
    // A federated graph opens to providers instead (`start`), outside this transaction.
    let then_compute = query.execute && graph.meta.approach != Approach::Federated;
    // Whether this chunk is the whole graph: then the scheduler gets its ops from here
    // instead of reading them back.
    let whole_graph = known.is_empty();
    match state.db.insert_ops(graph.id, &chunk.ops, known, adopt, then_compute).await {
        Ok(stored) => {
            let id_map = stored.iter().map(|op| (op.local_id, op.id)).collect();
            let mut meta = graph.meta.clone();
            if runs_models(&chunk.ops) && !meta.requirements.onnx_required {
                meta.requirements.onnx_required = true;
                state.db.set_graph_meta(graph.id, &meta).await?;
            }
            if then_compute {
                state.forget_upload(graph.id);
                let command = match whole_graph {
                    true => Command::ExecuteStored {
                        graph: graph.id,
                        requirements: meta.requirements,
                        values: stored_values(&stored, chunk.ops),
                        ops: stored,
                        done: None,
                    },
                    false => Command::Execute(graph.id),
                };
                state.scheduler.send(command).await?;
            } else if query.execute {
                start(&state, &graph).await?;
            }
            Ok(Json(OpChunkResponse { id_map }))
        }
        Err(error) => {
            // The transaction rolled back; the cache may hold ids it never committed.
            *cached = None;
            Err(error)
        }
    }
}

/// Whether these ops run whole models, which only providers built with the `onnx` feature do;
/// kept in the graph's requirements so that `list-graphs` shows it too.
fn runs_models(ops: &[OpRecord]) -> bool {
    ops.iter().any(|op| op.operation.kind() == ravproto::OpKind::ForwardPass)
}

/// Moves the ravftp file holding the value of `record` (a `lin` op) from `user`'s home into
/// the blob store as the value of `op`, after checking it holds the declared tensor; its length.
fn adopt_value_file(bulk: &Bulk, user: &str, op: ravproto::OpId, record: &OpRecord) -> Result<u64> {
    let name = record.value_file.as_deref().unwrap_or_default();
    let invalid = |reason: String| Error::InvalidOp { op: OpRef::Local(record.local_id), reason };
    let check = bulk.check(user, name).map_err(|e| invalid(e.to_string()))?;
    if let Operation::Lin(params) = &record.operation {
        let declared = (params.dtype, params.shape.clone());
        if check.tensor.as_ref() != Some(&declared) {
            return Err(invalid(format!(
                "value file {name} does not hold a {}{:?} tensor",
                params.dtype, params.shape
            )));
        }
    }
    bulk.adopt(user, name, op)?;
    Ok(check.len)
}

/// A whole graph in one request: created, stored and started in one transaction, then
/// answered when it ends (or when `wait_ms` runs out) with its persisted results if asked.
async fn run_graph(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(request): Json<RunGraphRequest>,
) -> Result<Json<RunGraphResponse>> {
    requester(&caller)?;
    let RunGraphRequest { mut meta, ops, wait_ms, with_results } = request;
    crate::federated::check_meta(&meta)?;
    if meta.approach == Approach::Federated {
        return Err(Error::BadRequest(
            "a federated graph opens to providers: create it (POST /v1/graphs), upload its ops and execute it".into(),
        ));
    }
    validate::chunk(&ops, &BTreeMap::new())?;
    meta.requirements.onnx_required |= runs_models(&ops);
    let user = requester_user(caller.id);
    let adopt = |op, record: &OpRecord| adopt_value_file(&state.bulk, &user, op, record);
    let (graph, stored) = state.db.create_computing_graph(caller.id, &meta, &ops, adopt).await?;
    tracing::info!(%graph, owner = %caller.name, ops = ops.len(), "graph created to run");
    let persisted: Vec<(String, ravproto::OpId)> =
        stored.iter().filter_map(|op| Some((op.persist.clone()?, op.id))).collect();
    let requirements = meta.requirements.clone();
    let values = stored_values(&stored, ops);
    let (done, computed) = tokio::sync::oneshot::channel();
    state.scheduler.send(Command::ExecuteStored { graph, requirements, ops: stored, values, done: Some(done) }).await?;
    let deadline = tokio::time::Instant::now() + wait_limit(Some(wait_ms));
    // Unanswered (failed, cancelled, still computing): the database says where it stands.
    let computed = tokio::time::timeout_at(deadline, computed).await.ok().and_then(Result::ok);
    let progress = match &computed {
        Some(computed) => computed.progress.clone(),
        None => graph_progress(&state.db, &owned_graph(&state.db, &caller, graph.0).await?).await?,
    };
    let (mut results, mut large_results) = (BTreeMap::new(), Vec::new());
    // Every persisted value still in the scheduler's memory: no read back.
    let in_memory = computed.filter(|_| with_results).and_then(|mut computed| {
        persisted.into_iter().map(|(name, op)| Some((name, computed.values.remove(&op)?))).collect::<Option<_>>()
    });
    if let Some(in_memory) = in_memory {
        results = in_memory;
    } else if with_results && progress.status == GraphStatus::Computed {
        for (name, _, value) in state.db.persisted_values(graph).await? {
            match value {
                Some(StoredValue::Inline(value)) => {
                    results.insert(name, value);
                }
                Some(StoredValue::File { .. }) => large_results.push(name),
                None => return Err(Error::Internal(format!("`{name}` of computed {graph} has no value"))),
            }
        }
    }
    Ok(Json(RunGraphResponse { progress, results, large_results }))
}

/// The inline values of `records`, by the server ids they were `stored` under (in the same
/// order).
fn stored_values(stored: &[StoredOp], records: Vec<OpRecord>) -> Vec<(ravproto::OpId, Value)> {
    stored.iter().zip(records).filter_map(|(op, record)| Some((op.id, record.value?))).collect()
}

/// The next progress event of `graph` before `deadline`; `None` when the deadline passes or
/// events were missed, so the caller reads the database instead.
async fn next_change(
    events: &mut tokio::sync::broadcast::Receiver<crate::server::GraphEvent>,
    graph: GraphId,
    deadline: tokio::time::Instant,
) -> Option<GraphProgress> {
    let change = async {
        loop {
            match events.recv().await {
                Ok(event) if event.graph == graph => return Some(event.progress),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    };
    tokio::time::timeout_at(deadline, change).await.ok().flatten()
}

async fn execute(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
) -> Result<Json<GraphProgress>> {
    let graph = owned_graph(&state.db, &caller, id).await?;
    if graph.status != GraphStatus::Pending {
        return Err(Error::Conflict(format!("{} was already executed", graph.id)));
    }
    // Holding the upload lock: no chunk is half-stored while the graph starts.
    let slot = state.upload_slot(graph.id);
    let _uploads = slot.lock().await;
    if owned_graph(&state.db, &caller, id).await?.status != GraphStatus::Pending {
        return Err(Error::Conflict(format!("{} was already executed", graph.id)));
    }
    start(&state, &graph).await?;
    let graph = owned_graph(&state.db, &caller, id).await?;
    Ok(Json(graph_progress(&state.db, &graph).await?))
}

/// Starts a pending graph; the caller holds its upload lock and checked its status. A
/// federated graph opens to providers instead of going to the scheduler.
async fn start(state: &AppState, graph: &StoredGraph) -> Result<()> {
    state.forget_upload(graph.id);
    if graph.meta.approach == Approach::Federated {
        return crate::federated::open(state, graph).await;
    }
    state.db.set_graph_status(graph.id, GraphStatus::Computing, None).await?;
    state.scheduler.send(Command::Execute(graph.id)).await
}

async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
) -> Result<Json<GraphProgress>> {
    let graph = owned_graph(&state.db, &caller, id).await?;
    if matches!(graph.status, GraphStatus::Pending | GraphStatus::Computing) {
        state.forget_upload(graph.id);
        state.db.set_graph_status(graph.id, GraphStatus::Cancelled, None).await?;
        state.scheduler.send(Command::Cancel(graph.id)).await?;
    }
    let graph = owned_graph(&state.db, &caller, id).await?;
    Ok(Json(graph_progress(&state.db, &graph).await?))
}

async fn progress(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
) -> Result<Json<GraphProgress>> {
    let graph = owned_graph(&state.db, &caller, id).await?;
    Ok(Json(graph_progress(&state.db, &graph).await?))
}

/// The stored value persisted as `name`, or the error saying it is not computed yet.
async fn persisted(db: &Db, graph: &StoredGraph, name: &str) -> Result<(ravproto::OpId, StoredValue)> {
    db.persisted_value(graph.id, name).await?.ok_or_else(|| {
        Error::Conflict(format!("`{name}` of {} is not computed yet (graph is {:?})", graph.id, graph.status))
    })
}

async fn result(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, name)): Path<(u64, String)>,
) -> Result<Json<Value>> {
    let graph = owned_graph(&state.db, &caller, id).await?;
    match persisted(&state.db, &graph, &name).await? {
        (_, StoredValue::Inline(value)) => Ok(Json(value)),
        (_, StoredValue::File { len }) => Err(Error::TooLarge(format!(
            "`{name}` is {len} bytes; fetch it through ravftp (GET /v1/graphs/{}/results/{name}/file)",
            graph.id.0
        ))),
    }
}

/// Places a persisted result in the caller's ravftp home (ask for credentials first) and
/// names the file.
async fn result_file(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, name)): Path<(u64, String)>,
) -> Result<Json<ResultFile>> {
    let graph = owned_graph(&state.db, &caller, id).await?;
    let user = requester_user(caller.id);
    if state.bulk.users().home(&user).is_none() {
        return Err(Error::Conflict("ask for ftp credentials first (POST /v1/ftp/credentials)".into()));
    }
    let (op, stored) = persisted(&state.db, &graph, &name).await?;
    let file = format!("result-{}-{}.ravv", graph.id.0, op.0);
    let len = match stored {
        StoredValue::File { .. } => state.bulk.lend(op, &user, &file)?,
        StoredValue::Inline(value) => {
            let bytes = value.encode_binary();
            let path = state.bulk.users().home(&user).unwrap_or_default().join(&file);
            std::fs::write(&path, &bytes)
                .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
            bytes.len() as u64
        }
    };
    Ok(Json(ResultFile { name: file, len }))
}

#[derive(serde::Deserialize)]
struct OpenQuery {
    #[serde(default)]
    approach: Option<Approach>,
}

/// Graphs that providers may join now (any token): names, requirements and progress, never
/// ops or values.
async fn open_graphs(
    State(state): State<AppState>,
    Caller(_caller): Caller,
    axum::extract::Query(query): axum::extract::Query<OpenQuery>,
) -> Result<Json<Vec<OpenGraph>>> {
    let mut out = Vec::new();
    for graph in state.db.graphs_with_status(GraphStatus::Computing).await? {
        if query.approach.is_some_and(|approach| approach != graph.meta.approach) {
            continue;
        }
        let progress = graph_progress(&state.db, &graph).await?;
        out.push(OpenGraph {
            graph_id: graph.id,
            name: graph.meta.name.clone(),
            approach: graph.meta.approach,
            requirements: graph.meta.requirements.clone(),
            rules: graph.meta.rules.clone(),
            ops: progress.ops.values().sum(),
            percent: progress.percent,
        });
    }
    Ok(Json(out))
}

/// Issues new ravftp credentials to the caller (the previous password stops working).
async fn ftp_credentials(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<FtpCredentials>> {
    if caller.role == Role::Provider {
        return Err(Error::Forbidden("providers get their ftp credentials when they connect".into()));
    }
    Ok(Json(state.bulk.issue(&requester_user(caller.id))?))
}

/// Longest a `wait` request is held open.
pub const MAX_WAIT_MS: u64 = 30_000;

/// How long a long poll asked to wait `timeout_ms` is held: at most [`MAX_WAIT_MS`].
pub(crate) fn wait_limit(timeout_ms: Option<u64>) -> std::time::Duration {
    std::time::Duration::from_millis(timeout_ms.unwrap_or(MAX_WAIT_MS).min(MAX_WAIT_MS))
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Long poll: answers with the graph's progress as soon as it changes or finishes (at once if
/// it already has finished), or after `timeout_ms` (at most [`MAX_WAIT_MS`]).
async fn wait(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
    axum::extract::Query(query): axum::extract::Query<WaitQuery>,
) -> Result<Json<GraphProgress>> {
    // Subscribe before reading the status, so a change between the two is not missed.
    let mut events = state.scheduler.subscribe();
    let graph = owned_graph(&state.db, &caller, id).await?;
    if matches!(graph.status, GraphStatus::Computing) {
        // The scheduler's own counts: no COUNT over the graph's ops per wake-up. Missed events
        // answer from the database and let the client ask again.
        let deadline = tokio::time::Instant::now() + wait_limit(query.timeout_ms);
        if let Some(progress) = next_change(&mut events, graph.id, deadline).await {
            return Ok(Json(progress));
        }
    }
    let graph = owned_graph(&state.db, &caller, id).await?;
    Ok(Json(graph_progress(&state.db, &graph).await?))
}

/// Status and op counts of a graph.
pub async fn graph_progress(db: &Db, graph: &StoredGraph) -> Result<GraphProgress> {
    let ops = db.op_counts(graph.id).await?;
    let failure: Option<OpFailure> = graph.failure.as_deref().and_then(|f| serde_json::from_str(f).ok());
    Ok(progress_of(graph.id, graph.status, ops, failure))
}

/// A graph's progress from its op counts (stored ones, or the scheduler's while it runs).
pub fn progress_of(
    graph_id: GraphId,
    status: GraphStatus,
    ops: BTreeMap<OpStatus, u64>,
    failure: Option<OpFailure>,
) -> GraphProgress {
    let total: u64 = ops.values().sum();
    let computed = ops.get(&OpStatus::Computed).copied().unwrap_or(0);
    let percent = if total == 0 { 100.0 } else { 100.0 * computed as f64 / total as f64 };
    GraphProgress { graph_id, status, ops, percent, failure }
}

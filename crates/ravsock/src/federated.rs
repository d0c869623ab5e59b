//! Federated queries: rules and keys from the requester, one submission per provider, and the
//! aggregate handed to the requester once enough providers reported.
//!
//! A federated graph never reaches the scheduler: it has no subgraphs, providers compute over
//! their own CSV files (`ravpy federated`) and post their sums here. In encrypted mode the
//! sums are tfhe ciphertexts under the requester's public key; ravsock adds them with the
//! requester's evaluation key and never holds a key that decrypts (threat model: the `ravfed`
//! crate docs). Nothing of a submission is logged.
//!
//! Closing a query (the requester's `close`, or the `max_clients`-th submission) computes the
//! aggregate and stores it with the graph's `computed` status in one transaction; a per-graph
//! lock keeps submissions out while it runs, so every counted contributor is in the sum.

use crate::auth::Role;
use crate::db::{Account, Db, StoredGraph};
use crate::error::{Error, Result};
use crate::http::{AppState, Caller, Json, Path, owned_graph};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post, put};
use base64::Engine;
use ravproto::GraphId;
use ravproto::federated::{FederatedAggregate, FederatedPayload, FederatedSpec, Privacy};
use ravproto::messages::{Approach, GraphMeta, OpRecord, OpRef};
use ravproto::status::GraphStatus;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Largest evaluation-key upload (a compressed tfhe server key is about 60 MB).
pub const MAX_KEYS_BYTES: usize = 256 << 20;
/// Largest submission body (a few KB of ciphertext in practice).
pub const MAX_SUBMISSION_BYTES: usize = 4 << 20;

/// Whether this build can add encrypted submissions.
pub const ENCRYPTION_BUILT: bool = cfg!(feature = "he");

/// The refusal of encrypted work by a build without the `he` feature.
#[cfg(not(feature = "he"))]
fn not_built() -> Error {
    Error::Conflict("this ravsock was built without homomorphic encryption (cargo feature `he`)".into())
}

/// Shared state of the federated handlers.
#[derive(Clone, Debug)]
pub struct FederatedState {
    /// Graphs whose contributors or status changed (long polls listen).
    changes: tokio::sync::broadcast::Sender<GraphId>,
    /// One lock per graph: submissions and closing take turns.
    locks: Arc<Mutex<HashMap<GraphId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Default for FederatedState {
    fn default() -> FederatedState {
        FederatedState { changes: tokio::sync::broadcast::channel(256).0, locks: Arc::default() }
    }
}

impl FederatedState {
    fn lock_of(&self, graph: GraphId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(graph).or_default().clone()
    }

    fn changed(&self, graph: GraphId) {
        let _ = self.changes.send(graph);
    }
}

/// The federated routes (merged into [`crate::http::router`]).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/federated/{id}", get(spec))
        .route("/v1/federated/{id}/wait", get(wait))
        .route("/v1/federated/{id}/keys", put(upload_keys).layer(DefaultBodyLimit::max(MAX_KEYS_BYTES)))
        .route("/v1/federated/{id}/public-key", get(public_key))
        .route("/v1/federated/{id}/submissions", post(submit).layer(DefaultBodyLimit::max(MAX_SUBMISSION_BYTES)))
        .route("/v1/federated/{id}/close", post(close))
}

/// Checks the rules of a graph being created.
pub(crate) fn check_meta(meta: &GraphMeta) -> Result<()> {
    match (meta.approach, &meta.rules) {
        (Approach::Federated, None) => Err(Error::BadRequest("a federated graph needs rules".into())),
        (Approach::Federated, Some(rules)) => {
            rules.check().map_err(|reason| Error::BadRequest(format!("federated rules: {reason}")))?;
            if rules.privacy == Privacy::Encrypted && !ENCRYPTION_BUILT {
                return Err(Error::BadRequest(
                    "this ravsock was built without homomorphic encryption (cargo feature `he`); \
                     choose privacy `plain` or use a server built with `--features he`"
                        .into(),
                ));
            }
            Ok(())
        }
        (Approach::Distributed, Some(_)) => Err(Error::BadRequest("rules are for federated graphs only".into())),
        (Approach::Distributed, None) => Ok(()),
    }
}

/// Checks uploaded ops against the graph's approach: federated graphs hold only federated ops
/// on columns of their rules, other graphs none.
pub(crate) fn check_ops(meta: &GraphMeta, records: &[OpRecord]) -> Result<()> {
    for record in records {
        let invalid = |reason: String| Error::InvalidOp { op: OpRef::Local(record.local_id), reason };
        let federated = ravfed::query::federated_op(&record.operation);
        match (meta.approach, federated, &meta.rules) {
            (Approach::Federated, Some((_, params)), Some(rules)) => {
                ravfed::query::op_columns(params, rules).map_err(|e| invalid(e.to_string()))?;
            }
            (Approach::Federated, _, _) => {
                return Err(invalid(format!(
                    "`{}` cannot be part of a federated graph (only federated_* ops)",
                    record.operation.kind()
                )));
            }
            (Approach::Distributed, Some(_), _) => {
                return Err(invalid("federated ops need a graph created with approach `federated`".into()));
            }
            (Approach::Distributed, None, _) => {}
        }
    }
    Ok(())
}

/// Opens a pending federated graph to providers (its `execute`); the caller holds the graph's
/// upload lock and checked that it is pending.
pub(crate) async fn open(state: &AppState, graph: &StoredGraph) -> Result<()> {
    let spec = spec_of(&state.db, graph).await?;
    if spec.columns.is_empty() {
        return Err(Error::Conflict(format!("{} has no federated op to compute", graph.id)));
    }
    if spec.rules.privacy == Privacy::Encrypted && state.db.federated_public_key(graph.id).await?.is_none() {
        return Err(Error::Conflict(format!(
            "{} is encrypted: upload the evaluation keys (PUT /v1/federated/{}/keys) before execute",
            graph.id, graph.id.0
        )));
    }
    state.db.set_graph_status(graph.id, GraphStatus::Computing, None).await?;
    tracing::info!(graph = %graph.id, privacy = ?spec.rules.privacy, "federated graph open to providers");
    state.federated.changed(graph.id);
    Ok(())
}

/// The graph's spec: rules, the statistics asked for, status and contributors.
async fn spec_of(db: &Db, graph: &StoredGraph) -> Result<FederatedSpec> {
    let rules = match (&graph.meta.approach, &graph.meta.rules) {
        (Approach::Federated, Some(rules)) => rules.clone(),
        _ => return Err(Error::NotFound(format!("{} is not a federated graph", graph.id))),
    };
    let ops = db.ops(graph.id).await?;
    let columns = ravfed::query::column_requests(&rules, ops.iter().map(|op| &op.operation))
        .map_err(|e| Error::Internal(format!("stored ops of {}: {e}", graph.id)))?;
    Ok(FederatedSpec {
        graph_id: graph.id,
        name: graph.meta.name.clone(),
        rules,
        columns,
        status: graph.status,
        contributors: db.federated_contributors(graph.id).await?,
    })
}

/// The graph for a caller who may see its spec: its owner, or any provider while it is open.
async fn visible_graph(db: &Db, caller: &Account, id: u64) -> Result<StoredGraph> {
    if caller.role != Role::Provider {
        return owned_graph(db, caller, id).await;
    }
    match db.graph(GraphId(id)).await? {
        Some(graph) if graph.meta.approach == Approach::Federated && graph.status != GraphStatus::Pending => Ok(graph),
        _ => Err(Error::NotFound(format!("no open federated graph {id}"))),
    }
}

async fn spec(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
) -> Result<Json<FederatedSpec>> {
    let graph = visible_graph(&state.db, &caller, id).await?;
    Ok(Json(spec_of(&state.db, &graph).await?))
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    #[serde(default)]
    contributors_above: u32,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Long poll for the owner: answers once more than `contributors_above` providers reported or
/// the graph is no longer open, or after `timeout_ms` (at most [`crate::http::MAX_WAIT_MS`]).
async fn wait(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
    axum::extract::Query(query): axum::extract::Query<WaitQuery>,
) -> Result<Json<FederatedSpec>> {
    // Subscribed before reading, so a change in between is not missed.
    let mut changes = state.federated.changes.subscribe();
    let graph = owned_graph(&state.db, &caller, id).await?;
    let spec = spec_of(&state.db, &graph).await?;
    let settled = |spec: &FederatedSpec| {
        spec.contributors > query.contributors_above
            || !matches!(spec.status, GraphStatus::Computing | GraphStatus::Pending)
    };
    if settled(&spec) {
        return Ok(Json(spec));
    }
    let _ = tokio::time::timeout(crate::http::wait_limit(query.timeout_ms), async {
        loop {
            match changes.recv().await {
                Ok(changed) if changed != graph.id => continue,
                // A change of this graph, or missed changes: read again.
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let graph = owned_graph(&state.db, &caller, id).await?;
                    if settled(&spec_of(&state.db, &graph).await?) {
                        return Ok::<(), Error>(());
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    })
    .await;
    let graph = owned_graph(&state.db, &caller, id).await?;
    Ok(Json(spec_of(&state.db, &graph).await?))
}

/// Evaluation keys from the owner of a pending encrypted graph.
async fn upload_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
    body: axum::body::Bytes,
) -> Result<Json<FederatedSpec>> {
    let graph = owned_graph(&state.db, &caller, id).await?;
    let spec = spec_of(&state.db, &graph).await?;
    if spec.rules.privacy != Privacy::Encrypted {
        return Err(Error::Conflict(format!("{} is a plain query; it takes no keys", graph.id)));
    }
    if graph.status != GraphStatus::Pending {
        return Err(Error::Conflict(format!("{} is already open; keys are set before execute", graph.id)));
    }
    let public = public_key_of(body.clone()).await?;
    state.db.set_federated_keys(graph.id, &public, &body).await?;
    tracing::info!(graph = %graph.id, bytes = body.len(), "federated evaluation keys stored");
    Ok(Json(spec))
}

#[cfg(feature = "he")]
async fn public_key_of(keys: axum::body::Bytes) -> Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || ravfed::he::public_key_of(&keys))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::BadRequest(format!("evaluation keys: {e}")))
}

#[cfg(not(feature = "he"))]
async fn public_key_of(_keys: axum::body::Bytes) -> Result<Vec<u8>> {
    Err(not_built())
}

/// The requester's compact public key, for providers to encrypt with.
async fn public_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
) -> Result<axum::response::Response> {
    let graph = visible_graph(&state.db, &caller, id).await?;
    let key = state
        .db
        .federated_public_key(graph.id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{} has no public key (it is not an encrypted query)", graph.id)))?;
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        key,
    )))
}

/// A provider's statistics.
async fn submit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
    Json(payload): Json<FederatedPayload>,
) -> Result<Json<FederatedSpec>> {
    if caller.role != Role::Provider {
        return Err(Error::Forbidden("only provider tokens submit federated statistics".into()));
    }
    let graph = visible_graph(&state.db, &caller, id).await?;
    let spec = spec_of(&state.db, &graph).await?;
    match (&payload, spec.rules.privacy) {
        (FederatedPayload::Plain(sums), Privacy::Plain) => {
            ravfed::stats::check_shape(&spec.columns, sums).map_err(|e| Error::BadRequest(e.to_string()))?;
        }
        (FederatedPayload::Encrypted(ciphertext), Privacy::Encrypted) => {
            check_ciphertext(&state.db, &spec, ciphertext).await?;
        }
        (_, privacy) => {
            return Err(Error::BadRequest(format!("{} takes {privacy:?} submissions", graph.id).to_lowercase()));
        }
    }
    let text = serde_json::to_string(&payload).map_err(|e| Error::Internal(e.to_string()))?;
    let lock = state.federated.lock_of(graph.id);
    let contributors = {
        let _turn = lock.lock().await;
        state.db.add_federated_submission(graph.id, caller.id, &text, spec.rules.effective_max_clients()).await?
    };
    tracing::info!(graph = %graph.id, provider = %caller.name, contributors, "federated submission stored");
    state.federated.changed(graph.id);
    if contributors >= spec.rules.effective_max_clients() {
        // The last provider allowed: close now, in the background (the provider is done).
        let state = state.clone();
        let graph = graph.id;
        tokio::spawn(async move {
            if let Err(error) = close_graph(&state, graph).await {
                tracing::error!(%graph, cause = %error, "cannot close a full federated graph");
            }
        });
    }
    Ok(Json(FederatedSpec { contributors, ..spec }))
}

fn decode(ciphertext: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(ciphertext)
        .map_err(|e| Error::BadRequest(format!("ciphertext is not base64: {e}")))
}

/// Checks that a submission is a ciphertext list of the right shape for this graph.
#[cfg(feature = "he")]
async fn check_ciphertext(db: &Db, spec: &FederatedSpec, ciphertext: &str) -> Result<()> {
    let bytes = decode(ciphertext)?;
    let public = db
        .federated_public_key(spec.graph_id)
        .await?
        .ok_or_else(|| Error::Conflict(format!("{} has no keys", spec.graph_id)))?;
    let columns = spec.columns.clone();
    // Checking needs only the public key's parameters, not the 60 MB server key.
    tokio::task::spawn_blocking(move || ravfed::he::check_submission(&public, &columns, &bytes))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::BadRequest(format!("submission: {e}")))
}

#[cfg(not(feature = "he"))]
async fn check_ciphertext(_db: &Db, _spec: &FederatedSpec, ciphertext: &str) -> Result<()> {
    decode(ciphertext)?;
    Err(not_built())
}

/// Closes the owner's graph once `min_clients` reported, and hands out the aggregate.
async fn close(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<u64>,
) -> Result<Json<FederatedAggregate>> {
    let graph = owned_graph(&state.db, &caller, id).await?;
    Ok(Json(close_graph(&state, graph.id).await?))
}

/// Closes a graph (idempotent: a closed graph answers its stored aggregate).
async fn close_graph(state: &AppState, graph: GraphId) -> Result<FederatedAggregate> {
    let lock = state.federated.lock_of(graph);
    let _turn = lock.lock().await;
    if let Some(stored) = state.db.federated_aggregate(graph).await? {
        return serde_json::from_str(&stored).map_err(|e| Error::Internal(e.to_string()));
    }
    let stored = state.db.graph(graph).await?.ok_or_else(|| Error::NotFound(format!("no graph {graph}")))?;
    let spec = spec_of(&state.db, &stored).await?;
    if spec.status != GraphStatus::Computing {
        return Err(Error::Conflict(format!("{graph} is {:?}, not open", spec.status).to_lowercase()));
    }
    if spec.contributors < spec.rules.min_clients {
        return Err(Error::Conflict(format!(
            "{graph} has {} of the {} providers it needs; the aggregate is not available yet",
            spec.contributors, spec.rules.min_clients
        )));
    }
    let submissions = state.db.federated_submissions(graph).await?;
    let started = std::time::Instant::now();
    let payload = match spec.rules.privacy {
        Privacy::Plain => {
            let mut total = Vec::new();
            for submission in &submissions {
                let FederatedPayload::Plain(sums) =
                    serde_json::from_str(submission).map_err(|e| Error::Internal(e.to_string()))?
                else {
                    return Err(Error::Internal(format!("{graph}: an encrypted submission in a plain query")));
                };
                ravfed::stats::add_plain(&mut total, &spec.columns, &sums)
                    .map_err(|e| Error::Conflict(e.to_string()))?;
            }
            FederatedPayload::Plain(total)
        }
        Privacy::Encrypted => aggregate_encrypted(&state.db, &spec, submissions).await?,
    };
    let aggregate =
        FederatedAggregate { graph_id: graph, contributors: spec.contributors, columns: spec.columns, payload };
    let text = serde_json::to_string(&aggregate).map_err(|e| Error::Internal(e.to_string()))?;
    state.db.close_federated(graph, &text).await?;
    // Closed for good (the stored status refuses later submissions): the lock can go.
    state.federated.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&graph);
    tracing::info!(%graph, contributors = aggregate.contributors, elapsed_ms = started.elapsed().as_millis() as u64, "federated graph closed");
    state.federated.changed(graph);
    Ok(aggregate)
}

#[cfg(feature = "he")]
async fn aggregate_encrypted(db: &Db, spec: &FederatedSpec, submissions: Vec<String>) -> Result<FederatedPayload> {
    let keys = db
        .federated_evaluation_keys(spec.graph_id)
        .await?
        .ok_or_else(|| Error::Conflict(format!("{} has no keys", spec.graph_id)))?;
    let mut ciphertexts = Vec::with_capacity(submissions.len());
    for submission in &submissions {
        match serde_json::from_str(submission).map_err(|e| Error::Internal(e.to_string()))? {
            FederatedPayload::Encrypted(text) => ciphertexts.push(decode(&text)?),
            FederatedPayload::Plain(_) => {
                return Err(Error::Internal(format!("{}: a plain submission in an encrypted query", spec.graph_id)));
            }
        }
    }
    let columns = spec.columns.clone();
    let sum = tokio::task::spawn_blocking(move || {
        let mut aggregator = ravfed::he::Aggregator::new(&keys, &columns)?;
        for ciphertext in &ciphertexts {
            aggregator.add(ciphertext)?;
        }
        aggregator.finish()
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| Error::Internal(format!("adding the encrypted submissions: {e}")))?;
    Ok(FederatedPayload::Encrypted(base64::engine::general_purpose::STANDARD.encode(sum)))
}

#[cfg(not(feature = "he"))]
async fn aggregate_encrypted(_db: &Db, _spec: &FederatedSpec, _submissions: Vec<String>) -> Result<FederatedPayload> {
    Err(not_built())
}

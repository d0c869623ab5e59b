//! Graphs for their requesters: creating one, uploading its ops in chunks (the requester's
//! ids mapped to server ids), executing, cancelling, and a whole small graph run in one
//! request.
//!
//! Port of the original's requester endpoints (§3.3), reshaped: the server allocates graph ids,
//! ops go up in chunks with client-side ids mapped to server ids, and a requester sees only its
//! own graphs ([`super::access`]).

use super::access::{self, owned_graph, requester};
use super::federated::{self, Federated};
use super::ledger::Accounting;
use super::uploads::Uploads;
use crate::auth::Role;
use crate::bulk::{Bulk, requester_user};
use crate::db::ledger::escrow_key;
use crate::db::{Account, Db, StoredGraph, StoredOp, StoredValue};
use crate::dispatch::{Command, SchedulerHandle};
use crate::error::{Error, Result};
use crate::validate;
use ravproto::ledger::op_price;
use ravproto::messages::{
    Approach, CreateGraphResponse, FtpCredentials, GraphMeta, GraphProgress, OpChunkRequest, OpChunkResponse, OpRecord,
    OpRef, OpenGraph, RunGraphRequest, RunGraphResponse,
};
use ravproto::status::{GraphStatus, OpStatus};
use ravproto::{GraphId, OpId, Operation, Value, routes};
use std::collections::BTreeMap;

/// The requester's side of graphs: what the HTTP handlers call.
#[derive(Clone)]
pub struct Graphs {
    pub(super) db: Db,
    pub(super) scheduler: SchedulerHandle,
    pub(super) bulk: Bulk,
    uploads: Uploads,
    federated: Federated,
    /// The most memory one op may need where its upload decides it ([`validate::op_sizes`]).
    max_op_bytes: u64,
    /// Whether executing a graph moves its cost to escrow (`--accounting`).
    accounting: Accounting,
}

impl Graphs {
    /// Graphs on `db`, run by `scheduler`, with bulk values in `bulk`; federated ones open
    /// through `federated`.
    pub fn new(db: Db, scheduler: SchedulerHandle, bulk: Bulk, federated: Federated) -> Graphs {
        Graphs {
            db,
            scheduler,
            bulk,
            uploads: Uploads::default(),
            federated,
            max_op_bytes: validate::DEFAULT_MAX_OP_BYTES,
            accounting: Accounting::Off,
        }
    }

    /// Whether executing a graph moves its cost to escrow, from which each subgraph pays its
    /// provider (`--accounting`).
    pub fn set_accounting(&mut self, accounting: Accounting) {
        self.accounting = accounting;
    }

    /// Sets the most memory one op may need where its upload decides it (`--max-op-bytes`).
    pub fn set_max_op_bytes(&mut self, max: u64) {
        self.max_op_bytes = max;
    }

    /// The longest inline value accepted in an upload: the server's inline limit, and never
    /// below what every client may send inline.
    fn inline_limit(&self) -> u64 {
        self.bulk.inline_limit().max(ravproto::messages::ALWAYS_INLINE_BYTES)
    }

    /// Creates a graph for the caller.
    pub async fn create(&self, caller: &Account, meta: &GraphMeta) -> Result<CreateGraphResponse> {
        requester(caller)?;
        validate::meta(meta)?;
        federated::check_meta(meta)?;
        let graph_id = self.db.create_graph(caller.id, meta).await?;
        // A new graph has no ops: its first chunk needs no id map read from the database.
        *self
            .uploads
            .slot(graph_id)
            .try_lock()
            .map_err(|_| Error::Internal("a new graph's upload slot is busy".into()))? = Some(BTreeMap::new());
        tracing::info!(%graph_id, owner = %caller.name, "graph created");
        Ok(CreateGraphResponse { graph_id })
    }

    /// The caller's graphs, newest first.
    pub async fn list(&self, caller: &Account) -> Result<Vec<GraphProgress>> {
        requester(caller)?;
        let mut out = Vec::new();
        for graph in self.db.graphs_of(caller.id).await? {
            out.push(self.db.progress(&graph).await?);
        }
        Ok(out)
    }

    /// Stores a chunk of ops of the caller's pending graph, and with `execute` starts it.
    pub async fn upload(
        &self,
        caller: &Account,
        id: u64,
        chunk: OpChunkRequest,
        execute: bool,
    ) -> Result<OpChunkResponse> {
        let graph = owned_graph(&self.db, caller, id).await?;
        if graph.status != GraphStatus::Pending
            && execute
            && let Ok(Some(id_map)) = self.replayed(graph.id, &chunk.ops, &self.db.id_map(graph.id).await?).await
        {
            // The repeat of the chunk that executed it, whose answer was lost: the same answer.
            return Ok(OpChunkResponse { id_map });
        }
        let graph = pending(graph)?;
        let slot = self.uploads.slot(graph.id);
        let mut cached = slot.lock().await;
        // Checked again under the lock: an execute may have won the race for it.
        pending(owned_graph(&self.db, caller, id).await?)?;
        let known = match cached.as_mut() {
            Some(known) => known,
            None => cached.insert(self.db.id_map(graph.id).await?),
        };
        if let Some(id_map) = self.replayed(graph.id, &chunk.ops, known).await? {
            // Stored before, its answer lost (a dropped connection, a restart): the same
            // answer, and the execute it asked for if it did not happen.
            if execute {
                drop(cached);
                self.start(caller, &graph).await?;
            }
            return Ok(OpChunkResponse { id_map });
        }
        validate::chunk(&chunk.ops, known)?;
        validate::inline_values(&chunk.ops, self.inline_limit())?;
        validate::op_sizes(&chunk.ops, self.max_op_bytes)?;
        federated::check_ops(&graph.meta, &chunk.ops)?;
        let user = requester_user(caller.id);
        let adopt = |op, record: &OpRecord| self.adopt_value_file(&user, op, record);
        // A federated graph opens to providers instead (`start`), outside this transaction; with
        // accounting on, a graph's cost goes to escrow before it computes (`start` too).
        let then_compute = execute && graph.meta.approach != Approach::Federated && self.accounting == Accounting::Off;
        // Whether this chunk is the whole graph: then the scheduler gets its ops from here
        // instead of reading them back.
        let whole_graph = known.is_empty();
        let stored = match self.db.insert_ops(graph.id, &chunk.ops, known, adopt, then_compute).await {
            Ok(stored) => stored,
            Err(error) => {
                // The transaction rolled back; the cache may hold ids it never committed.
                *cached = None;
                return Err(error);
            }
        };
        let id_map = stored.iter().map(|op| (op.local_id, op.id)).collect();
        let mut meta = graph.meta.clone();
        if runs_models(&chunk.ops) && !meta.requirements.onnx_required {
            meta.requirements.onnx_required = true;
            self.db.set_graph_meta(graph.id, &meta).await?;
        }
        if then_compute {
            self.uploads.forget(graph.id);
            let command = match whole_graph {
                true => Command::ExecuteStored {
                    graph: graph.id,
                    requirements: meta.requirements,
                    values: stored_values(&stored, chunk.ops),
                    ops: stored,
                    done: None,
                    payer: None,
                },
                false => Command::Execute(graph.id),
            };
            self.scheduler.send(command).await?;
        } else if execute {
            self.start(caller, &graph).await?;
        }
        Ok(OpChunkResponse { id_map })
    }

    /// The id map of a chunk that was stored before, so that a client may send a chunk again
    /// when it got no answer: every op's local id is stored, with the same operator, inputs
    /// and persist name (values are not compared). `None` for a chunk not stored yet (and for
    /// an empty one, which only executes). A chunk that is not the one stored under those ids
    /// is refused naming the first op that differs.
    async fn replayed(
        &self,
        graph: GraphId,
        records: &[OpRecord],
        known: &BTreeMap<u64, OpId>,
    ) -> Result<Option<BTreeMap<u64, OpId>>> {
        let id_map: BTreeMap<u64, OpId> =
            records.iter().filter_map(|r| Some((r.local_id, *known.get(&r.local_id)?))).collect();
        if id_map.is_empty() {
            return Ok(None);
        }
        // Rare (a lost answer): the graph's stored ops are read to compare.
        let stored: BTreeMap<OpId, StoredOp> = self.db.ops(graph).await?.into_iter().map(|op| (op.id, op)).collect();
        let same = |record: &OpRecord| {
            let Some(op) = known.get(&record.local_id).and_then(|id| stored.get(id)) else { return false };
            let inputs: Option<Vec<OpId>> = record
                .inputs
                .iter()
                .map(|input| match input {
                    OpRef::Local(local) => known.get(local).copied(),
                    OpRef::Server(id) => Some(*id),
                })
                .collect();
            op.operation.kind() == record.operation.kind()
                && inputs.as_ref() == Some(&op.inputs)
                && op.persist == record.persist
        };
        match records.iter().find(|record| !same(record)) {
            None => Ok(Some(id_map)),
            Some(record) => Err(Error::InvalidOp {
                op: OpRef::Local(record.local_id),
                reason: "this local id was already uploaded (a chunk sent again must be the same chunk)".into(),
            }),
        }
    }

    /// A whole graph in one request: created, stored and started in one transaction, then
    /// answered when it ends (or when `wait_ms` runs out) with its persisted results if asked.
    pub async fn run(&self, caller: &Account, request: RunGraphRequest) -> Result<RunGraphResponse> {
        requester(caller)?;
        let RunGraphRequest { mut meta, ops, wait_ms, with_results } = request;
        validate::meta(&meta)?;
        federated::check_meta(&meta)?;
        if meta.approach == Approach::Federated {
            return Err(Error::BadRequest(format!(
                "a federated graph opens to providers: create it (POST {}), upload its ops and execute it",
                routes::GRAPHS
            )));
        }
        validate::chunk(&ops, &BTreeMap::new())?;
        validate::inline_values(&ops, self.inline_limit())?;
        validate::op_sizes(&ops, self.max_op_bytes)?;
        meta.requirements.onnx_required |= runs_models(&ops);
        verifiable(&meta.requirements, ops.iter().any(|op| op.operation.kind().trains()))?;
        let user = requester_user(caller.id);
        // With accounting on, the cost is checked before the graph is made, and escrowed once it
        // has an id (a balance spent meanwhile fails the graph, with the reason).
        let price: u64 = ops
            .iter()
            .filter(|op| op.value.is_none() && op.value_file.is_none())
            .map(|op| op_price(op.operation.kind()))
            .sum();
        let cost = escrow_for(price, &meta.requirements)?;
        let accounting = self.accounting == Accounting::On && cost > 0;
        if accounting {
            let available = self.db.balance(caller.id, &caller.name).await?.available;
            if available < cost {
                return Err(Error::InsufficientFunds(format!(
                    "computing this graph costs {cost} units, and `{}` has {available} available",
                    caller.name
                )));
            }
        }
        let adopt = |op, record: &OpRecord| self.adopt_value_file(&user, op, record);
        let (graph, stored) = self.db.create_computing_graph(caller.id, &meta, &ops, adopt).await?;
        tracing::info!(%graph, owner = %caller.name, ops = ops.len(), "graph created to run");
        if accounting && let Err(error) = self.db.escrow_graph(graph, caller.id, &caller.name, cost).await {
            self.db.set_graph_status(graph, GraphStatus::Failed, Some(&error.to_string())).await?;
            return Err(error);
        }
        let persisted: Vec<(String, OpId)> =
            stored.iter().filter_map(|op| Some((op.persist.clone()?, op.id))).collect();
        let requirements = meta.requirements.clone();
        let values = stored_values(&stored, ops);
        let (done, computed) = tokio::sync::oneshot::channel();
        let payer = accounting.then_some(caller.id);
        let command = Command::ExecuteStored { graph, requirements, ops: stored, values, done: Some(done), payer };
        self.scheduler.send(command).await?;
        let deadline = tokio::time::Instant::now() + super::wait_limit(Some(wait_ms));
        // Unanswered (failed, cancelled, still computing): the database says where it stands.
        let computed = tokio::time::timeout_at(deadline, computed).await.ok().and_then(Result::ok);
        let progress = match &computed {
            Some(computed) => computed.progress.clone(),
            None => self.db.progress(&owned_graph(&self.db, caller, graph.0).await?).await?,
        };
        let (mut results, mut large_results) = (BTreeMap::new(), Vec::new());
        // Every persisted value still in the scheduler's memory: no read back.
        let in_memory = computed.filter(|_| with_results).and_then(|mut computed| {
            persisted.into_iter().map(|(name, op)| Some((name, computed.values.remove(&op)?))).collect::<Option<_>>()
        });
        if let Some(in_memory) = in_memory {
            results = in_memory;
        } else if with_results && progress.status == GraphStatus::Computed {
            for (name, _, value) in self.db.persisted_values(graph).await? {
                match value {
                    Some(StoredValue::Inline(value)) => {
                        results.insert(name, value);
                    }
                    Some(StoredValue::File { .. }) => large_results.push(name),
                    None => return Err(Error::Internal(format!("`{name}` of computed {graph} has no value"))),
                }
            }
        }
        Ok(RunGraphResponse { progress, results, large_results })
    }

    /// Starts the caller's pending graph.
    pub async fn execute(&self, caller: &Account, id: u64) -> Result<GraphProgress> {
        let executed = |graph: StoredGraph| match graph.status {
            GraphStatus::Pending => Ok(graph),
            _ => Err(Error::Conflict(format!("{} was already executed", graph.id))),
        };
        let graph = executed(owned_graph(&self.db, caller, id).await?)?;
        // Holding the upload lock: no chunk is half-stored while the graph starts.
        let slot = self.uploads.slot(graph.id);
        let _uploads = slot.lock().await;
        executed(owned_graph(&self.db, caller, id).await?)?;
        self.start(caller, &graph).await?;
        let graph = owned_graph(&self.db, caller, id).await?;
        self.db.progress(&graph).await
    }

    /// Starts a pending graph; the caller holds its upload lock and checked its status. A
    /// federated graph opens to providers instead of going to the scheduler.
    async fn start(&self, caller: &Account, graph: &StoredGraph) -> Result<()> {
        self.uploads.forget(graph.id);
        if graph.meta.approach == Approach::Federated {
            return self.federated.open(graph).await;
        }
        let verified = !graph.meta.requirements.verify.is_none();
        // The ops are read once, when verification or the escrow needs them.
        let ops = match verified || self.accounting == Accounting::On {
            true => self.db.ops(graph.id).await?,
            false => Vec::new(),
        };
        verifiable(&graph.meta.requirements, ops.iter().any(|op| op.operation.kind().trains()))?;
        if self.accounting == Accounting::On {
            let price = ops.iter().filter(|op| op.status != OpStatus::Computed).map(|op| op_price(op.operation.kind()));
            let cost = escrow_for(price.sum(), &graph.meta.requirements)?;
            // The owner pays, also when an admin executes its graph.
            let owner = match caller.id == graph.owner {
                true => caller.name.clone(),
                false => format!("account {}", graph.owner),
            };
            self.db.escrow_graph(graph.id, graph.owner, &owner, cost).await?;
        }
        self.db.set_graph_status(graph.id, GraphStatus::Computing, None).await?;
        self.scheduler.send(Command::Execute(graph.id)).await
    }

    /// Cancels the caller's graph if it has not ended.
    pub async fn cancel(&self, caller: &Account, id: u64) -> Result<GraphProgress> {
        let graph = owned_graph(&self.db, caller, id).await?;
        if matches!(graph.status, GraphStatus::Pending | GraphStatus::Computing) {
            self.uploads.forget(graph.id);
            self.db.set_graph_status(graph.id, GraphStatus::Cancelled, None).await?;
            self.scheduler.send(Command::Cancel(graph.id)).await?;
            // Answered once the scheduler has handled it: what is out is withdrawn, and a
            // paid graph's escrow and stakes are returned, before the requester reads on.
            self.scheduler.flush().await?;
        }
        let graph = owned_graph(&self.db, caller, id).await?;
        self.db.progress(&graph).await
    }

    /// Graphs that providers may join now: names, requirements and progress, never ops or
    /// values; a requester sees only its own ([`access::lists_open`](super::access::lists_open)).
    pub async fn open_graphs(&self, caller: &Account, approach: Option<Approach>) -> Result<Vec<OpenGraph>> {
        let mut out = Vec::new();
        for graph in self.db.graphs_with_status(GraphStatus::Computing).await? {
            if approach.is_some_and(|approach| approach != graph.meta.approach) || !access::lists_open(caller, &graph) {
                continue;
            }
            let progress = self.db.progress(&graph).await?;
            out.push(OpenGraph {
                graph_id: graph.id,
                name: graph.meta.name.clone(),
                approach: graph.meta.approach,
                requirements: graph.meta.requirements.clone(),
                rules: graph.meta.rules.clone(),
                ops: progress.ops.values().sum(),
                percent: progress.percent,
                pays: self.db.entry_with_key(&escrow_key(graph.id)).await?.map(|escrow| escrow.amount),
            });
        }
        Ok(out)
    }

    /// New ravftp credentials for a requester (the previous password stops working).
    pub fn ftp_credentials(&self, caller: &Account) -> Result<FtpCredentials> {
        if caller.role == Role::Provider {
            return Err(Error::Forbidden("providers get their ftp credentials when they connect".into()));
        }
        self.bulk.issue(&requester_user(caller.id))
    }
}

/// `graph` if ops may still be added to it.
fn pending(graph: StoredGraph) -> Result<StoredGraph> {
    match graph.status {
        GraphStatus::Pending => Ok(graph),
        _ => Err(Error::Conflict(format!("{} is already executing; ops can only be added before execute", graph.id))),
    }
}

/// Whether these ops run whole models, which only providers built with the `onnx` feature do;
/// kept in the graph's requirements so that `list-graphs` shows it too.
fn runs_models(ops: &[OpRecord]) -> bool {
    ops.iter().any(|op| op.operation.kind() == ravproto::OpKind::ForwardPass)
}

/// The inline values of `records`, by the server ids they were `stored` under (in the same
/// order).
fn stored_values(stored: &[StoredOp], records: Vec<OpRecord>) -> Vec<(OpId, Value)> {
    stored.iter().zip(records).filter_map(|(op, record)| Some((op.id, record.value?))).collect()
}

impl Graphs {
    /// Moves the ravftp file holding the value of `record` (a `lin` op) from `user`'s home into
    /// the blob store as the value of `op`, after checking it holds the declared tensor; its length.
    fn adopt_value_file(&self, user: &str, op: OpId, record: &OpRecord) -> Result<u64> {
        let bulk = &self.bulk;
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
        self.scheduler.metrics().ftp("from_requesters", check.len);
        Ok(check.len)
    }
}

/// What a graph of this price escrows: the price times the most answers per subgraph its
/// verification pays ([`ravproto::verify::Verify::cost_factor`]).
fn escrow_for(price: u64, requirements: &ravproto::messages::Requirements) -> Result<u64> {
    let factor = requirements.verify.cost_factor();
    price.checked_mul(factor).filter(|cost| *cost <= ravproto::ledger::MAX_AMOUNT).ok_or_else(|| {
        Error::BadRequest(format!("this graph costs {price} units, {factor} times over: more than can be escrowed"))
    })
}

/// Refuses to verify a graph that trains: its state lives in one provider between subgraphs,
/// so no second provider can compute the same step.
fn verifiable(requirements: &ravproto::messages::Requirements, trains: bool) -> Result<()> {
    match trains && !requirements.verify.is_none() {
        true => Err(Error::BadRequest(
            "a graph that trains cannot be verified by replicas: its state lives in one provider; use verify none"
                .into(),
        )),
        false => Ok(()),
    }
}

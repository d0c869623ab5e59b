//! Federated queries: rules and keys from the requester, one submission per provider, and the
//! aggregate handed to the requester once enough providers reported.
//!
//! A federated graph never reaches the scheduler: it has no subgraphs, providers compute over
//! their own CSV files (`ravpy federated`) and post their sums here. In encrypted mode the
//! sums are tfhe ciphertexts under the requester's public key; ravsock adds them with the
//! requester's evaluation key and never holds a key that decrypts (threat model: the `ravfed`
//! crate docs; the tfhe calls are in [`encrypted`]). Nothing of a submission is logged.
//!
//! Closing a query (the requester's `close`, or the `max_clients`-th submission) computes the
//! aggregate and stores it with the graph's `computed` status in one transaction; a per-graph
//! lock keeps submissions out while it runs, so every counted contributor is in the sum.

mod encrypted;

use super::access::{owned_graph, visible_federated};
use crate::auth::Role;
use crate::db::{Account, Db, StoredGraph};
use crate::error::{Error, Result};
use ravproto::federated::{FederatedAggregate, FederatedPayload, FederatedSpec, Privacy};
use ravproto::messages::{Approach, GraphMeta, OpRecord, OpRef};
use ravproto::status::GraphStatus;
use ravproto::{GraphId, routes};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use encrypted::ENCRYPTION_BUILT;

/// Federated queries: what the HTTP handlers call.
#[derive(Clone, Debug)]
pub struct Federated {
    db: Db,
    /// Graphs whose contributors or status changed (long polls listen).
    changes: tokio::sync::broadcast::Sender<GraphId>,
    /// One lock per graph: submissions and closing take turns.
    locks: Arc<Mutex<HashMap<GraphId, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Checks the rules of a graph being created.
pub fn check_meta(meta: &GraphMeta) -> Result<()> {
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
pub fn check_ops(meta: &GraphMeta, records: &[OpRecord]) -> Result<()> {
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

impl Federated {
    /// Federated queries stored in `db`.
    pub fn new(db: Db) -> Federated {
        Federated { db, changes: tokio::sync::broadcast::channel(256).0, locks: Arc::default() }
    }

    fn lock_of(&self, graph: GraphId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(graph).or_default().clone()
    }

    fn changed(&self, graph: GraphId) {
        let _ = self.changes.send(graph);
    }

    /// Opens a pending federated graph to providers (its `execute`); the caller holds the
    /// graph's upload lock and checked that it is pending.
    pub(crate) async fn open(&self, graph: &StoredGraph) -> Result<()> {
        let spec = spec_of(&self.db, graph).await?;
        if spec.columns.is_empty() {
            return Err(Error::Conflict(format!("{} has no federated op to compute", graph.id)));
        }
        if spec.rules.privacy == Privacy::Encrypted && self.db.federated_public_key(graph.id).await?.is_none() {
            return Err(Error::Conflict(format!(
                "{} is encrypted: upload the evaluation keys (PUT {}) before execute",
                graph.id,
                routes::federated_keys(graph.id)
            )));
        }
        self.db.set_graph_status(graph.id, GraphStatus::Computing, None).await?;
        tracing::info!(graph = %graph.id, privacy = ?spec.rules.privacy, "federated graph open to providers");
        self.changed(graph.id);
        Ok(())
    }

    /// The graph's spec, for its owner or (while it is open) any provider.
    pub async fn spec(&self, caller: &Account, id: u64) -> Result<FederatedSpec> {
        let graph = visible_federated(&self.db, caller, id).await?;
        spec_of(&self.db, &graph).await
    }

    /// Long poll for the owner: answers once more than `contributors_above` providers reported
    /// or the graph is no longer open, or after `timeout_ms` (at most [`super::MAX_WAIT_MS`]).
    pub async fn wait(
        &self,
        caller: &Account,
        id: u64,
        contributors_above: u32,
        timeout_ms: Option<u64>,
    ) -> Result<FederatedSpec> {
        // Subscribed before reading, so a change in between is not missed.
        let mut changes = self.changes.subscribe();
        let spec = self.owned_spec(caller, id).await?;
        let settled = |spec: &FederatedSpec| {
            spec.contributors > contributors_above
                || !matches!(spec.status, GraphStatus::Computing | GraphStatus::Pending)
        };
        if settled(&spec) {
            return Ok(spec);
        }
        let _ = tokio::time::timeout(super::wait_limit(timeout_ms), async {
            loop {
                match changes.recv().await {
                    Ok(changed) if changed.0 != id => continue,
                    // A change of this graph, or missed changes: read again.
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if settled(&self.owned_spec(caller, id).await?) {
                            return Ok::<(), Error>(());
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        })
        .await;
        self.owned_spec(caller, id).await
    }

    /// The spec of the caller's own graph.
    async fn owned_spec(&self, caller: &Account, id: u64) -> Result<FederatedSpec> {
        spec_of(&self.db, &owned_graph(&self.db, caller, id).await?).await
    }

    /// Whether the caller may upload evaluation keys to graph `id` (its owner, an encrypted
    /// query, before execute): checked before the body is read.
    pub async fn keys_accepted(&self, caller: &Account, id: u64) -> Result<(StoredGraph, FederatedSpec)> {
        let graph = owned_graph(&self.db, caller, id).await?;
        let spec = spec_of(&self.db, &graph).await?;
        if spec.rules.privacy != Privacy::Encrypted {
            return Err(Error::Conflict(format!("{} is a plain query; it takes no keys", graph.id)));
        }
        if graph.status != GraphStatus::Pending {
            return Err(Error::Conflict(format!("{} is already open; keys are set before execute", graph.id)));
        }
        Ok((graph, spec))
    }

    /// Stores the evaluation keys of a graph [`Federated::keys_accepted`] checked.
    pub async fn store_keys(
        &self,
        graph: StoredGraph,
        spec: FederatedSpec,
        keys: bytes::Bytes,
    ) -> Result<FederatedSpec> {
        let public = encrypted::public_key_of(keys.clone()).await?;
        self.db.set_federated_keys(graph.id, &public, &keys).await?;
        tracing::info!(graph = %graph.id, bytes = keys.len(), "federated evaluation keys stored");
        Ok(spec)
    }

    /// The requester's compact public key, for providers to encrypt with.
    pub async fn public_key(&self, caller: &Account, id: u64) -> Result<Vec<u8>> {
        let graph = visible_federated(&self.db, caller, id).await?;
        self.db
            .federated_public_key(graph.id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{} has no public key (it is not an encrypted query)", graph.id)))
    }

    /// A provider's statistics.
    pub async fn submit(&self, caller: &Account, id: u64, payload: FederatedPayload) -> Result<FederatedSpec> {
        if caller.role != Role::Provider {
            return Err(Error::Forbidden("only provider tokens submit federated statistics".into()));
        }
        let graph = visible_federated(&self.db, caller, id).await?;
        let spec = spec_of(&self.db, &graph).await?;
        match (&payload, spec.rules.privacy) {
            (FederatedPayload::Plain(sums), Privacy::Plain) => {
                ravfed::stats::check_plain(&spec.columns, &spec.rules, sums)
                    .map_err(|e| Error::BadRequest(e.to_string()))?;
            }
            (FederatedPayload::Encrypted(ciphertext), Privacy::Encrypted) => {
                encrypted::check_ciphertext(&self.db, &spec, ciphertext).await?;
            }
            (_, privacy) => {
                return Err(Error::BadRequest(format!("{} takes {privacy:?} submissions", graph.id).to_lowercase()));
            }
        }
        let text = serde_json::to_string(&payload).map_err(|e| Error::Internal(e.to_string()))?;
        let lock = self.lock_of(graph.id);
        let max_clients = spec.rules.effective_max_clients();
        let contributors = {
            let _turn = lock.lock().await;
            self.db.add_federated_submission(graph.id, caller.id, &text, max_clients).await?
        };
        tracing::info!(graph = %graph.id, provider = %caller.name, contributors, "federated submission stored");
        self.changed(graph.id);
        if contributors >= max_clients {
            // The last provider allowed: close now, in the background (the provider is done).
            let federated = self.clone();
            let graph = graph.id;
            tokio::spawn(async move {
                if let Err(error) = federated.close_graph(graph).await {
                    tracing::error!(%graph, cause = %error, "cannot close a full federated graph");
                }
            });
        }
        Ok(FederatedSpec { contributors, ..spec })
    }

    /// Closes the owner's graph once `min_clients` reported, and hands out the aggregate.
    pub async fn close(&self, caller: &Account, id: u64) -> Result<FederatedAggregate> {
        let graph = owned_graph(&self.db, caller, id).await?;
        self.close_graph(graph.id).await
    }

    /// Closes a graph (idempotent: a closed graph answers its stored aggregate).
    async fn close_graph(&self, graph: GraphId) -> Result<FederatedAggregate> {
        let lock = self.lock_of(graph);
        let _turn = lock.lock().await;
        if let Some(stored) = self.db.federated_aggregate(graph).await? {
            return serde_json::from_str(&stored).map_err(|e| Error::Internal(e.to_string()));
        }
        let stored = self.db.graph(graph).await?.ok_or_else(|| Error::NotFound(format!("no graph {graph}")))?;
        let spec = spec_of(&self.db, &stored).await?;
        if spec.status != GraphStatus::Computing {
            return Err(Error::Conflict(format!("{graph} is {:?}, not open", spec.status).to_lowercase()));
        }
        if spec.contributors < spec.rules.min_clients {
            return Err(Error::Conflict(format!(
                "{graph} has {} of the {} providers it needs; the aggregate is not available yet",
                spec.contributors, spec.rules.min_clients
            )));
        }
        let submissions = self.db.federated_submissions(graph).await?;
        let started = std::time::Instant::now();
        let payload = match spec.rules.privacy {
            Privacy::Plain => FederatedPayload::Plain(add_plain(graph, &spec, &submissions)?),
            Privacy::Encrypted => encrypted::aggregate(&self.db, &spec, submissions).await?,
        };
        let aggregate =
            FederatedAggregate { graph_id: graph, contributors: spec.contributors, columns: spec.columns, payload };
        let text = serde_json::to_string(&aggregate).map_err(|e| Error::Internal(e.to_string()))?;
        self.db.close_federated(graph, &text).await?;
        // Closed for good (the stored status refuses later submissions): the lock can go.
        self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&graph);
        tracing::info!(%graph, contributors = aggregate.contributors, elapsed_ms = started.elapsed().as_millis() as u64, "federated graph closed");
        self.changed(graph);
        Ok(aggregate)
    }
}

/// The sum of plain submissions.
fn add_plain(
    graph: GraphId,
    spec: &FederatedSpec,
    submissions: &[String],
) -> Result<Vec<ravproto::federated::ColumnSums>> {
    let mut total = Vec::new();
    for submission in submissions {
        let FederatedPayload::Plain(sums) =
            serde_json::from_str(submission).map_err(|e| Error::Internal(e.to_string()))?
        else {
            return Err(Error::Internal(format!("{graph}: an encrypted submission in a plain query")));
        };
        ravfed::stats::add_plain(&mut total, &spec.columns, &sums).map_err(|e| Error::Conflict(e.to_string()))?;
    }
    Ok(total)
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

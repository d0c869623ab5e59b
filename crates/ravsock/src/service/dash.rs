//! The operators' dashboard: what its pages show, for whom. An admin sees every graph and
//! provider; a requester its own graphs only (another owner's graph answers like a missing
//! one, as in the API); a provider token is refused. Each view is read when asked: graphs and
//! ops from the database, the queue and the providers from the scheduler task, and who took
//! or computed an op from what this process saw ([`OpRecords`], fed by the dispatch task's
//! op events).

use super::access;
use super::sessions::Sessions;
use crate::auth::Role;
use crate::db::dash::{EVERY_OWNER, ListedGraph};
use crate::db::{Account, Db, StoredValue};
use crate::dispatch::{OpsEvent, SchedulerHandle};
use crate::error::{Error, Result};
use ravproto::dash::{GraphPage, GraphRow, GraphView, MAX_PER_PAGE, OpNode, OpView, Overview, ProviderRow};
use ravproto::messages::{GraphProgress, OpFailure};
use ravproto::status::OpStatus;
use ravproto::{GraphId, OpId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Ops whose provider and times are remembered at most (the oldest are forgotten first).
const MAX_RECORDS: usize = 200_000;
/// Characters of a value's preview at most.
const PREVIEW_CHARS: usize = 600;
/// Graph owners remembered for the live feed.
const MAX_OWNERS: usize = 10_000;

/// Who took and computed an op, and when, as this process saw it.
#[derive(Clone, Copy, Debug, Default)]
struct OpRecord {
    account: Option<i64>,
    assigned_at_ms: Option<i64>,
    computed_at_ms: Option<i64>,
}

/// The op records, bounded.
#[derive(Default)]
struct OpRecords {
    records: HashMap<OpId, OpRecord>,
    order: VecDeque<OpId>,
}

/// The dashboard's service; cloning shares it.
#[derive(Clone)]
pub struct Dash {
    db: Db,
    scheduler: SchedulerHandle,
    /// The browsers' sessions.
    pub sessions: Sessions,
    records: Arc<Mutex<OpRecords>>,
    names: Arc<Mutex<HashMap<i64, String>>>,
    /// Graphs' owners (an owner never changes): a graph's progress events do not read the
    /// database each time. Bounded by [`MAX_OWNERS`], emptied when full.
    owners: Arc<Mutex<HashMap<GraphId, i64>>>,
    /// Whether the server speaks HTTPS: the session cookie is then `Secure`.
    pub secure: bool,
}

impl Dash {
    /// The dashboard over `db`, asking `scheduler` for the queue and the providers.
    pub fn new(db: Db, scheduler: SchedulerHandle) -> Dash {
        Dash {
            db,
            scheduler,
            sessions: Sessions::default(),
            records: Arc::default(),
            names: Arc::default(),
            owners: Arc::default(),
            secure: false,
        }
    }

    /// The scheduler the dashboard reads (its events feed the live pages).
    pub fn scheduler(&self) -> &SchedulerHandle {
        &self.scheduler
    }

    /// Who may look: an admin or a requester.
    pub fn check(caller: &Account) -> Result<()> {
        match caller.role {
            Role::Admin | Role::Requester => Ok(()),
            Role::Provider => Err(Error::Forbidden("the dashboard is for requesters and admins".into())),
        }
    }

    /// Logs in with `token`: a new session's id, or 401/403.
    pub async fn login(&self, token: &str) -> Result<String> {
        let caller = self.db.authenticate(token).await?;
        Self::check(&caller)?;
        self.sessions.start(token)
    }

    /// The account behind session `id`, checked again now (a revoked token has no session).
    pub async fn session_caller(&self, id: &str) -> Result<Account> {
        let token = self.sessions.token(id)?;
        match self.db.authenticate(&token).await {
            Ok(caller) => Ok(caller),
            Err(error) => {
                self.sessions.end(id);
                Err(error)
            }
        }
    }

    /// Counts, the queue and the providers' hour.
    pub async fn overview(&self, caller: &Account) -> Result<Overview> {
        Self::check(caller)?;
        let graphs = match caller.role {
            Role::Admin => self.db.graph_counts().await?.into_iter().collect(),
            _ => self.db.graph_counts_of(caller.id).await?,
        };
        let depth = self.scheduler.depth().await?;
        let metrics = self.scheduler.metrics();
        Ok(Overview {
            caller: caller.name.clone(),
            role: caller.role.name().to_string(),
            graphs,
            ready_subgraphs: depth.ready_subgraphs,
            assigned_subgraphs: depth.assigned_subgraphs,
            providers: metrics.providers_connected.get().max(0) as u64,
            ops_computed: metrics.ops_computed.get(),
            providers_history: metrics.providers_history(),
        })
    }

    /// Every provider connection (admins only).
    pub async fn providers(&self, caller: &Account) -> Result<Vec<ProviderRow>> {
        access::admin(caller)?;
        let mut rows = Vec::new();
        for view in self.scheduler.providers().await? {
            let account = self.name_of(view.account).await?;
            let available = self.db.balance(view.account, &account).await?.available;
            rows.push(ProviderRow {
                id: view.provider.0,
                account,
                benchmark: view.benchmark,
                graph: view.graph,
                joined_ms_ago: view.joined_ms_ago,
                in_flight: view.in_flight,
                done: view.done,
                failed: view.failed,
                available,
            });
        }
        Ok(rows)
    }

    /// A page of the graphs the caller may see, newest first, matching `search`.
    pub async fn graphs(&self, caller: &Account, search: &str, page: u64, per_page: u64) -> Result<GraphPage> {
        Self::check(caller)?;
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let owner = if caller.role == Role::Admin { EVERY_OWNER } else { caller.id };
        let search: String = search.chars().take(200).collect();
        let offset = page.saturating_mul(per_page);
        let (listed, total) = self.db.graph_page(owner, search.trim(), offset, per_page).await?;
        let mut rows = Vec::with_capacity(listed.len());
        for graph in listed {
            rows.push(self.row(graph).await?);
        }
        Ok(GraphPage { rows, total, page, per_page })
    }

    /// A graph the caller may see, with its ops: `computing` for those out now.
    pub async fn graph(&self, caller: &Account, id: u64) -> Result<GraphView> {
        Self::check(caller)?;
        let stored = access::owned_graph(&self.db, caller, id).await?;
        let graph = stored.id;
        let listed = self.listed(stored).await?;
        let out: HashMap<OpId, i64> = self.scheduler.ops_out(graph).await?.into_iter().collect();
        let ops = self.db.ops(graph).await?.into_iter().map(|op| node(&op, out.contains_key(&op.id))).collect();
        Ok(GraphView { graph: self.row(listed).await?, ops })
    }

    /// One op of a graph the caller may see.
    pub async fn op(&self, caller: &Account, id: u64, op: u64) -> Result<OpView> {
        Self::check(caller)?;
        let stored = access::owned_graph(&self.db, caller, id).await?;
        let ops = self.db.ops(stored.id).await?;
        let Some(found) = ops.iter().find(|o| o.id.0 == op) else {
            return Err(Error::NotFound(format!("no op {op} in graph {id}")));
        };
        let out = self.scheduler.ops_out(stored.id).await?;
        let holder = out.iter().find(|(held, _)| *held == found.id).map(|(_, account)| *account);
        let record = self.records().records.get(&found.id).copied().unwrap_or_default();
        let provider = match holder.or(record.account) {
            Some(account) => Some(self.name_of(account).await?),
            None => None,
        };
        let preview = match self.db.values(&[found.id]).await?.pop() {
            Some((_, StoredValue::Inline(value))) => Some(preview(&value)),
            Some((_, StoredValue::File { len })) => Some(format!("(kept as a file of {len} bytes)")),
            None => None,
        };
        Ok(OpView {
            node: node(found, holder.is_some()),
            operation: serde_json::to_value(&found.operation).map_err(|e| Error::Internal(e.to_string()))?,
            provider,
            assigned_at_ms: record.assigned_at_ms,
            computed_at_ms: record.computed_at_ms,
            preview,
        })
    }

    /// Remembers who took or computed the ops of `event`.
    pub fn record(&self, event: &OpsEvent) {
        let mut guard = self.records();
        let records = &mut *guard;
        for &op in &event.ops {
            let record = match records.records.entry(op) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    records.order.push_back(op);
                    entry.insert(OpRecord::default())
                }
            };
            record.account = event.account.or(record.account);
            if event.computed {
                record.computed_at_ms = Some(event.at_ms);
            } else {
                record.assigned_at_ms = Some(event.at_ms);
            }
        }
        while records.order.len() > MAX_RECORDS {
            let Some(oldest) = records.order.pop_front() else { break };
            records.records.remove(&oldest);
        }
    }

    /// The owner of `graph`, if it exists (whose dashboards hear of it).
    pub async fn owner_of(&self, graph: GraphId) -> Result<Option<i64>> {
        if let Some(&owner) = self.owners.lock().unwrap_or_else(|p| p.into_inner()).get(&graph) {
            return Ok(Some(owner));
        }
        let Some(owner) = self.db.graph(graph).await?.map(|g| g.owner) else { return Ok(None) };
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if owners.len() >= MAX_OWNERS {
            owners.clear();
        }
        owners.insert(graph, owner);
        Ok(Some(owner))
    }

    /// An account's name, from memory after the first read.
    pub async fn name_of(&self, account: i64) -> Result<String> {
        if let Some(name) = self.names.lock().unwrap_or_else(|p| p.into_inner()).get(&account) {
            return Ok(name.clone());
        }
        let name = self.db.account_name(account).await?.unwrap_or_else(|| format!("account {account}"));
        self.names.lock().unwrap_or_else(|p| p.into_inner()).insert(account, name.clone());
        Ok(name)
    }

    fn records(&self) -> std::sync::MutexGuard<'_, OpRecords> {
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A stored graph with what the table shows of it.
    async fn listed(&self, graph: crate::db::StoredGraph) -> Result<ListedGraph> {
        self.db.listed_graph(graph.id).await?.ok_or_else(|| Error::NotFound(format!("no graph {}", graph.id.0)))
    }

    async fn row(&self, listed: ListedGraph) -> Result<GraphRow> {
        let graph = listed.graph;
        let failure: Option<OpFailure> = graph.failure.as_deref().and_then(|f| serde_json::from_str(f).ok());
        let counts = self.db.op_counts(graph.id).await?;
        let progress = GraphProgress::from_counts(graph.id, graph.status, counts, failure);
        Ok(GraphRow {
            id: graph.id,
            owner: listed.owner_name,
            name: graph.meta.name.clone(),
            status: graph.status,
            ops: progress.ops,
            percent: progress.percent,
            created_at: listed.created_at,
            ended_at: listed.ended_at,
            requirements: graph.meta.requirements.needs().join(", "),
            failure: progress.failure,
        })
    }
}

/// An op as the DAG shows it: `computing` while it is out.
fn node(op: &crate::db::StoredOp, out: bool) -> OpNode {
    let mut inputs = op.inputs.clone();
    inputs.extend(op.operation.param_refs());
    let status = if out && op.status != OpStatus::Computed { OpStatus::Computing } else { op.status };
    OpNode {
        id: op.id,
        local_id: op.local_id,
        op: op.operation.kind().to_string(),
        inputs,
        status,
        persist: op.persist.clone(),
    }
}

/// The start of a value as JSON text.
fn preview(value: &ravproto::Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|e| format!("(cannot show: {e})"));
    if text.chars().count() <= PREVIEW_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(PREVIEW_CHARS).collect();
    short.push('…');
    short
}

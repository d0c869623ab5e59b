//! Who may see what: a requester sees only its own graphs (others answer 404, so ids leak
//! nothing), an admin every graph, and a provider only federated graphs that are open; only
//! an admin manages tokens.

use crate::auth::Role;
use crate::db::{Account, Db, StoredGraph};
use crate::error::{Error, Result};
use ravproto::GraphId;
use ravproto::messages::Approach;
use ravproto::status::GraphStatus;

/// Refuses provider tokens where graphs are submitted or read.
pub fn requester(caller: &Account) -> Result<()> {
    match caller.role {
        Role::Requester | Role::Admin => Ok(()),
        Role::Provider => Err(Error::Forbidden("provider tokens cannot submit or read graphs".into())),
    }
}

/// Refuses every token but an admin's (managing accounts and tokens, reading metrics).
pub fn admin(caller: &Account) -> Result<()> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::Requester | Role::Provider => {
            Err(Error::Forbidden("only an admin token may manage tokens or read metrics".into()))
        }
    }
}

/// Whether `caller` is shown `graph` among the open graphs: a provider every graph it may
/// join (any, until graphs name the providers they accept), an admin every graph, and a
/// requester only its own (another owner's names and requirements are not its business).
pub fn lists_open(caller: &Account, graph: &StoredGraph) -> bool {
    match caller.role {
        Role::Provider | Role::Admin => true,
        Role::Requester => graph.owner == caller.id,
    }
}

/// The caller's graph, or 404 for a missing graph and for anyone else's.
pub async fn owned_graph(db: &Db, caller: &Account, id: u64) -> Result<StoredGraph> {
    requester(caller)?;
    match db.graph(GraphId(id)).await? {
        Some(graph) if graph.owner == caller.id || caller.role == Role::Admin => Ok(graph),
        _ => Err(Error::NotFound(format!("no graph {id}"))),
    }
}

/// A federated graph for a caller who may see its spec: its owner, or any provider while it
/// is open.
pub async fn visible_federated(db: &Db, caller: &Account, id: u64) -> Result<StoredGraph> {
    if caller.role != Role::Provider {
        return owned_graph(db, caller, id).await;
    }
    match db.graph(GraphId(id)).await? {
        Some(graph) if graph.meta.approach == Approach::Federated && graph.status != GraphStatus::Pending => Ok(graph),
        _ => Err(Error::NotFound(format!("no open federated graph {id}"))),
    }
}

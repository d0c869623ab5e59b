//! Following a graph and fetching what it persisted: its progress now or at its next change
//! (the long poll), and each persisted value inline or, past the inline limit, through ravftp.

use super::access::owned_graph;
use super::graphs::Graphs;
use crate::bulk::requester_user;
use crate::db::{Account, Db, StoredGraph, StoredValue};
use crate::dispatch::GraphEvent;
use crate::error::{Error, Result};
use ravproto::messages::{GraphProgress, ResultFile};
use ravproto::status::GraphStatus;
use ravproto::{GraphId, OpId, Value, files, routes};

impl Graphs {
    /// The caller's graph's status and op counts.
    pub async fn progress(&self, caller: &Account, id: u64) -> Result<GraphProgress> {
        let graph = owned_graph(&self.db, caller, id).await?;
        let mut progress = self.db.progress(&graph).await?;
        // A failure the database could not be told of yet.
        self.scheduler.health().overlay(&mut progress);
        Ok(progress)
    }

    /// Long poll: the graph's progress as soon as it changes or finishes (at once if it has
    /// finished), or after `timeout_ms` (at most [`super::MAX_WAIT_MS`]).
    pub async fn wait(&self, caller: &Account, id: u64, timeout_ms: Option<u64>) -> Result<GraphProgress> {
        // Subscribe before reading the status, so a change between the two is not missed.
        let mut events = self.scheduler.subscribe();
        let graph = owned_graph(&self.db, caller, id).await?;
        if matches!(graph.status, GraphStatus::Computing) && !self.scheduler.health().failed(graph.id) {
            // The scheduler's own counts: no COUNT over the graph's ops per wake-up. Missed
            // events answer from the database and let the client ask again.
            let deadline = tokio::time::Instant::now() + super::wait_limit(timeout_ms);
            if let Some(progress) = next_change(&mut events, graph.id, deadline).await {
                return Ok(progress);
            }
        }
        self.progress(caller, id).await
    }

    /// The persisted value `name` of the caller's graph, inline; one past the inline limit is
    /// refused as too large (fetch it with [`Graphs::result_file`]).
    pub async fn result(&self, caller: &Account, id: u64, name: &str) -> Result<Value> {
        let graph = owned_graph(&self.db, caller, id).await?;
        match persisted(&self.db, &graph, name).await? {
            (_, StoredValue::Inline(value)) => Ok(value),
            (_, StoredValue::File { len }) => Err(Error::TooLarge(format!(
                "`{name}` is {len} bytes; fetch it through ravftp (GET {})",
                routes::graph_result_file(graph.id, name)
            ))),
        }
    }

    /// Places the persisted value `name` in the caller's ravftp home (credentials come first)
    /// and names the file.
    pub async fn result_file(&self, caller: &Account, id: u64, name: &str) -> Result<ResultFile> {
        let graph = owned_graph(&self.db, caller, id).await?;
        let user = requester_user(caller.id);
        if self.bulk.users().home(&user).is_none() {
            return Err(Error::Conflict(format!("ask for ftp credentials first (POST {})", routes::FTP_CREDENTIALS)));
        }
        let (op, stored) = persisted(&self.db, &graph, name).await?;
        let file = files::result(graph.id, op);
        let len = match stored {
            StoredValue::File { .. } => self.bulk.lend(op, &user, &file)?,
            StoredValue::Inline(value) => self.bulk.place(&value, &user, &file)?,
        };
        self.scheduler.metrics().ftp("to_requesters", len);
        Ok(ResultFile { name: file, len })
    }
}

/// The stored value persisted as `name`, or the error saying it is not computed yet or was
/// removed after the result retention.
async fn persisted(db: &Db, graph: &StoredGraph, name: &str) -> Result<(OpId, StoredValue)> {
    if let Some(expired_at) = graph.expired_at {
        return Err(expired(graph.id, expired_at));
    }
    db.persisted_value(graph.id, name).await?.ok_or_else(|| {
        Error::Conflict(format!("`{name}` of {} is not computed yet (graph is {:?})", graph.id, graph.status))
    })
}

/// The error for a fetch from a graph whose values were removed at `expired_at` (unix seconds).
fn expired(graph: GraphId, expired_at: i64) -> Error {
    let ago = crate::dispatch::retention::unix_now().saturating_sub(expired_at).max(0);
    let ago = match ago {
        0..120 => format!("{ago} s"),
        120..7200 => format!("{} min", ago / 60),
        7200..172_800 => format!("{} h", ago / 3600),
        _ => format!("{} days", ago / 86_400),
    };
    Error::Expired(format!(
        "the results of {graph} were removed {ago} ago: this server keeps an ended graph's values for a \
         limited time (its --result-retention-secs)"
    ))
}

/// The next progress event of `graph` before `deadline`; `None` when the deadline passes or
/// events were missed, so the caller reads the database instead.
async fn next_change(
    events: &mut tokio::sync::broadcast::Receiver<GraphEvent>,
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

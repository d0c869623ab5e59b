//! The operators' dashboard (`/dash`): what its data routes answer and what its socket.io
//! namespace ([`NAMESPACE`]) pushes, for the pages ravsock embeds and for any other client.
//!
//! A browser logs in at `/dash/login` with a token and gets a session cookie (HttpOnly,
//! SameSite=Strict); the data routes take that cookie or the token itself as a bearer. An
//! admin sees every graph and provider; a requester only its own graphs (another owner's
//! answers like one that does not exist); a provider token is refused.
//!
//! | event | direction | payload |
//! |---|---|---|
//! | connect | browser → server | the session cookie (or auth `{"token": …}`) |
//! | [`EVENT_WATCH`] | browser → server | a [`crate::GraphId`]: push this graph's op changes |
//! | [`EVENT_GRAPH`] | server → browser | [`crate::messages::GraphProgress`] of a graph the caller may see |
//! | [`EVENT_OPS`] | server → browser | [`OpsChange`] of a watched graph |
//! | [`EVENT_ERROR`] | server → browser | [`crate::messages::ErrorBody`] (a refused watch) |

use crate::ids::{GraphId, OpId};
use crate::messages::{Benchmark, OpFailure};
use crate::status::{GraphStatus, OpStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The socket.io namespace of dashboards.
pub const NAMESPACE: &str = "/dash";
/// Browser → server: push the op changes of this graph.
pub const EVENT_WATCH: &str = "watch";
/// Server → browser: a graph's progress changed.
pub const EVENT_GRAPH: &str = "graph";
/// Server → browser: ops of a watched graph changed status.
pub const EVENT_OPS: &str = "ops";
/// Server → browser: a request was refused.
pub const EVENT_ERROR: &str = "error_body";
/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "rav_dash";
/// Graphs per page of [`GraphPage`] at most.
pub const MAX_PER_PAGE: u64 = 100;

/// `GET /dash/api/overview`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// Who is looking, and as what (`admin` or `requester`).
    pub caller: String,
    /// The caller's role.
    pub role: String,
    /// Graphs per status (every graph for an admin, the caller's own otherwise).
    pub graphs: BTreeMap<GraphStatus, u64>,
    /// Subgraphs ready and waiting for a provider, over the whole grid.
    pub ready_subgraphs: u64,
    /// Subgraphs handed out and not yet answered.
    pub assigned_subgraphs: u64,
    /// Provider connections now.
    pub providers: u64,
    /// Ops computed since the server started (the `ravsock_ops_computed` counter).
    pub ops_computed: u64,
    /// Connected providers over the last hour: `[unix seconds, count]` at each change, oldest
    /// first (the chart draws steps).
    pub providers_history: Vec<(i64, u64)>,
}

/// One provider connection, for `GET /dash/api/providers` (admins only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderRow {
    /// The connection's id.
    pub id: u64,
    /// Its account's name.
    pub account: String,
    /// What it reported when it joined.
    pub benchmark: Benchmark,
    /// The graph it chose, if any.
    pub graph: Option<GraphId>,
    /// Milliseconds since it joined.
    pub joined_ms_ago: u64,
    /// Subgraphs it holds now.
    pub in_flight: u64,
    /// Subgraphs it answered, since it joined.
    pub done: u64,
    /// Subgraphs it failed or lost, since it joined.
    pub failed: u64,
    /// Its account's available balance (what it earned and was credited, less its stakes).
    pub available: u64,
}

/// One graph in the graphs table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphRow {
    pub id: GraphId,
    /// Its owner's account name.
    pub owner: String,
    /// Its name.
    pub name: String,
    pub status: GraphStatus,
    /// Ops per status.
    pub ops: BTreeMap<OpStatus, u64>,
    /// Computed share of its ops, 0 to 100.
    pub percent: f64,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Ended (unix seconds), if it has.
    pub ended_at: Option<i64>,
    /// Its requirements, as a person reads them (`verify replicas(2), stake 10`).
    pub requirements: String,
    /// Why it failed.
    pub failure: Option<OpFailure>,
}

/// `GET /dash/api/graphs?q=&page=&per_page=`: newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphPage {
    pub rows: Vec<GraphRow>,
    /// Graphs that match, on every page.
    pub total: u64,
    /// This page, from 0.
    pub page: u64,
    pub per_page: u64,
}

/// One op of a graph, for its DAG.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpNode {
    pub id: OpId,
    /// The requester's number.
    pub local_id: u64,
    /// The operator.
    pub op: String,
    /// Its inputs and param references (server ids).
    pub inputs: Vec<OpId>,
    /// `computing` while a provider holds it.
    pub status: OpStatus,
    /// Its persist name, if its result is kept.
    pub persist: Option<String>,
}

/// `GET /dash/api/graphs/{id}`: a graph and its ops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphView {
    pub graph: GraphRow,
    pub ops: Vec<OpNode>,
}

/// `GET /dash/api/graphs/{id}/ops/{op}`: one op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpView {
    pub node: OpNode,
    /// The operator and its params, as stored.
    pub operation: serde_json::Value,
    /// The account that holds it now or computed it (known for what this server process saw).
    pub provider: Option<String>,
    /// When it was handed out (unix milliseconds), as far as this process saw.
    pub assigned_at_ms: Option<i64>,
    /// When its result was stored (unix milliseconds), as far as this process saw.
    pub computed_at_ms: Option<i64>,
    /// The start of its stored value, as text, when the server keeps it.
    pub preview: Option<String>,
}

/// Server → browser ([`EVENT_OPS`]): ops of a watched graph changed status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpsChange {
    pub graph: GraphId,
    pub ops: Vec<OpId>,
    /// Their new status: `computing` (handed out) or `computed`.
    pub status: OpStatus,
    /// The account that took or answered them.
    pub provider: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let change = OpsChange {
            graph: GraphId(3),
            ops: vec![OpId(7), OpId(8)],
            status: OpStatus::Computed,
            provider: Some("p1".into()),
        };
        expect_test::expect![[r#"{"graph":3,"ops":[7,8],"status":"computed","provider":"p1"}"#]]
            .assert_eq(&serde_json::to_string(&change).unwrap());
        let overview = Overview {
            caller: "root".into(),
            role: "admin".into(),
            graphs: BTreeMap::from([(GraphStatus::Computed, 2)]),
            ready_subgraphs: 1,
            assigned_subgraphs: 0,
            providers: 2,
            ops_computed: 40,
            providers_history: vec![(1_700_000_000, 2)],
        };
        expect_test::expect![[r#"{"caller":"root","role":"admin","graphs":{"computed":2},"ready_subgraphs":1,"assigned_subgraphs":0,"providers":2,"ops_computed":40,"providers_history":[[1700000000,2]]}"#]]
            .assert_eq(&serde_json::to_string(&overview).unwrap());
        let node = OpNode {
            id: OpId(9),
            local_id: 1,
            op: "add".into(),
            inputs: vec![OpId(7), OpId(8)],
            status: OpStatus::Pending,
            persist: None,
        };
        expect_test::expect![[r#"{"id":9,"local_id":1,"op":"add","inputs":[7,8],"status":"pending","persist":null}"#]]
            .assert_eq(&serde_json::to_string(&node).unwrap());
    }
}

//! The requester's event stream over socket.io (namespace [`NAMESPACE`]).
//!
//! A requester that wants to be told rather than ask connects here with its token and
//! subscribes to its graphs; the server then pushes each graph's progress, every failed
//! attempt at one of its subgraphs, and its end. A subscription first receives the graph's
//! current progress (or its end, if it is already over), so nothing that happened before the
//! subscription is missed. The HTTP long poll (`GET /v1/graphs/{id}/wait`) carries the same
//! information for clients without socket.io.
//!
//! | event | direction | payload |
//! |---|---|---|
//! | connect | requester → server | auth [`RequesterAuth`] |
//! | [`EVENT_SUBSCRIBE`] | requester → server | [`Subscribe`] JSON |
//! | [`EVENT_PROGRESS`] | server → requester | [`crate::messages::GraphProgress`] JSON, at most every 100 ms per graph |
//! | [`EVENT_OP_FAILED`] | server → requester | [`OpFailedNotice`] JSON |
//! | [`EVENT_GRAPH_DONE`] | server → requester | [`crate::messages::GraphProgress`] JSON, once: computed, failed or cancelled |
//! | [`EVENT_JOB_SUBSCRIBE`] | requester → server | [`JobSubscribe`] JSON |
//! | [`EVENT_JOB_EVENTS`] | server → requester | [`JobEvents`] JSON: a job's events as its slices finish |
//! | [`EVENT_ERROR`] | server → requester | [`crate::messages::ErrorBody`] JSON (a refused subscription) |
//!
//! A job's events come in the order its outcomes were stored, each slice's once, the same
//! pages as the long poll `GET /v1/jobs/{id}/events`: a subscription names the cursor it has
//! read to (`after`, 0 for the start), so a requester that reconnects subscribes again from the
//! last page's `next` and neither misses nor repeats an event. The last page of a job ends with
//! its `complete` event; the subscription ends there.

use crate::ids::GraphId;
use crate::jobs::{JobEvent, JobId};
use crate::messages::OpFailure;
use serde::{Deserialize, Serialize};

/// The socket.io namespace of requesters.
pub const NAMESPACE: &str = "/requester";
/// Requester → server: send me the events of this graph.
pub const EVENT_SUBSCRIBE: &str = "subscribe";
/// Server → requester: a graph's op counts changed.
pub const EVENT_PROGRESS: &str = "progress";
/// Server → requester: an attempt at a subgraph failed (it may be retried).
pub const EVENT_OP_FAILED: &str = "op_failed";
/// Server → requester: a graph ended.
pub const EVENT_GRAPH_DONE: &str = "graph_done";
/// Requester → server: push me a job's events from a cursor on.
pub const EVENT_JOB_SUBSCRIBE: &str = "subscribe_job";
/// Server → requester: a page of a subscribed job's events.
pub const EVENT_JOB_EVENTS: &str = "job_events";
/// Server → requester: a request was refused.
pub const EVENT_ERROR: &str = "error_body";

/// The socket.io auth payload of a requester.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequesterAuth {
    /// The requester's token.
    pub token: String,
    /// [`crate::PROTOCOL_VERSION`] of the requester.
    pub protocol_version: u32,
}

/// Subscribes to one graph's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// The graph (one of the requester's own).
    pub graph_id: GraphId,
}

/// An attempt at a subgraph of the graph failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpFailedNotice {
    /// The graph.
    pub graph_id: GraphId,
    /// The op (the subgraph's first op when no single op is to blame) and the reason.
    pub failure: OpFailure,
    /// Whether the subgraph goes back to be tried again; `false` means the graph fails.
    pub will_retry: bool,
}

/// Subscribes to one job's events, from the events after `after` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSubscribe {
    /// The job (one of the requester's own).
    pub job: JobId,
    /// The cursor read to: 0 for every event, else a page's `next`.
    #[serde(default)]
    pub after: u64,
}

/// A page of a subscribed job's events (see [`crate::jobs::EventPage`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEvents {
    /// The job.
    pub job: JobId,
    /// Its events: slices' outcomes and what they sent, then its counts, and `complete` last.
    pub events: Vec<JobEvent>,
    /// The cursor after this page: subscribe again from it after a reconnect.
    pub next: u64,
}

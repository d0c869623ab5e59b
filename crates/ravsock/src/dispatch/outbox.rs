//! What the dispatch task sends out: socket.io emits to a provider's room, to a graph's room
//! of the `/requester` namespace and to a topic's room of the `/topics` namespace, and graph
//! changes and closed rounds to the long polls in this process.

use super::{GraphEvent, OpsEvent, RoundClosed};
use ravproto::messages::GraphProgress;
use ravproto::topics::{self, TopicId};
use ravproto::{GraphId, OpId, ProviderId, provider, requester};
use socketioxide::SocketIo;

/// The room holding a provider's socket (assignments are emitted there).
pub fn provider_room(provider: ProviderId) -> String {
    format!("provider-{}", provider.0)
}

/// The room, in the `/requester` namespace, of the sockets subscribed to a graph.
pub fn graph_room(graph: GraphId) -> String {
    format!("graph-{}", graph.0)
}

/// The room, in the `/topics` namespace, of a topic's workers.
pub fn topic_room(topic: TopicId) -> String {
    format!("topic-{}", topic.0)
}

/// The task's links to the outside: socket.io (absent when only the HTTP API runs, as in
/// its tests: assignments then wait for their deadline) and the long polls.
#[derive(Clone)]
pub(super) struct Outbox {
    pub(super) io: Option<SocketIo>,
    pub(super) events: tokio::sync::broadcast::Sender<GraphEvent>,
    pub(super) rounds: tokio::sync::broadcast::Sender<RoundClosed>,
    pub(super) ops: tokio::sync::broadcast::Sender<OpsEvent>,
    /// Jobs whose slices got outcomes or that ended (the event long polls).
    pub(super) jobs: tokio::sync::broadcast::Sender<ravproto::jobs::JobId>,
}

impl Outbox {
    /// Emits `event` to a provider's socket.
    pub(super) async fn to_provider<T: serde::Serialize>(&self, provider: ProviderId, event: &'static str, data: &T) {
        let Some(namespace) = self.io.as_ref().and_then(|io| io.of(provider::NAMESPACE)) else { return };
        if let Err(error) = namespace.to(provider_room(provider)).emit(event, data).await {
            tracing::warn!(%provider, event, cause = %error, "cannot reach provider");
        }
    }

    /// Emits `event` to the requesters subscribed to a graph.
    pub(super) async fn to_requesters<T: serde::Serialize>(&self, graph: GraphId, event: &'static str, data: &T) {
        let Some(namespace) = self.io.as_ref().and_then(|io| io.of(requester::NAMESPACE)) else { return };
        if let Err(error) = namespace.to(graph_room(graph)).emit(event, data).await {
            tracing::debug!(%graph, event, cause = %error, "cannot reach a subscribed requester");
        }
    }

    /// Emits `event` to a topic's workers.
    pub(super) async fn to_workers<T: serde::Serialize>(&self, topic: TopicId, event: &'static str, data: &T) {
        let Some(namespace) = self.io.as_ref().and_then(|io| io.of(topics::NAMESPACE)) else { return };
        if let Err(error) = namespace.to(topic_room(topic)).emit(event, data).await {
            tracing::debug!(%topic, event, cause = %error, "cannot reach a topic's workers");
        }
    }

    /// Tells the dashboard that `ops` of `graph` were handed out to or computed by `account`;
    /// without a dashboard listening, nothing is built.
    pub(super) fn ops(&self, graph: GraphId, ops: &[OpId], computed: bool, account: Option<i64>) {
        if self.ops.receiver_count() == 0 {
            return;
        }
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64);
        let _ = self.ops.send(OpsEvent { graph, ops: ops.to_vec(), computed, account, at_ms });
    }

    /// Tells long polls that a round closed.
    pub(super) fn round_closed(&self, topic: TopicId, round: u64) {
        let _ = self.rounds.send(RoundClosed { topic, round });
    }

    /// Tells long polls that a graph changed.
    pub(super) fn changed(&self, graph: GraphId, progress: GraphProgress) {
        // Nobody waiting is no error.
        let _ = self.events.send(GraphEvent { graph, progress });
    }

    /// Tells long polls and subscribed requesters that a graph ended with `progress`.
    pub(super) async fn ended(&self, graph: GraphId, progress: GraphProgress) {
        self.changed(graph, progress.clone());
        self.to_requesters(graph, requester::EVENT_GRAPH_DONE, &progress).await;
    }

    /// Closes a provider's connection.
    pub(super) async fn disconnect(&self, provider: ProviderId) {
        if let Some(namespace) = self.io.as_ref().and_then(|io| io.of(provider::NAMESPACE))
            && let Err(error) = namespace.to(provider_room(provider)).disconnect().await
        {
            tracing::warn!(%provider, cause = %error, "cannot disconnect provider");
        }
    }

    /// Closes every provider connection (after a scheduler restart: providers join again).
    pub(super) async fn disconnect_all_providers(&self) {
        if let Some(namespace) = self.io.as_ref().and_then(|io| io.of(provider::NAMESPACE))
            && let Err(error) = namespace.disconnect().await
        {
            tracing::warn!(cause = %error, "cannot disconnect providers");
        }
    }
}

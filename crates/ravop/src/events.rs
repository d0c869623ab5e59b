//! Following a graph as it runs: ravsock's `/requester` socket.io namespace.
//!
//! [`Client::subscribe`] opens a socket.io connection with the requester's token and asks for
//! one graph's events; the [`Subscription`] then yields its progress, every failed attempt at
//! one of its subgraphs (with whether it will be retried) and its end. The first event is the
//! graph's state at the time of subscribing, so nothing that happened earlier is missed.
//! After a dropped connection the client reconnects and subscribes again by itself.
//! [`Client::wait`] (HTTP long poll) remains the simpler way to wait for a result.

use crate::client::Client;
use crate::error::{Error, Result};
use ravclient::socket::{describe, first_json, forward, refusal};
use ravproto::messages::{ErrorBody, GraphProgress};
use ravproto::requester::{
    EVENT_ERROR, EVENT_GRAPH_DONE, EVENT_OP_FAILED, EVENT_PROGRESS, EVENT_SUBSCRIBE, NAMESPACE, OpFailedNotice,
    RequesterAuth, Subscribe,
};
use ravproto::{GraphId, PROTOCOL_VERSION};
use rust_socketio::Payload;
use rust_socketio::asynchronous::Client as SocketClient;
use tokio::sync::mpsc;

/// How long [`Client::subscribe`] waits for the server to accept the connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Something that happened to a subscribed graph.
#[derive(Clone, Debug, PartialEq)]
pub enum GraphEvent {
    /// Its op counts changed (also the first event of a subscription to a running graph).
    Progress(GraphProgress),
    /// An attempt at one of its subgraphs failed; `will_retry` says whether it goes out again.
    OpFailed(OpFailedNotice),
    /// It ended: computed, failed or cancelled. The last event of the subscription.
    Done(GraphProgress),
}

enum Incoming {
    Open,
    Event(GraphEvent),
    Refused(ErrorBody),
    /// The `error` callback: the server's refusal of the connection, or a dropped connection
    /// (`None`; the client reconnects), and the text of it.
    ConnectError(Option<ErrorBody>, String),
}

/// A live subscription to one graph's events.
pub struct Subscription {
    graph: GraphId,
    socket: SocketClient,
    rx: mpsc::UnboundedReceiver<Incoming>,
    done: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("graph", &self.graph).field("done", &self.done).finish()
    }
}

impl Client {
    /// Subscribes to a graph's events (see [`Subscription::next`]).
    pub async fn subscribe(&self, graph: GraphId) -> Result<Subscription> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let on = |make: fn(Payload) -> Option<Incoming>| forward(&tx, make);
        let auth = RequesterAuth { token: self.token().to_string(), protocol_version: PROTOCOL_VERSION };
        let auth = serde_json::to_value(&auth).map_err(|e| Error::Transport(e.to_string()))?;
        let socket = ravclient::socket::reconnecting(self.base(), self.trust(), NAMESPACE, auth)?
            .on("open", on(|_| Some(Incoming::Open)))
            .on(EVENT_PROGRESS, on(|p| first_json(p).map(|p| Incoming::Event(GraphEvent::Progress(p)))))
            .on(EVENT_OP_FAILED, on(|p| first_json(p).map(|n| Incoming::Event(GraphEvent::OpFailed(n)))))
            .on(EVENT_GRAPH_DONE, on(|p| first_json(p).map(|p| Incoming::Event(GraphEvent::Done(p)))))
            .on(EVENT_ERROR, on(|p| first_json(p).map(Incoming::Refused)))
            .on("error", on(|p| Some(Incoming::ConnectError(refusal(&p), describe(&p)))))
            .connect()
            .await
            .map_err(|e| Error::from(ravclient::socket::connect_error(self.base(), &e)))?;
        // `connect` returns before the namespace accepted us; an emit before that is lost.
        match tokio::time::timeout(CONNECT_TIMEOUT, rx.recv()).await {
            Ok(Some(Incoming::Open)) => {}
            Ok(Some(Incoming::ConnectError(refused, reason))) => {
                let _ = socket.disconnect().await;
                return Err(match refused {
                    Some(body) => ravclient::Error::refused(body.code.http_status(), body).into(),
                    None => Error::Transport(format!("the server refused the event stream: {reason}")),
                });
            }
            Ok(_) | Err(_) => {
                let _ = socket.disconnect().await;
                return Err(Error::Transport("the server did not accept the event stream in time".into()));
            }
        }
        let subscription = Subscription { graph, socket, rx, done: false };
        subscription.send_subscribe().await?;
        Ok(subscription)
    }
}

impl Subscription {
    async fn send_subscribe(&self) -> Result<()> {
        let request =
            serde_json::to_value(Subscribe { graph_id: self.graph }).map_err(|e| Error::Transport(e.to_string()))?;
        self.socket.emit(EVENT_SUBSCRIBE, request).await.map_err(|e| Error::Transport(e.to_string()))
    }

    /// The next event; `None` after [`GraphEvent::Done`]. A refused subscription (not the
    /// caller's graph) is an error.
    pub async fn next(&mut self) -> Option<Result<GraphEvent>> {
        if self.done {
            return None;
        }
        loop {
            match self.rx.recv().await? {
                // A reconnect: the server forgot the subscription with the old socket.
                Incoming::Open => {
                    if let Err(error) = self.send_subscribe().await {
                        return Some(Err(error));
                    }
                }
                Incoming::Event(event) => {
                    self.done = matches!(event, GraphEvent::Done(_));
                    return Some(Ok(event));
                }
                Incoming::Refused(body) | Incoming::ConnectError(Some(body), _) => {
                    self.done = true;
                    return Some(Err(ravclient::Error::refused(body.code.http_status(), body).into()));
                }
                // A dropped connection: the client reconnects, and `Open` subscribes again.
                Incoming::ConnectError(None, _) => {}
            }
        }
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.socket.disconnect().await;
    }
}

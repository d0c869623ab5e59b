//! Following a graph as it runs: ravsock's `/requester` socket.io namespace.
//!
//! [`Client::subscribe`] opens a socket.io connection with the requester's token and asks for
//! one graph's events; the [`Subscription`] then yields its progress, every failed attempt at
//! one of its subgraphs (with whether it will be retried) and its end. The first event is the
//! graph's state at the time of subscribing, so nothing that happened earlier is missed.
//! After a dropped connection the client reconnects and subscribes again by itself.
//! [`Client::wait`] (HTTP long poll) remains the simpler way to wait for a result.
//!
//! Jobs' events come over the same namespace ([`crate::jobs::JobHandle::subscribe`]): the
//! server pushes the pages the long poll would answer, from a cursor, and after a reconnect
//! this side subscribes again from the last page's `next`.

use crate::client::Client;
use crate::error::{Error, Result};
use ravclient::socket::{describe, first_json, forward, refusal};
use ravproto::jobs::JobId;
use ravproto::messages::{ErrorBody, GraphProgress};
use ravproto::requester::{
    EVENT_ERROR, EVENT_GRAPH_DONE, EVENT_JOB_EVENTS, EVENT_JOB_SUBSCRIBE, EVENT_OP_FAILED, EVENT_PROGRESS,
    EVENT_SUBSCRIBE, JobEvents, JobSubscribe, NAMESPACE, OpFailedNotice, RequesterAuth, Subscribe,
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

enum Incoming<E> {
    Open,
    Event(E),
    Refused(ErrorBody),
    /// The `error` callback: the server's refusal of the connection, or a dropped connection
    /// (`None`; the client reconnects), and the text of it.
    ConnectError(Option<ErrorBody>, String),
}

/// A live subscription to one graph's events.
pub struct Subscription {
    graph: GraphId,
    socket: SocketClient,
    rx: mpsc::UnboundedReceiver<Incoming<GraphEvent>>,
    done: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("graph", &self.graph).field("done", &self.done).finish()
    }
}

/// A `/requester` connection; `events` adds the handlers of the events it follows.
async fn connect<E: Send + 'static>(
    client: &Client,
    events: impl FnOnce(
        rust_socketio::asynchronous::ClientBuilder,
        &mpsc::UnboundedSender<Incoming<E>>,
    ) -> rust_socketio::asynchronous::ClientBuilder,
) -> Result<(SocketClient, mpsc::UnboundedReceiver<Incoming<E>>)> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let on = |make: fn(Payload) -> Option<Incoming<E>>| forward(&tx, make);
    let auth = RequesterAuth { token: client.token().to_string(), protocol_version: PROTOCOL_VERSION };
    let auth = serde_json::to_value(&auth).map_err(|e| Error::Transport(e.to_string()))?;
    let builder = ravclient::socket::reconnecting(client.base(), client.trust(), NAMESPACE, auth)?
        .on("open", on(|_| Some(Incoming::Open)))
        .on(EVENT_ERROR, on(|p| first_json(p).map(Incoming::Refused)))
        .on("error", on(|p| Some(Incoming::ConnectError(refusal(&p), describe(&p)))));
    let socket = events(builder, &tx)
        .connect()
        .await
        .map_err(|e| Error::from(ravclient::socket::connect_error(client.base(), &e)))?;
    // `connect` returns before the namespace accepted us; an emit before that is lost.
    match tokio::time::timeout(CONNECT_TIMEOUT, rx.recv()).await {
        Ok(Some(Incoming::Open)) => Ok((socket, rx)),
        Ok(Some(Incoming::ConnectError(refused, reason))) => {
            let _ = socket.disconnect().await;
            Err(match refused {
                Some(body) => ravclient::Error::refused(body.code.http_status(), body).into(),
                None => Error::Transport(format!("the server refused the event stream: {reason}")),
            })
        }
        Ok(_) | Err(_) => {
            let _ = socket.disconnect().await;
            Err(Error::Transport("the server did not accept the event stream in time".into()))
        }
    }
}

impl Client {
    /// Subscribes to a graph's events (see [`Subscription::next`]).
    pub async fn subscribe(&self, graph: GraphId) -> Result<Subscription> {
        let (socket, rx) = connect(self, |builder, tx| {
            let on = |make: fn(Payload) -> Option<Incoming<GraphEvent>>| forward(tx, make);
            builder
                .on(EVENT_PROGRESS, on(|p| first_json(p).map(|p| Incoming::Event(GraphEvent::Progress(p)))))
                .on(EVENT_OP_FAILED, on(|p| first_json(p).map(|n| Incoming::Event(GraphEvent::OpFailed(n)))))
                .on(EVENT_GRAPH_DONE, on(|p| first_json(p).map(|p| Incoming::Event(GraphEvent::Done(p)))))
        })
        .await?;
        let subscription = Subscription { graph, socket, rx, done: false };
        subscription.send_subscribe().await?;
        Ok(subscription)
    }
}

/// A `/requester` connection following one job: the pages the server pushes, in order.
pub(crate) struct JobPush {
    job: JobId,
    socket: SocketClient,
    rx: mpsc::UnboundedReceiver<Incoming<JobEvents>>,
}

impl std::fmt::Debug for JobPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobPush").field("job", &self.job).finish()
    }
}

impl JobPush {
    /// Connects and follows `job` from the events after `after`.
    pub(crate) async fn open(client: &Client, job: JobId, after: u64) -> Result<JobPush> {
        let (socket, rx) = connect(client, |builder, tx| {
            builder.on(EVENT_JOB_EVENTS, forward(tx, |p| first_json(p).map(Incoming::Event)))
        })
        .await?;
        let push = JobPush { job, socket, rx };
        push.follow(after).await?;
        Ok(push)
    }

    async fn follow(&self, after: u64) -> Result<()> {
        let request =
            serde_json::to_value(JobSubscribe { job: self.job, after }).map_err(|e| Error::Transport(e.to_string()))?;
        self.socket.emit(EVENT_JOB_SUBSCRIBE, request).await.map_err(|e| Error::Transport(e.to_string()))
    }

    /// The next page of the job's events; after a reconnect the job is followed again from
    /// `after` (the cursor the caller has read to), so no page is missed or repeated.
    pub(crate) async fn next(&mut self, after: u64) -> Result<JobEvents> {
        loop {
            match self.rx.recv().await {
                None => return Err(Error::Transport("the event stream closed".into())),
                Some(Incoming::Open) => self.follow(after).await?,
                // A page from before a reconnect's new subscription is read past by its cursor.
                Some(Incoming::Event(page)) if page.job == self.job && page.next >= after => return Ok(page),
                Some(Incoming::Event(_)) => {}
                Some(Incoming::Refused(body) | Incoming::ConnectError(Some(body), _)) => {
                    return Err(ravclient::Error::refused(body.code.http_status(), body).into());
                }
                // A dropped connection: the client reconnects, and `Open` follows again.
                Some(Incoming::ConnectError(None, _)) => {}
            }
        }
    }

    /// Closes the connection.
    pub(crate) async fn close(&self) {
        let _ = self.socket.disconnect().await;
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

//! A topic worker (Allora's worker loop): subscribed to a topic over socket.io, it is pushed
//! each round as it opens, fetches its value from its own model server (`inference_url`,
//! HTTP GET, with retries and backoff until the round closes) and posts it.
//!
//! What the model server answers is documented in `ravproto::topics`: a bare JSON number, or
//! an object with a number under `value`. A dropped connection (a ravsock restart, an
//! eviction) is opened again, and the subscription with it: the server then tells of the
//! round that is open, so a worker back before the round's deadline still answers it. Posting
//! an answer is safe to repeat (the same value is accepted again), so a post whose reply was
//! lost is sent again.

use super::config::RetryPolicy;
use crate::Error;
use futures_util::FutureExt;
use ravclient::socket::{describe, first_json, forward, refusal};
use ravclient::{Http, Repeat};
use ravproto::messages::{ErrorBody, ErrorCode};
use ravproto::provider::ProviderAuth;
use ravproto::requester::EVENT_ERROR;
use ravproto::topics::{
    AnswerReceipt, AnswerRequest, EVENT_ROUND_OPEN, EVENT_SUBSCRIBE, EVENT_TOPIC_ENDED, NAMESPACE, RoundOpen,
    TopicEnded, TopicId, TopicSubscribe,
};
use ravproto::{PROTOCOL_VERSION, routes};
use rust_socketio::Payload;
use rust_socketio::asynchronous::Client;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How a round's value is fetched from the model server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FetchPolicy {
    /// Tries per round (Allora's `inference_fetch_retries`), while the round is open.
    pub tries: u32,
    /// How long one request may take.
    pub timeout: Duration,
    /// The pauses between tries (`first_delay` doubled up to `max_delay`, with jitter), as
    /// for a worker file's entries.
    pub pauses: RetryPolicy,
}

impl Default for FetchPolicy {
    fn default() -> FetchPolicy {
        FetchPolicy { tries: DEFAULT_FETCH_TRIES, timeout: DEFAULT_FETCH_TIMEOUT, pauses: RetryPolicy::default() }
    }
}

/// Tries per round when the worker file does not say.
pub const DEFAULT_FETCH_TRIES: u32 = 5;
/// How long one GET of the model server may take when the worker file does not say.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What to answer, and where.
#[derive(Clone, Debug)]
pub struct TopicWorkerConfig {
    /// ravsock's URL.
    pub server: String,
    /// A provider token.
    pub token: String,
    /// The CAs it trusts and whether plain HTTP to another machine is allowed.
    pub trust: ravclient::Trust,
    /// The topic.
    pub topic: TopicId,
    /// The model server's URL (GET).
    pub inference_url: String,
    /// How each round's value is fetched.
    pub fetch: FetchPolicy,
    /// Told of each step, for a live view or a status file.
    pub events: Option<mpsc::UnboundedSender<TopicEvent>>,
}

/// A step of the worker.
#[derive(Clone, Debug, PartialEq)]
pub enum TopicEvent {
    /// Subscribed (again, after a reconnect).
    Subscribed,
    /// A round opened.
    Opened { round: u64 },
    /// A fetch from the model server failed; another try follows if the round is still open.
    FetchFailed { round: u64, attempt: u32, reason: String },
    /// The answer was stored by ravsock.
    Answered { round: u64, value: f64 },
    /// The round went unanswered.
    Missed { round: u64, reason: String },
    /// ravsock closed the connection; the worker connects again.
    Dropped { reason: String },
}

/// Counts of the worker's rounds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicSummary {
    /// Rounds answered.
    pub answered: u64,
    /// Rounds that went unanswered.
    pub missed: u64,
    /// Why the topic ended, if it did (closed by its requester, or no such topic).
    pub ended: Option<TopicEnded>,
}

/// What the socket callbacks hand to the main loop.
#[derive(Debug)]
enum Incoming {
    Connected,
    Round(RoundOpen),
    Ended(TopicEnded),
    Closed,
    Refused(ErrorBody),
    Error(Option<ErrorBody>, String),
}

fn report(events: &Option<mpsc::UnboundedSender<TopicEvent>>, event: TopicEvent) {
    if let Some(events) = events {
        let _ = events.send(event);
    }
}

/// Answers the topic's rounds until `shutdown` resolves or the topic ends. Only a refusal
/// that another try cannot change (a token, a protocol version), a server unreachable for the
/// retry window or an untrusted certificate end it with an error.
pub async fn serve_topic(config: TopicWorkerConfig, shutdown: impl Future<Output = ()>) -> Result<TopicSummary, Error> {
    let http =
        Http::new(&config.server, &config.token, &config.trust).map_err(|e| Error::from_http(&config.server, e))?;
    let inference = config.trust.reqwest().map_err(|e| Error::from_http(&config.server, e))?;
    let worker = Arc::new(Worker { config: config.clone(), http, inference });
    let mut summary = TopicSummary::default();
    let mut rounds = tokio::task::JoinSet::new();
    // Rounds already taken on: a reconnect hears of the open round again.
    let mut started: BTreeSet<u64> = BTreeSet::new();
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    let outcome = 'connections: loop {
        let (client, mut rx) = tokio::select! {
            () = &mut shutdown => break Ok(()),
            connection = connect(&config, worker.http.window()) => match connection {
                Ok(connected) => connected,
                Err(error) => break Err(error),
            },
        };
        let mut notice = None;
        loop {
            tokio::select! {
                () = &mut shutdown => {
                    let _ = client.disconnect().await;
                    break 'connections Ok(());
                }
                Some(done) = rounds.join_next(), if !rounds.is_empty() => match done {
                    Ok(true) => summary.answered += 1,
                    Ok(false) => summary.missed += 1,
                    Err(error) => {
                        tracing::error!(cause = %error, "a round's task failed");
                        summary.missed += 1;
                    }
                },
                message = rx.recv() => match message {
                    None | Some(Incoming::Closed) => {
                        let reason = notice.take().unwrap_or_else(|| "the server closed the connection".to_string());
                        tracing::warn!(%reason, topic = %config.topic, "connecting again");
                        report(&config.events, TopicEvent::Dropped { reason });
                        let _ = client.disconnect().await;
                        continue 'connections;
                    }
                    Some(Incoming::Connected) => {
                        let subscribe = serde_json::to_value(TopicSubscribe { topic: config.topic }).expect("serializes");
                        let _ = client.emit(EVENT_SUBSCRIBE, subscribe).await;
                        tracing::info!(topic = %config.topic, "subscribed");
                        report(&config.events, TopicEvent::Subscribed);
                    }
                    Some(Incoming::Round(open)) if open.topic == config.topic => {
                        if started.insert(open.round) {
                            // Only the recent rounds matter for repeats.
                            while started.len() > 64 {
                                started.pop_first();
                            }
                            report(&config.events, TopicEvent::Opened { round: open.round });
                            rounds.spawn(worker.clone().answer(open));
                        }
                    }
                    Some(Incoming::Round(_)) => {}
                    Some(Incoming::Ended(ended)) => {
                        tracing::info!(topic = %config.topic, reason = %ended.reason, "the topic ended");
                        summary.ended = Some(ended);
                        let _ = client.disconnect().await;
                        break 'connections Ok(());
                    }
                    Some(Incoming::Refused(refusal)) => {
                        tracing::warn!(reason = %refusal.message, "ravsock refused an event of this worker");
                        notice = Some(refusal.message);
                    }
                    Some(Incoming::Error(Some(refused), _)) if !refused.code.is_server_fault() => {
                        break 'connections Err(refused.into());
                    }
                    Some(Incoming::Error(_, reason)) => {
                        tracing::warn!(%reason, "connection problem; the client reconnects");
                    }
                },
            }
        }
    };
    // Rounds in hand finish (each ends by its round's deadline).
    while let Some(done) = rounds.join_next().await {
        match done {
            Ok(true) => summary.answered += 1,
            _ => summary.missed += 1,
        }
    }
    outcome.map(|()| summary)
}

/// Opens the `/topics` connection, waiting for a server that is not up yet (or restarting) as
/// long as a request would wait.
async fn connect(
    config: &TopicWorkerConfig,
    window: Duration,
) -> Result<(Client, mpsc::UnboundedReceiver<Incoming>), Error> {
    let auth = ProviderAuth { token: config.token.clone(), protocol_version: PROTOCOL_VERSION };
    let mut retry = ravclient::Retry::new(window);
    loop {
        let (tx, rx) = mpsc::unbounded_channel();
        match socket(config, &auth, &tx)?.connect().await {
            Ok(client) => return Ok((client, rx)),
            Err(error) => match ravclient::socket::connect_error(&config.server, &error) {
                ravclient::Error::Transport(reason) if retry.pause(&reason).await => {}
                ravclient::Error::Transport(reason) => {
                    return Err(Error::Connect { server: config.server.clone(), reason: retry.describe(reason) });
                }
                other => return Err(Error::from_http(&config.server, other)),
            },
        }
    }
}

fn socket(
    config: &TopicWorkerConfig,
    auth: &ProviderAuth,
    tx: &mpsc::UnboundedSender<Incoming>,
) -> Result<rust_socketio::asynchronous::ClientBuilder, Error> {
    let on = |make: fn(Payload) -> Option<Incoming>| forward(tx, make);
    let auth = serde_json::to_value(auth).expect("auth serializes");
    Ok(ravclient::socket::reconnecting(&config.server, &config.trust, NAMESPACE, auth)
        .map_err(|e| Error::from_http(&config.server, e))?
        .on("open", on(|_| Some(Incoming::Connected)))
        .on(EVENT_ROUND_OPEN, on(|p| first_json::<RoundOpen>(p).map(Incoming::Round)))
        .on(EVENT_TOPIC_ENDED, on(|p| first_json::<TopicEnded>(p).map(Incoming::Ended)))
        .on(EVENT_ERROR, on(|p| first_json::<ErrorBody>(p).map(Incoming::Refused)))
        .on("close", on(|_| Some(Incoming::Closed)))
        .on("error", on(|p| Some(Incoming::Error(refusal(&p), describe(&p))))))
}

/// What each round's task needs.
struct Worker {
    config: TopicWorkerConfig,
    http: Http,
    inference: reqwest::Client,
}

impl Worker {
    /// Fetches and posts one round's value before it closes; whether it was stored.
    async fn answer(self: Arc<Worker>, open: RoundOpen) -> bool {
        let (topic, round) = (open.topic, open.round);
        let closes = Instant::now() + Duration::from_millis(open.closes_in_ms);
        let events = &self.config.events;
        let missed = |reason: String| {
            tracing::warn!(%topic, round, %reason, "round missed");
            report(events, TopicEvent::Missed { round, reason });
            false
        };
        let Some(value) = self.fetch(round, closes).await else {
            return missed("no value from the model server before the round closed".into());
        };
        let path = routes::topic_answers(topic, round);
        // The same value posted again is accepted again: safe to send until it arrives.
        let posted = self.http.post_as::<AnswerReceipt, _>(Repeat::Safe, &path, &AnswerRequest { value }).await;
        match posted {
            Ok(_) => {
                tracing::info!(%topic, round, value, "answered");
                report(events, TopicEvent::Answered { round, value });
                true
            }
            Err(ravclient::Error::Server { code: ErrorCode::Conflict, message, .. }) => missed(message),
            Err(error) => missed(error.to_string()),
        }
    }

    /// The model server's value, tried up to the policy's count while the round is open.
    async fn fetch(&self, round: u64, closes: Instant) -> Option<f64> {
        let policy = self.config.fetch;
        for attempt in 1..=policy.tries {
            let tried = tokio::time::timeout_at(
                closes,
                fetch_inference(&self.inference, &self.config.inference_url, policy.timeout),
            );
            let reason = match tried.await {
                Ok(Ok(value)) => return Some(value),
                Ok(Err(reason)) => reason,
                Err(_) => return None,
            };
            tracing::warn!(topic = %self.config.topic, round, attempt, %reason, "fetching the inference failed");
            report(&self.config.events, TopicEvent::FetchFailed { round, attempt, reason });
            if attempt == policy.tries {
                break;
            }
            let pause = crate::node::supervise::backoff(&policy.pauses, attempt);
            if Instant::now() + pause >= closes {
                return None;
            }
            tokio::time::sleep(pause).await;
        }
        None
    }
}

/// One GET of the model server, read as `ravproto::topics` documents.
pub async fn fetch_inference(client: &reqwest::Client, url: &str, timeout: Duration) -> Result<f64, String> {
    let response = client.get(url).timeout(timeout).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{url} did not answer within {timeout:?}")
        } else {
            format!("cannot reach {url}: {e}")
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    let text = response.text().await.map_err(|e| format!("cannot read the answer of {url}: {e}"))?;
    parse_inference(&text).map_err(|why| format!("{url}: {why}"))
}

/// A model server's answer: a bare JSON number, or an object with a number under `value`.
pub fn parse_inference(text: &str) -> Result<f64, String> {
    let json: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let number = match &json {
        serde_json::Value::Number(number) => number.as_f64(),
        serde_json::Value::Object(fields) => fields.get("value").and_then(serde_json::Value::as_f64),
        _ => None,
    };
    match number {
        Some(value) if value.is_finite() => Ok(value),
        Some(_) => Err("the value is not a finite number".into()),
        None => Err("expected a number, or an object with a number under `value`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_inference;

    #[test]
    fn a_model_servers_answer_is_a_number_or_an_object_with_a_value() {
        assert_eq!(parse_inference("41.7"), Ok(41.7));
        assert_eq!(parse_inference(" 3\n"), Ok(3.0));
        assert_eq!(parse_inference(r#"{"value": -2.5, "model": "lstm"}"#), Ok(-2.5));
        for bad in ["", "\"41.7\"", "[1]", r#"{"val": 1}"#, r#"{"value": "1"}"#, "nan", "1e999"] {
            assert!(parse_inference(bad).is_err(), "{bad}");
        }
    }
}

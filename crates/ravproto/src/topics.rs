//! Topics: a requester's recurring question, answered in rounds by workers (Allora's topics).
//!
//! A requester opens a topic ([`TopicSpec`]): every `cadence_ms` ravsock opens a round and
//! pushes [`EVENT_ROUND_OPEN`] to the topic's workers over socket.io (namespace
//! [`NAMESPACE`]; push, not nonce polling). Each worker fetches its value from its own model
//! server and posts it (`POST` [`crate::routes::TOPIC_ANSWERS`], an [`AnswerRequest`]). A
//! round closes at its deadline, or as soon as `workers` answers arrived; an answer after that
//! is refused (409). The closed round's value is the [`Aggregation`] of its answers.
//!
//! | event | direction | payload |
//! |---|---|---|
//! | connect | worker → server | auth [`crate::provider::ProviderAuth`] (a provider's token) |
//! | [`EVENT_SUBSCRIBE`] | worker → server | [`TopicSubscribe`] JSON |
//! | [`EVENT_ROUND_OPEN`] | server → worker | [`RoundOpen`] JSON: at each round's start, and at once on subscribing while a round is open |
//! | [`EVENT_TOPIC_ENDED`] | server → worker | [`TopicEnded`] JSON: the topic was closed (or never existed) |
//! | [`crate::requester::EVENT_ERROR`] | server → worker | [`crate::messages::ErrorBody`] JSON (a malformed or refused event) |
//!
//! # What a worker's model server answers
//! `GET inference_url` returns either a bare JSON number (`41.7`) or a JSON object with a
//! number under `value` (`{"value": 41.7}`, other keys ignored). Anything else, a non-2xx
//! status or a non-finite number is a failed fetch, retried with backoff until the round
//! closes.
//!
//! # Durability
//! Rounds and answers are stored before they are announced or acknowledged. After a restart
//! ravsock continues each open topic where it was: a round that was open stays open until its
//! stored deadline (its stored answers count), and the next round opens one cadence after the
//! last one opened, or at once if that time passed while the server was down. Rounds are
//! numbered 1, 2, 3, … with no gap and no repeat.
//!
//! # Ground truth and scoring
//! Once a round is closed, its requester may post the true value `t`
//! (`POST` [`crate::routes::TOPIC_TRUTH`], a [`TruthRequest`]; once per round). Each answer `v`
//! is then scored: its error is `|v − t|`, its relative error `r = |v − t| / max(|t|, 1e-9)`,
//! and its weight `w = 1 / (1 + r)` (1 for an exact answer, ½ for one off by 100%). The
//! round's reward is split in proportion to the weights, in whole units: each worker gets the
//! floor of its share, and the units left go one each to the largest remainders (ties to the
//! earlier answer), so the shares add up to the reward exactly. The shares are recorded with
//! the round ([`Score::reward`]); moving them between accounts is the ledger's (its own issue).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The socket.io namespace of topic workers.
pub const NAMESPACE: &str = "/topics";
/// Worker → server: send me this topic's rounds.
pub const EVENT_SUBSCRIBE: &str = "subscribe";
/// Server → worker: a round is open for answers.
pub const EVENT_ROUND_OPEN: &str = "round_open";
/// Server → worker: the topic opens no more rounds.
pub const EVENT_TOPIC_ENDED: &str = "topic_ended";

/// Longest name of a topic, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Shortest cadence: rounds at most ten times a second.
pub const MIN_CADENCE_MS: u64 = 100;
/// Most answers a round may wait for.
pub const MAX_WORKERS: u32 = 10_000;
/// Most topics one requester account may have open at once: each is a timer in the
/// scheduler, so a requester cannot load it without bound (an open beyond is refused, 409).
pub const MAX_OPEN_TOPICS: usize = 100;
/// Most rounds one `GET` of a topic's rounds returns.
pub const MAX_ROUNDS_PER_PAGE: u64 = 1_000;

/// A topic, allocated by the server when its requester opens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TopicId(pub u64);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic#{}", self.0)
    }
}

/// How a round's answers become its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The middle answer (the mean of the two middle ones for an even count): one wild
    /// answer cannot move it.
    Median,
    /// The arithmetic mean.
    Mean,
}

impl Aggregation {
    /// The value of these answers; `None` when there are none.
    pub fn of(self, answers: &[f64]) -> Option<f64> {
        if answers.is_empty() {
            return None;
        }
        match self {
            Aggregation::Mean => Some(answers.iter().sum::<f64>() / answers.len() as f64),
            Aggregation::Median => {
                let mut sorted = answers.to_vec();
                sorted.sort_by(f64::total_cmp);
                let middle = sorted.len() / 2;
                Some(match sorted.len() % 2 {
                    1 => sorted[middle],
                    _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
                })
            }
        }
    }
}

/// What a requester asks for when it opens a topic (`POST` [`crate::routes::TOPICS`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Shown to workers; 1 to [`MAX_NAME_BYTES`] bytes.
    pub name: String,
    /// A round opens every this many milliseconds (at least [`MIN_CADENCE_MS`]).
    pub cadence_ms: u64,
    /// How long a round takes answers, in milliseconds (at most the cadence: one round is
    /// open at a time).
    pub deadline_ms: u64,
    /// Answers that close a round early: once this many workers answered (1 to
    /// [`MAX_WORKERS`]).
    pub workers: u32,
    /// How the answers become the round's value.
    pub aggregation: Aggregation,
    /// Units split among a round's workers once its ground truth is posted.
    #[serde(default)]
    pub reward_per_round: u64,
}

impl TopicSpec {
    /// Why this spec cannot be opened, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_BYTES {
            return Err(format!("a topic's name has 1 to {MAX_NAME_BYTES} bytes"));
        }
        if self.cadence_ms < MIN_CADENCE_MS {
            return Err(format!("cadence_ms is at least {MIN_CADENCE_MS}"));
        }
        if self.deadline_ms == 0 || self.deadline_ms > self.cadence_ms {
            return Err("deadline_ms is more than 0 and at most cadence_ms (one round is open at a time)".into());
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return Err(format!("workers is 1 to {MAX_WORKERS}"));
        }
        Ok(())
    }
}

/// A topic as the server reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Its id.
    pub id: TopicId,
    /// Its requester's account name.
    pub owner: String,
    /// What was asked.
    pub spec: TopicSpec,
    /// Whether it still opens rounds.
    pub open: bool,
    /// Rounds opened so far (the last round's number).
    pub rounds: u64,
}

/// The topics a caller may see (`GET` [`crate::routes::TOPICS`]): a requester its own, a
/// provider the open ones, an admin all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicList {
    /// Oldest first.
    pub topics: Vec<Topic>,
}

/// Subscribes a worker's socket to one topic's rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSubscribe {
    /// The topic.
    pub topic: TopicId,
}

/// A round is open for answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundOpen {
    /// The topic.
    pub topic: TopicId,
    /// The round's number (1 for the first).
    pub round: u64,
    /// Milliseconds until it closes, as the server counts when it sends this (a worker's
    /// clock need not agree with the server's).
    pub closes_in_ms: u64,
}

/// Why a topic opens no rounds for a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicEndCode {
    /// Its requester closed it: the worker is done with it.
    Closed,
    /// No such topic (yet: a worker file may name a topic before it is opened).
    NotFound,
}

/// The topic opens no more rounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicEnded {
    /// The topic.
    pub topic: TopicId,
    /// Why, for a program.
    pub code: TopicEndCode,
    /// Why, for a person.
    pub reason: String,
}

/// A worker's answer to a round.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// A finite number.
    pub value: f64,
}

/// An answer the server stored (posting the same value again is answered the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerReceipt {
    /// The topic.
    pub topic: TopicId,
    /// The round.
    pub round: u64,
}

/// The ground truth of a closed round, from its requester.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthRequest {
    /// A finite number.
    pub value: f64,
}

/// Whether a round takes answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundStatus {
    /// It takes answers.
    Open,
    /// Its value is final.
    Closed,
}

/// One worker's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The worker's account name.
    pub worker: String,
    /// What it answered.
    pub value: f64,
    /// When the server stored it (Unix milliseconds).
    pub at_ms: u64,
}

/// One answer scored against the ground truth (see the module docs for the formula).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Score {
    /// The worker's account name.
    pub worker: String,
    /// `|value − truth|`.
    pub error: f64,
    /// `1 / (1 + relative error)`.
    pub weight: f64,
    /// Its whole units of the round's reward.
    pub reward: u64,
}

/// A round as the server reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Round {
    /// The topic.
    pub topic: TopicId,
    /// Its number (1 for the first).
    pub number: u64,
    /// Open or closed.
    pub status: RoundStatus,
    /// When it opened (Unix milliseconds).
    pub opened_at_ms: u64,
    /// When it closes, or closed at the latest (Unix milliseconds).
    pub closes_at_ms: u64,
    /// Its answers, in the order they arrived; empty while it is open (workers do not see
    /// each other's answers before the round closes).
    pub answers: Vec<Answer>,
    /// The aggregate of its answers once closed; `None` while open or when nobody answered.
    pub value: Option<f64>,
    /// The ground truth, once posted.
    pub truth: Option<f64>,
    /// Each answer scored, once the truth is posted; in the order of `answers`.
    pub scores: Vec<Score>,
}

/// A page of a topic's rounds (`GET` [`crate::routes::TOPIC_ROUNDS`] `?from=&to=`, both
/// inclusive, at most [`MAX_ROUNDS_PER_PAGE`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundList {
    /// By number.
    pub rounds: Vec<Round>,
}

/// Each answer's score against `truth`, with the whole units of `reward` split in proportion
/// to the weights (the module docs give the rule); in the order of `answers`.
pub fn score(answers: &[Answer], truth: f64, reward: u64) -> Vec<Score> {
    let scale = truth.abs().max(1e-9);
    let mut scores: Vec<Score> = answers
        .iter()
        .map(|a| {
            let error = (a.value - truth).abs();
            Score { worker: a.worker.clone(), error, weight: 1.0 / (1.0 + error / scale), reward: 0 }
        })
        .collect();
    let total: f64 = scores.iter().map(|s| s.weight).sum();
    if scores.is_empty() || total <= 0.0 || !total.is_finite() {
        return scores;
    }
    // Exact shares as fractions of the reward; floors first, then the remainders.
    let shares: Vec<f64> = scores.iter().map(|s| reward as f64 * s.weight / total).collect();
    let mut given = 0u64;
    for (score, share) in scores.iter_mut().zip(&shares) {
        score.reward = (share.floor() as u64).min(reward - given);
        given += score.reward;
    }
    let mut by_remainder: Vec<usize> = (0..scores.len()).collect();
    by_remainder
        .sort_by(|&a, &b| (shares[b] - shares[b].floor()).total_cmp(&(shares[a] - shares[a].floor())).then(a.cmp(&b)));
    for index in by_remainder.into_iter().cycle().take(scores.len() * 2) {
        if given == reward {
            break;
        }
        scores[index].reward += 1;
        given += 1;
    }
    scores
}

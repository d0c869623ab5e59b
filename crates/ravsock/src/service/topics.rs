//! Topics: opened and closed by their requester, answered by providers, read by their
//! requester (rounds by range, a long poll for one round's close) and scored against the
//! ground truth the requester posts. Rounds open and close in the scheduler task
//! ([`crate::scheduler`]); answers go through it too, so that the check that a round is open
//! and the answer's storing cannot interleave with the round's closing.
//!
//! Who sees what: a requester its own topics (another's answer 404), a provider the open
//! topics (their spec, to choose) but no rounds, an admin everything.

use super::access::requester;
use super::ledger::Accounting;
use crate::auth::Role;
use crate::db::ledger::Movement;
use crate::db::topics::StoredTopic;
use crate::db::{Account, Db};
use crate::dispatch::{Command, SchedulerHandle};
use crate::error::{Error, Result};
use ravproto::ledger::{Pocket, Reason};
use ravproto::topics::{
    AnswerReceipt, MAX_OPEN_TOPICS, MAX_ROUNDS_PER_PAGE, Round, RoundList, RoundStatus, Score, Topic, TopicId,
    TopicList, TopicSpec,
};

/// Topics: what the HTTP handlers call.
#[derive(Clone, Debug)]
pub struct Topics {
    db: Db,
    scheduler: SchedulerHandle,
    accounting: Accounting,
}

fn wire(topic: StoredTopic) -> Topic {
    Topic { id: topic.id, owner: topic.owner_name, spec: topic.spec, open: topic.open, rounds: topic.rounds }
}

/// A number a worker or a requester sent: finite, or refused.
fn finite(value: f64, what: &str) -> Result<f64> {
    match value.is_finite() {
        true => Ok(value),
        false => Err(Error::BadRequest(format!("{what} must be a finite number"))),
    }
}

impl Topics {
    /// Topics stored in `db`, run by `scheduler`.
    pub fn new(db: Db, scheduler: SchedulerHandle) -> Topics {
        Topics { db, scheduler, accounting: Accounting::Off }
    }

    /// Opens a topic of the caller's: stored, then started (its first round opens at once).
    pub async fn open(&self, caller: &Account, spec: TopicSpec) -> Result<Topic> {
        requester(caller)?;
        spec.check().map_err(|why| Error::BadRequest(format!("topic: {why}")))?;
        // Checked before storing: two opens at once may each pass it, by one topic each.
        if self.db.topics(Some(caller.id), true).await?.len() >= MAX_OPEN_TOPICS {
            return Err(Error::Conflict(format!(
                "this account has {MAX_OPEN_TOPICS} open topics, the most allowed: close one first"
            )));
        }
        let id = self.db.create_topic(caller.id, &spec).await?;
        self.scheduler.send(Command::TopicStart(id)).await?;
        tracing::info!(topic = %id, name = %spec.name, owner = %caller.name, "topic opened");
        self.owned(caller, id.0).await.map(wire)
    }

    /// The topics the caller may see.
    pub async fn list(&self, caller: &Account) -> Result<TopicList> {
        let topics = match caller.role {
            Role::Admin => self.db.topics(None, false).await?,
            Role::Requester => self.db.topics(Some(caller.id), false).await?,
            Role::Provider => self.db.topics(None, true).await?,
        };
        Ok(TopicList { topics: topics.into_iter().map(wire).collect() })
    }

    /// One topic the caller may see.
    pub async fn get(&self, caller: &Account, id: u64) -> Result<Topic> {
        match caller.role {
            Role::Provider => self.open_topic(id).await.map(wire),
            Role::Requester | Role::Admin => self.owned(caller, id).await.map(wire),
        }
    }

    /// Closes the caller's topic: no more rounds, and its open round closes now.
    pub async fn close(&self, caller: &Account, id: u64) -> Result<Topic> {
        let topic = self.owned(caller, id).await?;
        if topic.open {
            let (done, wait) = tokio::sync::oneshot::channel();
            self.scheduler.send(Command::TopicStop { topic: topic.id, done }).await?;
            wait.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))??;
            self.scheduler.flush().await?;
        }
        self.owned(caller, id).await.map(wire)
    }

    /// Rounds `from..=to` of the caller's topic (at most [`MAX_ROUNDS_PER_PAGE`]); an open
    /// round shows no answers.
    pub async fn rounds(&self, caller: &Account, id: u64, from: u64, to: Option<u64>) -> Result<RoundList> {
        let topic = self.owned(caller, id).await?;
        let from = from.max(1);
        let to = to.unwrap_or(u64::MAX).min(from.saturating_add(MAX_ROUNDS_PER_PAGE - 1));
        if to < from {
            return Err(Error::BadRequest(format!("`to` ({to}) is before `from` ({from})")));
        }
        let mut rounds = self.db.rounds(topic.id, from, to).await?;
        rounds.iter_mut().for_each(hide_open);
        Ok(RoundList { rounds })
    }

    /// Round `number` of the caller's topic once it is closed, waiting up to `timeout_ms`
    /// (at most [`super::MAX_WAIT_MS`]) for it to open and close; as it is then (no round
    /// when it has not opened yet).
    pub async fn wait_round(
        &self,
        caller: &Account,
        id: u64,
        number: u64,
        timeout_ms: Option<u64>,
    ) -> Result<RoundList> {
        // Subscribe before reading, so a close between the two is not missed.
        let mut closed = self.scheduler.subscribe_rounds();
        let topic = self.owned(caller, id).await?;
        let deadline = tokio::time::Instant::now() + super::wait_limit(timeout_ms);
        loop {
            let round = self.db.rounds(topic.id, number, number).await?.pop();
            let ended = !self.db.topic(topic.id).await?.is_some_and(|t| t.open);
            match round {
                Some(round) if round.status == RoundStatus::Closed => return Ok(RoundList { rounds: vec![round] }),
                None if ended => return Err(Error::NotFound(format!("{} ended before round {number}", topic.id))),
                _ => {}
            }
            // Wakes at a close of this round (or of any, when events were missed), or at the
            // deadline.
            let next = async {
                loop {
                    match closed.recv().await {
                        Ok(event) if event.topic == topic.id && event.round >= number => return,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
                    }
                }
            };
            if tokio::time::timeout_at(deadline, next).await.is_err() {
                let mut rounds = self.db.rounds(topic.id, number, number).await?;
                rounds.iter_mut().for_each(hide_open);
                return Ok(RoundList { rounds });
            }
        }
    }

    /// A provider's answer to an open round, stored (or refused) by the scheduler task.
    pub async fn answer(&self, caller: &Account, id: u64, round: u64, value: f64) -> Result<AnswerReceipt> {
        if caller.role == Role::Requester {
            return Err(Error::Forbidden(
                "requester tokens cannot answer topics; a worker uses a provider token".into(),
            ));
        }
        let value = finite(value, "an answer")?;
        // A closed topic is the scheduler's to refuse: an answer it stored before the close,
        // posted again, is still answered as stored.
        let topic = self.db.topic(TopicId(id)).await?.ok_or_else(|| Error::NotFound(format!("no topic {id}")))?;
        let (reply, wait) = tokio::sync::oneshot::channel();
        let command = Command::Answer { topic: topic.id, round, worker: caller.id, value, reply };
        self.scheduler.send(command).await?;
        wait.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))??;
        Ok(AnswerReceipt { topic: topic.id, round })
    }

    /// Whether a truth pays the round's rewards through the ledger.
    pub fn set_accounting(&mut self, accounting: Accounting) {
        self.accounting = accounting;
    }

    /// The ground truth of a closed round of the caller's topic: stored with each answer's
    /// score and share of the reward (once), and the scored round returned.
    pub async fn truth(&self, caller: &Account, id: u64, number: u64, value: f64) -> Result<Round> {
        let topic = self.owned(caller, id).await?;
        let value = finite(value, "the truth")?;
        let round = self
            .db
            .rounds(topic.id, number, number)
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("{} has no round {number}", topic.id)))?;
        // Refused before the rewards are counted, so that a repeat is told it is one (409)
        // rather than that it cannot pay (402); the database checks again as it stores.
        if round.status != RoundStatus::Closed || round.truth.is_some() {
            return Err(Error::Conflict(format!(
                "round {number} of {} is not closed, or its truth was posted already",
                topic.id
            )));
        }
        let scores = ravproto::topics::score(&round.answers, value, topic.spec.reward_per_round);
        let payments = match self.accounting {
            Accounting::On => self.payments(&topic, number, &scores).await?,
            Accounting::Off => Vec::new(),
        };
        self.db.set_truth(topic.id, number, value, &scores, &payments).await?;
        tracing::info!(topic = %topic.id, round = number, "ground truth posted");
        self.db.rounds(topic.id, number, number).await?.pop().ok_or_else(|| Error::Internal("a round vanished".into()))
    }

    /// The movements paying each scored worker its share from the topic's requester, once
    /// checked that the requester has them available (402 otherwise, naming both sums).
    async fn payments(&self, topic: &StoredTopic, number: u64, scores: &[Score]) -> Result<Vec<Movement>> {
        let mut payments = Vec::new();
        for score in scores.iter().filter(|score| score.reward > 0) {
            let worker = self.db.account_id(&score.worker).await?;
            payments.push(Movement {
                key: format!("topic:{}:round:{number}:worker:{worker}", topic.id.0),
                from: Some((topic.owner, Pocket::Available)),
                to: (worker, Pocket::Available),
                amount: score.reward,
                reason: Reason::TopicReward,
                reference: format!("{} round {number}", topic.id),
            });
        }
        let due: u64 = payments.iter().map(|payment| payment.amount).sum();
        let available = self.db.balance(topic.owner, &topic.owner_name).await?.available;
        if due > available {
            return Err(Error::InsufficientFunds(format!(
                "the rewards of round {number} of {} are {due} units, and `{}` has {available} available",
                topic.id, topic.owner_name
            )));
        }
        Ok(payments)
    }

    /// The caller's topic (an admin's: any), or 404.
    async fn owned(&self, caller: &Account, id: u64) -> Result<StoredTopic> {
        requester(caller)?;
        match self.db.topic(TopicId(id)).await? {
            Some(topic) if topic.owner == caller.id || caller.role == Role::Admin => Ok(topic),
            _ => Err(Error::NotFound(format!("no topic {id}"))),
        }
    }

    /// An open topic, for a worker; a closed one is a conflict (its workers stop), a
    /// missing one 404.
    pub async fn open_topic(&self, id: u64) -> Result<StoredTopic> {
        match self.db.topic(TopicId(id)).await? {
            Some(topic) if topic.open => Ok(topic),
            Some(topic) => Err(Error::Conflict(format!("{} is closed", topic.id))),
            None => Err(Error::NotFound(format!("no topic {id}"))),
        }
    }
}

/// Workers do not see each other's answers while a round is open (nor does its requester:
/// one rule for every reader).
fn hide_open(round: &mut Round) {
    if round.status == RoundStatus::Open {
        round.answers.clear();
    }
}

//! Topics in the dispatch task: a topic's state read back from the database when it starts
//! (just opened, or after a restart), rounds stored before workers hear of them, answers
//! stored before they count, and rounds closed with their aggregate.
//!
//! The scheduler counts time from the task's start; the database keeps Unix milliseconds, so
//! a restarted task maps stored times onto its own clock ([`Clock`]).

use super::task::Dispatcher;
use crate::db::topics::Stored;
use crate::error::{Error, Result};
use crate::scheduler::{AnswerRefusal, Event, Millis, OpenRound, Timing};
use ravproto::topics::{EVENT_ROUND_OPEN, EVENT_TOPIC_ENDED, RoundOpen, TopicEndCode, TopicEnded, TopicId};
use tokio::sync::oneshot;

/// The task's clock: milliseconds since it started, and the Unix time of its start.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    pub(super) start: tokio::time::Instant,
    wall_start_ms: u64,
}

impl Clock {
    pub(super) fn new() -> Clock {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Clock { start: tokio::time::Instant::now(), wall_start_ms: wall.as_millis() as u64 }
    }

    /// Now, on the task's clock.
    pub(super) fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    /// A time of the task's clock in Unix milliseconds.
    fn wall(&self, at: Millis) -> u64 {
        self.wall_start_ms + at
    }

    /// A stored Unix time on the task's clock (0 for a time before the task started).
    fn task(&self, wall_ms: u64) -> Millis {
        wall_ms.saturating_sub(self.wall_start_ms)
    }
}

impl Dispatcher {
    /// The scheduler event that runs a stored topic, from its spec and its last round: an
    /// open round goes on until its stored deadline with its stored answers, and the next
    /// round opens one cadence after the last one opened (at once if that time passed).
    pub(super) async fn topic_started(&mut self, topic: TopicId) -> Option<Event> {
        let loaded = async { Ok::<_, Error>((self.db.topic(topic).await?, self.db.last_round(topic).await?)) };
        let (stored, last) = match loaded.await {
            Ok((Some(stored), last)) if stored.open => (stored, last),
            Ok(_) => return None,
            Err(error) => {
                tracing::error!(%topic, cause = %error, "cannot load a topic; it runs after the next start");
                self.health.storage_failed(error.to_string());
                return None;
            }
        };
        let spec = &stored.spec;
        let timing = Timing { cadence_ms: spec.cadence_ms, deadline_ms: spec.deadline_ms, workers: spec.workers };
        let (next_round, next_open_at, open) = match last {
            None => (1, 0, None),
            Some(last) => {
                let open = (!last.closed).then(|| OpenRound {
                    number: last.number,
                    closes_at: self.clock.task(last.closes_at_ms),
                    answers: last.answers,
                });
                (last.number + 1, self.clock.task(last.opened_at_ms + spec.cadence_ms), open)
            }
        };
        tracing::info!(%topic, name = %spec.name, next_round, "topic running");
        Some(Event::TopicStarted { topic, timing, next_round, next_open_at, open })
    }

    /// Closes a topic: stored first, then its workers are told and its open round closes.
    pub(super) async fn topic_stopped(&mut self, topic: TopicId, done: oneshot::Sender<Result<()>>) -> Option<Event> {
        if let Err(error) = self.db.close_topic(topic).await {
            let _ = done.send(Err(error));
            return None;
        }
        let _ = done.send(Ok(()));
        let ended =
            TopicEnded { topic, code: TopicEndCode::Closed, reason: format!("{topic} was closed by its requester") };
        self.outbox.to_workers(topic, EVENT_TOPIC_ENDED, &ended).await;
        Some(Event::TopicStopped { topic })
    }

    /// Stores an answer if its round is open now, and tells the caller; a stored answer counts
    /// towards closing the round. Posting the answer already stored is answered as stored,
    /// even after the round closed (a retry after a lost reply).
    pub(super) async fn answer(
        &mut self,
        topic: TopicId,
        round: u64,
        worker: i64,
        value: f64,
        reply: oneshot::Sender<Result<()>>,
    ) -> Option<Event> {
        let now = self.clock.now();
        if let Err(refusal) = self.scheduler.accepts_answer(topic, round, now) {
            let _ = reply.send(self.refused(topic, round, worker, value, refusal).await);
            return None;
        }
        match self.db.add_answer(topic, round, worker, value, self.clock.wall(now)).await {
            Ok(Stored::New) => {
                self.metrics.topic_answers.inc();
                let _ = reply.send(Ok(()));
                Some(Event::RoundAnswered { topic, round })
            }
            Ok(Stored::Again) => {
                let _ = reply.send(Ok(()));
                None
            }
            Err(error) => {
                let _ = reply.send(Err(error));
                None
            }
        }
    }

    /// Why an answer is refused, unless it is the very answer stored already.
    async fn refused(&self, topic: TopicId, round: u64, worker: i64, value: f64, refusal: AnswerRefusal) -> Result<()> {
        if self.db.answer_of(topic, round, worker).await?.is_some_and(|stored| stored.to_bits() == value.to_bits()) {
            return Ok(());
        }
        match refusal {
            AnswerRefusal::NotOpen => Err(Error::Conflict(format!(
                "round {round} of {topic} is not open: answers are taken only until its deadline"
            ))),
            AnswerRefusal::NoTopic => match self.db.topic(topic).await? {
                Some(_) => Err(Error::Conflict(format!("{topic} is closed"))),
                None => Err(Error::NotFound(format!("no topic {topic}"))),
            },
        }
    }

    /// Stores a round as open, then tells the topic's workers.
    pub(super) async fn open_round(&mut self, topic: TopicId, round: u64, deadline_ms: Millis) -> Result<()> {
        let opened = self.clock.wall(self.clock.now());
        self.db.open_round(topic, round, opened, opened + deadline_ms).await?;
        self.metrics.round("opened");
        tracing::debug!(%topic, round, "round open");
        self.outbox.to_workers(topic, EVENT_ROUND_OPEN, &RoundOpen { topic, round, closes_in_ms: deadline_ms }).await;
        Ok(())
    }

    /// Closes a round with the aggregate of its answers, then tells the long polls.
    pub(super) async fn close_round(&mut self, topic: TopicId, round: u64) -> Result<()> {
        let stored = self.db.topic(topic).await?.ok_or_else(|| Error::NotFound(format!("no topic {topic}")))?;
        let value = self.db.close_round(topic, round, stored.spec.aggregation).await?;
        self.metrics.round("closed");
        tracing::debug!(%topic, round, ?value, "round closed");
        self.outbox.round_closed(topic, round);
        Ok(())
    }
}

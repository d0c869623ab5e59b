//! Topics from the requester's side (Allora's topics): open one with a [`TopicSpec`], and
//! ravsock opens a round every cadence, pushes it to the topic's workers (`ravpy run` with a
//! `[[topics]]` entry) and closes it at its deadline or once enough workers answered. Read
//! rounds by range ([`Client::rounds`]) or wait for each one ([`Client::wait_round`]); post a
//! closed round's ground truth ([`Client::post_truth`]) to score its answers and split its
//! reward (the rule is in `ravproto::topics`).

use crate::client::{Client, WAIT_MS};
use crate::error::Result;
use ravproto::routes;
use ravproto::topics::{Round, RoundList, RoundStatus, Topic, TopicId, TopicList, TopicSpec, TruthRequest};
use std::ops::RangeInclusive;

impl Client {
    /// Opens a topic; its first round opens at once.
    pub async fn open_topic(&self, spec: &TopicSpec) -> Result<Topic> {
        self.post(routes::TOPICS, spec).await
    }

    /// A topic of this requester.
    pub async fn topic(&self, topic: TopicId) -> Result<Topic> {
        self.get(&routes::topic(topic)).await
    }

    /// Every topic of this requester.
    pub async fn topics(&self) -> Result<Vec<Topic>> {
        Ok(self.get::<TopicList>(routes::TOPICS).await?.topics)
    }

    /// Closes a topic: no more rounds; its open round closes now.
    pub async fn close_topic(&self, topic: TopicId) -> Result<Topic> {
        self.post(&routes::topic_close(topic), &()).await
    }

    /// Rounds of a topic by number (at most `ravproto::topics::MAX_ROUNDS_PER_PAGE` at a
    /// time); rounds not opened yet are left out, and an open round shows no answers.
    pub async fn rounds(&self, topic: TopicId, numbers: RangeInclusive<u64>) -> Result<Vec<Round>> {
        let path = format!("{}?from={}&to={}", routes::topic_rounds(topic), numbers.start(), numbers.end());
        Ok(self.get::<RoundList>(&path).await?.rounds)
    }

    /// Round `number` of a topic once it has closed (waiting for it to open and close).
    pub async fn wait_round(&self, topic: TopicId, number: u64) -> Result<Round> {
        loop {
            let path = format!("{}?timeout_ms={WAIT_MS}", routes::topic_round_wait(topic, number));
            let list: RoundList = self.get(&path).await?;
            if let Some(round) = list.rounds.into_iter().find(|r| r.status == RoundStatus::Closed) {
                return Ok(round);
            }
        }
    }

    /// Posts a closed round's ground truth (once per round) and returns the round with each
    /// answer's score and share of the reward.
    pub async fn post_truth(&self, topic: TopicId, number: u64, truth: f64) -> Result<Round> {
        self.post(&routes::topic_truth(topic, number), &TruthRequest { value: truth }).await
    }
}

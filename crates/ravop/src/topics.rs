//! Topics from the requester's side (Allora's topics): open one with a [`TopicSpec`], and
//! ravsock opens a round every cadence, pushes it to the topic's workers (`ravpy run` with a
//! `[[topics]]` entry) and closes it at its deadline or once enough workers answered. Read
//! rounds by range ([`Client::rounds`]), wait for one ([`Client::wait_round`]) or follow them
//! as they close ([`Client::follow_rounds`], each a long poll that the round's close ends); post a
//! closed round's ground truth ([`Client::post_truth`]) to score its answers and split its
//! reward (the rule is in `ravproto::topics`).

use crate::client::{Client, WAIT_MS};
use crate::error::{Error, Result};
use ravproto::messages::ErrorCode;
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

    /// Follows a topic's rounds from round `from` on: each as it closes, in order, until the
    /// topic has closed and its last round was given.
    pub fn follow_rounds(&self, topic: TopicId, from: u64) -> RoundFollower<'_> {
        RoundFollower { client: self, topic, next: from.max(1) }
    }
}

/// A topic's rounds as they close (see [`Client::follow_rounds`]).
#[derive(Debug)]
pub struct RoundFollower<'a> {
    client: &'a Client,
    topic: TopicId,
    next: u64,
}

impl RoundFollower<'_> {
    /// The next round once it has closed; `None` once the topic has closed and every round
    /// it opened was given. A topic that does not exist (or is another's) is an error.
    pub async fn next(&mut self) -> Result<Option<Round>> {
        match self.client.wait_round(self.topic, self.next).await {
            Ok(round) => {
                self.next += 1;
                Ok(Some(round))
            }
            // The server answers 404 both for a round the closed topic never opened and for a
            // topic the caller cannot see: the topic itself says which.
            Err(error @ Error::Server { code: ErrorCode::NotFound, .. }) => match self.client.topic(self.topic).await {
                Ok(topic) if !topic.open && self.next > topic.rounds => Ok(None),
                _ => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    /// The number of the round [`RoundFollower::next`] waits for.
    pub fn position(&self) -> u64 {
        self.next
    }
}

//! The topic tables: topics (`topics`), their rounds (`topic_rounds`, a row written when a round
//! opens) and one answer per worker account and round (`topic_answers`, whose key refuses a
//! second one). Only the dispatch task writes rounds and answers, so a round's closing and a
//! late answer never race.

use super::ledger::{Movement, is_balance_check, movement_statements};
use super::{Db, Statement, from_json, now_secs};
use crate::error::{Error, Result};
use ravproto::topics::{Aggregation, Answer, Round, RoundStatus, Score, TopicId, TopicSpec};

/// A stored topic.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTopic {
    /// Its id.
    pub id: TopicId,
    /// Its requester's account id.
    pub owner: i64,
    /// Its requester's account name.
    pub owner_name: String,
    /// What was asked.
    pub spec: TopicSpec,
    /// Whether it still opens rounds.
    pub open: bool,
    /// The last round's number (0 before the first).
    pub rounds: u64,
}

/// A topic's latest round, as a restarted server resumes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastRound {
    /// Its number.
    pub number: u64,
    /// When it opened (Unix milliseconds).
    pub opened_at_ms: u64,
    /// When it closes (Unix milliseconds).
    pub closes_at_ms: u64,
    /// Whether its value is final.
    pub closed: bool,
    /// Answers stored so far.
    pub answers: u32,
}

/// What became of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// Stored now.
    New,
    /// This worker had answered the same already (a retry after a lost reply).
    Again,
}

#[derive(sqlx::FromRow)]
struct TopicRow {
    id: i64,
    owner: i64,
    owner_name: String,
    spec: String,
    open: i64,
    rounds: i64,
}

impl TopicRow {
    fn into_topic(self) -> Result<StoredTopic> {
        Ok(StoredTopic {
            id: TopicId(self.id as u64),
            owner: self.owner,
            owner_name: self.owner_name,
            spec: from_json(&self.spec)?,
            open: self.open != 0,
            rounds: self.rounds as u64,
        })
    }
}

/// A topic row with its owner's name and its last round's number, for `concat!`.
macro_rules! topic_select {
    () => {
        "SELECT t.id, t.owner, a.name AS owner_name, t.spec, t.open, \
         COALESCE((SELECT MAX(number) FROM topic_rounds r WHERE r.topic_id = t.id), 0) AS rounds \
         FROM topics t JOIN accounts a ON a.id = t.owner"
    };
}

#[derive(sqlx::FromRow)]
struct RoundRow {
    number: i64,
    opened_at_ms: i64,
    closes_at_ms: i64,
    closed: i64,
    value: Option<f64>,
    truth: Option<f64>,
    scores: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AnswerRow {
    number: i64,
    worker: String,
    value: f64,
    at_ms: i64,
}

impl Db {
    /// Stores a new open topic of `owner`.
    pub async fn create_topic(&self, owner: i64, spec: &TopicSpec) -> Result<TopicId> {
        let spec = serde_json::to_string(spec).map_err(|e| Error::Internal(e.to_string()))?;
        let id: i64 = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "INSERT INTO topics (owner, spec, open, created_at) VALUES ($1, $2, 1, $3) RETURNING id"
        )
        .bind(owner)
        .bind(&spec)
        .bind(now_secs())
        .fetch_one(pool)
        .await)?;
        Ok(TopicId(id as u64))
    }

    /// A topic, if it exists.
    pub async fn topic(&self, topic: TopicId) -> Result<Option<StoredTopic>> {
        let row: Option<TopicRow> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(topic_select!(), " WHERE t.id = $1"))
                .bind(topic.0 as i64)
                .fetch_optional(pool)
                .await)?;
        row.map(TopicRow::into_topic).transpose()
    }

    /// Topics, oldest first: of one owner, or every one; only the open ones if `open_only`.
    pub async fn topics(&self, owner: Option<i64>, open_only: bool) -> Result<Vec<StoredTopic>> {
        let rows: Vec<TopicRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(
            topic_select!(),
            " WHERE ($1 IS NULL OR t.owner = $1) AND ($2 = 0 OR t.open = 1) ORDER BY t.id LIMIT 10000"
        ))
        .bind(owner)
        .bind(i64::from(open_only))
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(TopicRow::into_topic).collect()
    }

    /// Marks a topic closed: it opens no more rounds.
    pub async fn close_topic(&self, topic: TopicId) -> Result<()> {
        on_backend!(self, |pool, sql, DB| sqlx::query("UPDATE topics SET open = 0 WHERE id = $1")
            .bind(topic.0 as i64)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A topic's latest round, with its answer count.
    pub async fn last_round(&self, topic: TopicId) -> Result<Option<LastRound>> {
        let row: Option<(i64, i64, i64, i64, i64)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT r.number, r.opened_at_ms, r.closes_at_ms, r.closed, \
             (SELECT COUNT(*) FROM topic_answers a WHERE a.topic_id = r.topic_id AND a.number = r.number) \
             FROM topic_rounds r WHERE r.topic_id = $1 ORDER BY r.number DESC LIMIT 1"
        )
        .bind(topic.0 as i64)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(number, opened, closes, closed, answers)| LastRound {
            number: number as u64,
            opened_at_ms: opened as u64,
            closes_at_ms: closes as u64,
            closed: closed != 0,
            answers: answers as u32,
        }))
    }

    /// Stores a round as open (again: a round already stored is left as it is).
    pub async fn open_round(&self, topic: TopicId, number: u64, opened_at_ms: u64, closes_at_ms: u64) -> Result<()> {
        on_backend!(self, |pool, sql, DB| sqlx::query(
            "INSERT INTO topic_rounds (topic_id, number, opened_at_ms, closes_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (topic_id, number) DO NOTHING"
        )
        .bind(topic.0 as i64)
        .bind(number as i64)
        .bind(opened_at_ms as i64)
        .bind(closes_at_ms as i64)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Stores a worker's answer to a round (the caller checked that it is open). The same
    /// value again is [`Stored::Again`]; another value is refused.
    pub async fn add_answer(&self, topic: TopicId, number: u64, worker: i64, value: f64, at_ms: u64) -> Result<Stored> {
        let inserted = on_backend!(self, |pool, sql, DB| sqlx::query(
            "INSERT INTO topic_answers (topic_id, number, worker, value, at_ms) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(topic.0 as i64)
        .bind(number as i64)
        .bind(worker)
        .bind(value)
        .bind(at_ms as i64)
        .execute(pool)
        .await
        .map(|_| ()));
        match inserted {
            Ok(_) => Ok(Stored::New),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let stored = self.answer_of(topic, number, worker).await?;
                match stored.is_some_and(|stored| stored.to_bits() == value.to_bits()) {
                    true => Ok(Stored::Again),
                    false => Err(Error::Conflict(format!(
                        "this worker already answered round {number} of {topic} with another value"
                    ))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A worker's stored answer to a round.
    pub async fn answer_of(&self, topic: TopicId, number: u64, worker: i64) -> Result<Option<f64>> {
        Ok(on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT value FROM topic_answers WHERE topic_id = $1 AND number = $2 AND worker = $3"
        )
        .bind(topic.0 as i64)
        .bind(number as i64)
        .bind(worker)
        .fetch_optional(pool)
        .await)?)
    }

    /// Closes a round: its value is the aggregation of its answers (`None` without any),
    /// stored with the closed mark in one statement. Closing a closed round changes nothing.
    pub async fn close_round(&self, topic: TopicId, number: u64, aggregation: Aggregation) -> Result<Option<f64>> {
        let values: Vec<f64> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT value FROM topic_answers WHERE topic_id = $1 AND number = $2"
        )
        .bind(topic.0 as i64)
        .bind(number as i64)
        .fetch_all(pool)
        .await)?;
        let value = aggregation.of(&values);
        on_backend!(self, |pool, sql, DB| sqlx::query(
            "UPDATE topic_rounds SET closed = 1, value = $3 WHERE topic_id = $1 AND number = $2 AND closed = 0"
        )
        .bind(topic.0 as i64)
        .bind(number as i64)
        .bind(value)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(value)
    }

    /// Rounds `from..=to` of a topic with their answers, by number.
    pub async fn rounds(&self, topic: TopicId, from: u64, to: u64) -> Result<Vec<Round>> {
        let (from, to) = (from as i64, to.min(i64::MAX as u64) as i64);
        let rows: Vec<RoundRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT number, opened_at_ms, closes_at_ms, closed, value, truth, scores FROM topic_rounds \
             WHERE topic_id = $1 AND number BETWEEN $2 AND $3 ORDER BY number"
        )
        .bind(topic.0 as i64)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?;
        let answers: Vec<AnswerRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT a.number, w.name AS worker, a.value, a.at_ms FROM topic_answers a \
             JOIN accounts w ON w.id = a.worker \
             WHERE a.topic_id = $1 AND a.number BETWEEN $2 AND $3 ORDER BY a.number, a.at_ms, a.worker"
        )
        .bind(topic.0 as i64)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?;
        let mut answers = answers.into_iter().peekable();
        rows.into_iter()
            .map(|row| {
                let mut mine = Vec::new();
                while answers.next_if(|a| a.number < row.number).is_some() {}
                while let Some(answer) = answers.next_if(|a| a.number == row.number) {
                    mine.push(Answer { worker: answer.worker, value: answer.value, at_ms: answer.at_ms as u64 });
                }
                let scores: Vec<Score> = row.scores.as_deref().map(from_json).transpose()?.unwrap_or_default();
                Ok(Round {
                    topic,
                    number: row.number as u64,
                    status: if row.closed != 0 { RoundStatus::Closed } else { RoundStatus::Open },
                    opened_at_ms: row.opened_at_ms as u64,
                    closes_at_ms: row.closes_at_ms as u64,
                    answers: mine,
                    value: row.value,
                    truth: row.truth,
                    scores,
                })
            })
            .collect()
    }

    /// Stores a closed round's ground truth and its scored answers, once (a second truth is
    /// refused), with `payments` (the rewards, when accounting is on) in the same transaction:
    /// a round is scored and paid together or not at all. A payer short of funds is refused
    /// with nothing stored.
    pub async fn set_truth(
        &self,
        topic: TopicId,
        number: u64,
        truth: f64,
        scores: &[Score],
        payments: &[Movement],
    ) -> Result<()> {
        let scores = serde_json::to_string(scores).map_err(|e| Error::Internal(e.to_string()))?;
        let mut statements = Vec::new();
        for payment in payments {
            statements.extend(movement_statements(payment)?);
        }
        let store = async {
            let mut tx = self.write_tx().await?;
            let scored = tx
                .ids(vec![
                    Statement::new("UPDATE topic_rounds SET truth = ")
                        .float(truth)
                        .sql(", scores = ")
                        .text(Some(scores))
                        .sql(" WHERE topic_id = ")
                        .int(topic.0 as i64)
                        .sql(" AND number = ")
                        .int(number as i64)
                        .sql(" AND closed = 1 AND truth IS NULL RETURNING number"),
                ])
                .await?;
            if scored.is_empty() {
                return Err(Error::Conflict(format!(
                    "round {number} of {topic} is not closed, or its truth was posted already"
                )));
            }
            for statement in statements {
                tx.execute(statement).await?;
            }
            Ok(tx.commit().await?)
        };
        // On PostgreSQL a balance CHECK refuses the statement; on SQLite, the commit.
        match store.await {
            Err(error) if is_balance_check(&error) => Err(Error::InsufficientFunds(format!(
                "the rewards of round {number} of {topic} are more than its requester has available"
            ))),
            other => other,
        }
    }
}

//! The job tables: jobs (`jobs`), their slices (`job_slices`, one row per slice, its outcome
//! written once, numbered in the order outcomes were stored) and compute groups
//! (`compute_groups`, secrets as salted SHA-256). Slices and outcomes are written only by the
//! dispatch task, so adding slices and storing outcomes never race.

use super::write::Statement;
use super::{Db, from_json, now_secs, to_json};
use crate::error::{Error, Result};
use ravproto::jobs::{BigSlice, JobId, JobState, JobWork, Outcome, PublicInfo, SliceCounts, SliceResult, WorkEvent};
use ravproto::messages::Requirements;
use sha2::{Digest, Sha256};

/// Slice rows per INSERT: 3 parameters each, under SQLite's 32,766.
const INSERT_CHUNK: usize = 1_000;

/// What the scheduler and workers read of a job (stored as JSON; the module is apart).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobMeta {
    /// The groups' keys; none: public.
    pub groups: Vec<String>,
    pub requirements: Requirements,
    pub slice_payment_offer: u64,
    pub public: Option<PublicInfo>,
}

/// A stored job.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredJob {
    pub id: JobId,
    /// The requester's account id.
    pub owner: i64,
    /// The requester's account name.
    pub owner_name: String,
    pub meta: JobMeta,
    pub state: JobState,
    /// Slices in the job.
    pub total: u64,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    owner: i64,
    owner_name: String,
    meta: String,
    state: i64,
    total: i64,
}

impl JobRow {
    fn into_job(self) -> Result<StoredJob> {
        Ok(StoredJob {
            id: JobId(self.id as u64),
            owner: self.owner,
            owner_name: self.owner_name,
            meta: from_json(&self.meta)?,
            state: JobState::from_code(self.state)
                .ok_or_else(|| Error::Internal(format!("unknown job state {} in the database", self.state)))?,
            total: self.total as u64,
        })
    }
}

macro_rules! job_select {
    () => {
        "SELECT j.id, j.owner, a.name AS owner_name, j.meta, j.state, j.total FROM jobs j JOIN accounts a ON a.id = j.owner"
    };
}

/// A slice's stored outcome.
#[derive(sqlx::FromRow)]
struct DoneRow {
    idx: i64,
    done_seq: i64,
    failed: i64,
    result: Vec<u8>,
    result_len: Option<i64>,
    events: Option<String>,
}

/// One slice's outcome, to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOutcome {
    pub slice: u64,
    /// Its place in the job's order of stored outcomes (from 1).
    pub seq: u64,
    pub outcome: Outcome,
    pub events: Vec<WorkEvent>,
}

/// A stored outcome with its events, as the event long poll reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct DoneSlice {
    pub seq: u64,
    pub result: SliceResult,
    pub events: Vec<WorkEvent>,
}

impl DoneRow {
    fn into_done(self) -> Result<DoneSlice> {
        let outcome = match (self.failed, self.result_len) {
            (0, Some(len)) => Outcome::Stored { len: len as u64 },
            (0, None) => Outcome::Value(ravproto::jobs::Blob(self.result)),
            _ => Outcome::Failed(
                serde_json::from_slice(&self.result)
                    .map_err(|e| Error::Internal(format!("unreadable slice failure in the database: {e}")))?,
            ),
        };
        let events = match self.events {
            Some(text) => from_json(&text)?,
            None => Vec::new(),
        };
        Ok(DoneSlice { seq: self.done_seq as u64, result: SliceResult { slice: self.idx as u64, outcome }, events })
    }
}

/// Slices to store: their bytes, and the lengths of those whose bytes are in the blob store
/// (by place in `inline`, whose entry is empty).
#[derive(Clone, Copy, Debug)]
pub struct NewSlices<'a> {
    pub inline: &'a [Vec<u8>],
    pub big: &'a [BigSlice],
}

/// Where a slice's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SliceInput {
    /// In the database.
    Inline(Vec<u8>),
    /// In the blob store, this many bytes.
    Blob(u64),
}

fn slice_inserts(job: JobId, first: u64, slices: NewSlices<'_>) -> Vec<Statement> {
    let big: std::collections::BTreeMap<u64, u64> = slices.big.iter().map(|b| (b.at, b.len)).collect();
    slices
        .inline
        .chunks(INSERT_CHUNK)
        .enumerate()
        .map(|(chunk, rows)| {
            let mut statement = Statement::new("INSERT INTO job_slices (job_id, idx, input, input_len) VALUES ");
            for (i, input) in rows.iter().enumerate() {
                let at = (chunk * INSERT_CHUNK + i) as u64;
                statement = statement
                    .sql(if i == 0 { "(" } else { ", (" })
                    .int(job.0 as i64)
                    .sql(", ")
                    .int((first + at) as i64)
                    .sql(", ")
                    .blob(input.clone())
                    .sql(", ");
                statement = match big.get(&at) {
                    Some(&len) => statement.int(len as i64),
                    None => statement.sql("NULL"),
                }
                .sql(")");
            }
            statement
        })
        .collect()
}

fn salted(salt: &[u8], secret: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize().to_vec()
}

impl Db {
    /// Stores a new job of `owner` with its first slices, open or closed. `place_big` puts the
    /// big slices' bytes in the blob store under the job's id before the rows commit, so a
    /// stored row never names bytes that are not there.
    pub async fn create_job(
        &self,
        owner: i64,
        meta: &JobMeta,
        work: &JobWork,
        state: JobState,
        slices: NewSlices<'_>,
        place_big: impl FnOnce(JobId) -> Result<()>,
    ) -> Result<JobId> {
        let work = serde_json::to_vec(work).map_err(|e| Error::Internal(e.to_string()))?;
        let mut tx = self.write_tx().await?;
        let insert = Statement::new("INSERT INTO jobs (owner, meta, work, state, total, created_at) VALUES (")
            .int(owner)
            .sql(", ")
            .text(Some(to_json(meta)?))
            .sql(", ")
            .blob(work)
            .sql(", ")
            .int(state.code())
            .sql(", ")
            .int(slices.inline.len() as i64)
            .sql(", ")
            .int(now_secs())
            .sql(") RETURNING id");
        let id = *tx.ids(vec![insert]).await?.first().ok_or_else(|| Error::Internal("no job id".into()))?;
        let job = JobId(id as u64);
        for statement in slice_inserts(job, 0, slices) {
            tx.execute(statement).await?;
        }
        place_big(job)?;
        tx.commit().await?;
        Ok(job)
    }

    /// Appends slices to a job that holds `first` already (big slices' bytes already in the
    /// blob store).
    pub async fn add_slices(&self, job: JobId, first: u64, slices: NewSlices<'_>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for statement in slice_inserts(job, first, slices) {
            tx.execute(statement).await?;
        }
        tx.execute(
            Statement::new("UPDATE jobs SET total = ")
                .int((first + slices.inline.len() as u64) as i64)
                .sql(" WHERE id = ")
                .int(job.0 as i64),
        )
        .await?;
        Ok(tx.commit().await?)
    }

    /// A job, if it exists.
    pub async fn job(&self, job: JobId) -> Result<Option<StoredJob>> {
        let row: Option<JobRow> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(job_select!(), " WHERE j.id = $1"))
                .bind(job.0 as i64)
                .fetch_optional(pool)
                .await)?;
        row.map(JobRow::into_job).transpose()
    }

    /// Jobs, oldest first: of one owner or all; only those not ended if `running_only`.
    pub async fn jobs(&self, owner: Option<i64>, running_only: bool) -> Result<Vec<StoredJob>> {
        let rows: Vec<JobRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(concat!(
            job_select!(),
            " WHERE ($1 IS NULL OR j.owner = $1) AND ($2 = 0 OR j.state < 2) ORDER BY j.id LIMIT 10000"
        ))
        .bind(owner)
        .bind(i64::from(running_only))
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    /// The work function of a job.
    pub async fn job_work(&self, job: JobId) -> Result<JobWork> {
        let bytes: Vec<u8> =
            on_backend!(self, |pool, sql, DB| sqlx::query_scalar("SELECT work FROM jobs WHERE id = $1")
                .bind(job.0 as i64)
                .fetch_optional(pool)
                .await)?
            .ok_or_else(|| Error::NotFound(format!("no {job}")))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Internal(format!("unreadable job work in the database: {e}")))
    }

    /// Sets a job's state.
    pub async fn set_job_state(&self, job: JobId, state: JobState) -> Result<()> {
        on_backend!(self, |pool, sql, DB| sqlx::query("UPDATE jobs SET state = $1 WHERE id = $2")
            .bind(state.code())
            .bind(job.0 as i64)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The slices of a job without an outcome, in order.
    pub async fn pending_slices(&self, job: JobId) -> Result<Vec<u64>> {
        let rows: Vec<i64> = on_backend!(self, |pool, sql, DB| sqlx::query_scalar(
            "SELECT idx FROM job_slices WHERE job_id = $1 AND done_seq IS NULL ORDER BY idx"
        )
        .bind(job.0 as i64)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|idx| idx as u64).collect())
    }

    /// How many of a job's slices have a result, and how many failed.
    pub async fn slice_counts(&self, job: JobId, total: u64) -> Result<SliceCounts> {
        let (done, failed): (i64, i64) = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT COUNT(done_seq), COUNT(CASE WHEN failed = 1 THEN 1 END) FROM job_slices WHERE job_id = $1"
        )
        .bind(job.0 as i64)
        .fetch_one(pool)
        .await)?;
        Ok(SliceCounts { total, distributed: 0, computed: (done - failed) as u64, failed: failed as u64 })
    }

    /// The inputs of these slices of a job (in any order; missing ones are left out).
    pub async fn slice_inputs(&self, job: JobId, slices: &[u64]) -> Result<Vec<(u64, SliceInput)>> {
        let (Some(&low), Some(&high)) = (slices.iter().min(), slices.iter().max()) else { return Ok(Vec::new()) };
        let rows: Vec<(i64, Vec<u8>, Option<i64>)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT idx, input, input_len FROM job_slices WHERE job_id = $1 AND idx >= $2 AND idx <= $3"
        )
        .bind(job.0 as i64)
        .bind(low as i64)
        .bind(high as i64)
        .fetch_all(pool)
        .await)?;
        // A bundle is mostly a run of numbers; a retried slice may sit apart from it.
        let wanted: std::collections::BTreeSet<u64> = slices.iter().copied().collect();
        Ok(rows
            .into_iter()
            .filter(|(idx, _, _)| wanted.contains(&(*idx as u64)))
            .map(|(idx, input, len)| {
                (idx as u64, len.map_or(SliceInput::Inline(input), |len| SliceInput::Blob(len as u64)))
            })
            .collect())
    }

    /// Stores slices' outcomes in one transaction (a slice that has one keeps it).
    pub async fn store_outcomes(&self, job: JobId, outcomes: &[NewOutcome]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for done in outcomes {
            let (failed, bytes, stored) = match &done.outcome {
                Outcome::Value(value) => (0, value.0.clone(), None),
                Outcome::Stored { len } => (0, Vec::new(), Some(*len)),
                Outcome::Failed(failure) => {
                    (1, serde_json::to_vec(failure).map_err(|e| Error::Internal(e.to_string()))?, None)
                }
            };
            let events = if done.events.is_empty() { None } else { Some(to_json(&done.events)?) };
            let statement = Statement::new("UPDATE job_slices SET done_seq = ")
                .int(done.seq as i64)
                .sql(", failed = ")
                .int(failed)
                .sql(", result = ")
                .blob(bytes)
                .sql(", result_len = ");
            let statement = match stored {
                Some(len) => statement.int(len as i64),
                None => statement.sql("NULL"),
            }
            .sql(", events = ")
            .text(events)
            .sql(" WHERE job_id = ")
            .int(job.0 as i64)
            .sql(" AND idx = ")
            .int(done.slice as i64)
            .sql(" AND done_seq IS NULL");
            tx.execute(statement).await?;
        }
        Ok(tx.commit().await?)
    }

    /// The outcomes of the slices `from..to` that have one, in slice order.
    pub async fn slice_results(&self, job: JobId, from: u64, to: u64) -> Result<Vec<SliceResult>> {
        let rows: Vec<DoneRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT idx, done_seq, failed, result, result_len, NULL AS events FROM job_slices \
             WHERE job_id = $1 AND idx >= $2 AND idx < $3 AND done_seq IS NOT NULL ORDER BY idx"
        )
        .bind(job.0 as i64)
        .bind(from as i64)
        .bind(to as i64)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(|row| row.into_done().map(|done| done.result)).collect()
    }

    /// At most `limit` outcomes stored after the first `after`, in the order they were stored.
    pub async fn outcomes_after(&self, job: JobId, after: u64, limit: u64) -> Result<Vec<DoneSlice>> {
        let rows: Vec<DoneRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT idx, done_seq, failed, result, result_len, events FROM job_slices \
             WHERE job_id = $1 AND done_seq > $2 ORDER BY done_seq LIMIT $3"
        )
        .bind(job.0 as i64)
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(DoneRow::into_done).collect()
    }

    /// Makes sure the compute group `key` exists with `secret`: created by the first job that
    /// names it; a later one must give the same secret. Answers whether it does.
    pub async fn ensure_group(&self, key: &str, secret: &str) -> Result<bool> {
        if let Some(matches) = self.check_group(key, secret).await? {
            return Ok(matches);
        }
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| Error::Internal(format!("no randomness for a group's salt: {e}")))?;
        on_backend!(self, |pool, sql, DB| {
            sqlx::query(
            "INSERT INTO compute_groups (key, salt, hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING"
        )
        .bind(key)
        .bind(salt.to_vec())
        .bind(salted(&salt, secret))
        .bind(now_secs())
        .execute(pool)
        .await
        .map(|_| ())
        })?;
        // Two jobs naming a new group at once: the one stored first sets the secret.
        Ok(self.check_group(key, secret).await? == Some(true))
    }

    /// Whether `secret` is the secret of group `key`; `None` when there is no such group.
    pub async fn check_group(&self, key: &str, secret: &str) -> Result<Option<bool>> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as("SELECT salt, hash FROM compute_groups WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await)?;
        Ok(row.map(|(salt, hash)| salted(&salt, secret) == hash))
    }
}

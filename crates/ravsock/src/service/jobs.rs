//! Jobs: created, fed, closed and cancelled by their requester, read back by range and
//! followed with a long poll of events. The server never runs a work function: it checks the
//! module's header and sizes, and each provider's sandbox checks the rest.
//!
//! Who sees what: a requester its own jobs (another's answer 404), a provider the running
//! jobs (what `ravpy list-jobs` shows: public info, groups' keys, offer; never slices or
//! results), an admin everything.

use super::access::requester;
use super::wait_limit;
use crate::auth::Role;
use crate::bulk::{Bulk, StagedSlices, requester_user};
use crate::db::jobs::{DoneSlice, JobMeta, NewSlices, StoredJob};
use crate::db::{Account, Db};
use crate::dispatch::{Command, SchedulerHandle};
use crate::error::{Error, Result};
use ravproto::jobs::{
    AddSlices, BigSlice, EventPage, Job, JobEvent, JobId, JobList, JobSpec, JobState, MAX_PAGE, Outcome, ResultPage,
    SliceCounts, SliceFile, SlicesAdded, WorkEvent,
};

/// Most outcomes one event page carries.
const EVENTS_PER_PAGE: u64 = 2_000;

/// Jobs: what the HTTP handlers call.
#[derive(Clone, Debug)]
pub struct Jobs {
    db: Db,
    scheduler: SchedulerHandle,
    bulk: Bulk,
}

fn wire(job: StoredJob, counts: SliceCounts) -> Job {
    Job {
        id: job.id,
        owner: job.owner_name,
        state: job.state,
        counts,
        public: job.meta.public,
        groups: job.meta.groups,
        requirements: job.meta.requirements,
        slice_payment_offer: job.meta.slice_payment_offer,
    }
}

impl Jobs {
    /// Jobs stored in `db`, run by `scheduler`, big slices in `bulk`.
    pub fn new(db: Db, scheduler: SchedulerHandle, bulk: Bulk) -> Jobs {
        Jobs { db, scheduler, bulk }
    }

    /// Checks the caller's uploads of `big` slices and stages them (on a blocking thread: it
    /// reads every byte).
    async fn stage(&self, caller: &Account, big: &[BigSlice]) -> Result<Option<StagedSlices>> {
        if big.is_empty() {
            return Ok(None);
        }
        let bytes = big.iter().map(|slice| slice.len).sum();
        let (bulk, user, big) = (self.bulk.clone(), requester_user(caller.id), big.to_vec());
        let staged = tokio::task::spawn_blocking(move || bulk.stage_slices(&user, &big))
            .await
            .map_err(|e| Error::Internal(format!("staging big slices failed: {e}")))??;
        self.scheduler.metrics().ftp("from_requesters", bytes);
        Ok(Some(staged))
    }

    /// Stores a job of the caller's with its first slices, then starts it.
    pub async fn create(&self, caller: &Account, spec: JobSpec) -> Result<Job> {
        requester(caller)?;
        spec.check().map_err(|why| Error::BadRequest(format!("job: {why}")))?;
        for group in &spec.groups {
            if !self.db.ensure_group(&group.key, &group.secret).await? {
                return Err(Error::Forbidden(format!(
                    "the secret given for compute group {} is not its secret",
                    group.key
                )));
            }
        }
        let mut groups: Vec<String> = spec.groups.iter().map(|g| g.key.clone()).collect();
        groups.sort();
        groups.dedup();
        let meta = JobMeta {
            groups,
            requirements: spec.requirements,
            slice_payment_offer: spec.slice_payment_offer,
            public: spec.public,
        };
        let state = if spec.auto_close { JobState::Closed } else { JobState::Open };
        let staged = self.stage(caller, &spec.big).await?;
        let slices = NewSlices { inline: &spec.slices, big: &spec.big };
        let place = |job| staged.as_ref().map_or(Ok(()), |staged| self.bulk.place_slices(staged, job, 0));
        let id = self.db.create_job(caller.id, &meta, &spec.work, state, slices, place).await?;
        if let Some(staged) = &staged {
            self.bulk.forget_uploads(staged);
        }
        self.scheduler.send(Command::JobStart(id)).await?;
        tracing::info!(job = %id, slices = spec.slices.len(), big = spec.big.len(), owner = %caller.name, "job created");
        self.get(caller, id.0).await
    }

    /// The jobs the caller may see.
    pub async fn list(&self, caller: &Account) -> Result<JobList> {
        let jobs = match caller.role {
            Role::Admin => self.db.jobs(None, false).await?,
            Role::Requester => self.db.jobs(Some(caller.id), false).await?,
            Role::Provider => self.db.jobs(None, true).await?,
        };
        let mut listed = Vec::with_capacity(jobs.len());
        for job in jobs {
            let counts = self.counts(&job).await?;
            listed.push(wire(job, counts));
        }
        Ok(JobList { jobs: listed })
    }

    /// One job the caller may see.
    pub async fn get(&self, caller: &Account, id: u64) -> Result<Job> {
        let job = match caller.role {
            Role::Provider => {
                self.db.job(JobId(id)).await?.filter(|job| !job.state.ended()).ok_or_else(|| not_found(id))?
            }
            Role::Requester | Role::Admin => self.owned(caller, id).await?,
        };
        let counts = self.counts(&job).await?;
        Ok(wire(job, counts))
    }

    /// Adds slices to an open job of the caller's (big ones staged here, numbered and stored by
    /// the dispatch task).
    pub async fn add_slices(&self, caller: &Account, id: u64, added: AddSlices) -> Result<SlicesAdded> {
        let job = self.owned(caller, id).await?;
        ravproto::jobs::check_slices(&added.slices, &added.big, 0).map_err(Error::BadRequest)?;
        let staged = self.stage(caller, &added.big).await?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.scheduler.send(Command::AddSlices { job: job.id, added, staged, reply }).await?;
        answer.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))?
    }

    /// Closes (no more slices) or cancels (nothing more computed) a job of the caller's.
    pub async fn end(&self, caller: &Account, id: u64, cancel: bool) -> Result<Job> {
        let job = self.owned(caller, id).await?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.scheduler.send(Command::JobEnd { job: job.id, cancel, reply }).await?;
        answer.await.map_err(|_| Error::Internal("the scheduler task has stopped".into()))??;
        self.get(caller, id).await
    }

    /// The outcomes of slices `from..to` of a job of the caller's.
    pub async fn results(&self, caller: &Account, id: u64, from: u64, to: Option<u64>) -> Result<ResultPage> {
        let job = self.owned(caller, id).await?;
        let to = to.unwrap_or(job.total).min(from.saturating_add(MAX_PAGE));
        if to < from {
            return Err(Error::BadRequest(format!("the range {from}..{to} is empty")));
        }
        Ok(ResultPage { results: self.db.slice_results(job.id, from, to).await? })
    }

    /// Places the stored result of `slice` (one over the inline limit) in the caller's ravftp
    /// home; answers the file to download.
    pub async fn result_file(&self, caller: &Account, id: u64, slice: u64) -> Result<SliceFile> {
        let job = self.owned(caller, id).await?;
        let stored = self.db.slice_results(job.id, slice, slice.saturating_add(1)).await?;
        if !matches!(stored.first().map(|r| &r.outcome), Some(Outcome::Stored { .. })) {
            return Err(Error::NotFound(format!("slice {slice} of job {id} has no result kept as a file")));
        }
        let (bulk, user) = (self.bulk.clone(), requester_user(caller.id));
        let (name, len) = tokio::task::spawn_blocking(move || bulk.lend_result(job.id, slice, &user))
            .await
            .map_err(|e| Error::Internal(format!("placing a result failed: {e}")))??;
        self.scheduler.metrics().ftp("to_requesters", len);
        Ok(SliceFile { name, len })
    }

    /// The events of slices finished after the first `after`, waiting up to `timeout_ms` for
    /// one; the page ends with the job's counts, and with `complete` once it has ended and
    /// every event was read.
    pub async fn events(&self, caller: &Account, id: u64, after: u64, timeout_ms: Option<u64>) -> Result<EventPage> {
        let job = self.owned(caller, id).await?;
        // Subscribed before the first read: an outcome stored between them wakes the wait.
        let mut changes = self.scheduler.subscribe_jobs();
        let deadline = tokio::time::Instant::now() + wait_limit(timeout_ms);
        loop {
            // The state first: a job seen ended has every outcome stored (the dispatch task
            // ends it after storing its last), so the outcomes read next are all there are.
            // Read the other way round, the last outcome could be stored between the two reads
            // and the page end with `complete` without it.
            let stored = self.db.job(job.id).await?.ok_or_else(|| not_found(id))?;
            let done = self.db.outcomes_after(job.id, after, EVENTS_PER_PAGE).await?;
            let finished = stored.state.ended() && (done.len() as u64) < EVENTS_PER_PAGE;
            if !done.is_empty() || finished {
                let counts = self.counts(&stored).await?;
                return Ok(page(after, done, finished.then_some((stored.state, counts)), counts));
            }
            let woke = tokio::time::timeout_at(deadline, async {
                loop {
                    match changes.recv().await {
                        Ok(changed) if changed == job.id => return,
                        Ok(_) => {}
                        // Missed some: look again.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
                    }
                }
            })
            .await;
            if woke.is_err() {
                let counts = self.counts(&stored).await?;
                return Ok(EventPage { events: vec![JobEvent::Status { counts }], next: after });
            }
        }
    }

    /// The counts of a job: the scheduler's while it runs (with the slices out), else the
    /// database's.
    async fn counts(&self, job: &StoredJob) -> Result<SliceCounts> {
        if !job.state.ended() {
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.scheduler.send(Command::JobCounts(job.id, reply)).await?;
            if let Ok(Some(counts)) = answer.await {
                return Ok(counts);
            }
        }
        self.db.slice_counts(job.id, job.total).await
    }

    async fn owned(&self, caller: &Account, id: u64) -> Result<StoredJob> {
        requester(caller)?;
        let job = self.db.job(JobId(id)).await?.ok_or_else(|| not_found(id))?;
        if caller.role != Role::Admin && job.owner != caller.id {
            return Err(not_found(id));
        }
        Ok(job)
    }
}

fn not_found(id: u64) -> Error {
    Error::NotFound(format!("no job {id}"))
}

/// The events of `done`, in the order the outcomes were stored: each slice's console lines
/// and custom events, then its result or error; then the counts, and the end if it ended.
fn page(after: u64, done: Vec<DoneSlice>, ended: Option<(JobState, SliceCounts)>, counts: SliceCounts) -> EventPage {
    let next = done.last().map_or(after, |d| d.seq);
    let mut events = Vec::with_capacity(done.len() + 2);
    for slice in done {
        let index = slice.result.slice;
        for event in slice.events {
            events.push(match event {
                WorkEvent::Console { level, text } => JobEvent::Console { slice: index, level, text },
                WorkEvent::Custom { name, value } => JobEvent::Custom { slice: index, name, value },
            });
        }
        events.push(match slice.result.outcome {
            Outcome::Value(value) => JobEvent::Result { slice: index, value },
            Outcome::Stored { len } => JobEvent::StoredResult { slice: index, len },
            Outcome::Failed(failure) => JobEvent::Error { slice: index, failure },
        });
    }
    events.push(JobEvent::Status { counts });
    if let Some((state, counts)) = ended {
        events.push(JobEvent::Complete { state, counts });
    }
    EventPage { events, next }
}

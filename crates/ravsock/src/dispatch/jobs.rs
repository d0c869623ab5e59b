//! Jobs in the dispatch task: a stored job started (or resumed) in the scheduler, slices
//! added and jobs closed or cancelled in the same task that stores outcomes (so the numbers
//! slices get and the outcomes' order never race), bundles sent with the work function the
//! first time a connection gets the job, and a provider's outcomes stored in one transaction
//! before the scheduler counts them.

use super::task::Dispatcher;
use crate::bulk::StagedSlices;
use crate::db::jobs::{NewOutcome, NewSlices, SliceInput};
use crate::error::{Error, Result};
use crate::scheduler::{AssignmentId, Event, JobPlan, SliceAssignment};
use ravproto::ProviderId;
use ravproto::jobs::{
    AddSlices, BundleResults, BundledSlice, EVENT_JOB_ENDED, EVENT_SLICES, EVENT_WITHDRAW_SLICES, JobEnded, JobId,
    JobState, Outcome, SliceBundle, SliceCounts, SliceFile, SlicesAdded,
};
use ravproto::provider::Withdraw;
use ravproto::work::SliceFailure;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::oneshot;

impl Dispatcher {
    /// Loads a stored job and starts it: its slices without an outcome are queued.
    pub(super) async fn job_started(&mut self, job: JobId) -> Option<Event> {
        let loaded = async {
            let stored = self.db.job(job).await?.ok_or_else(|| Error::NotFound(format!("no {job}")))?;
            let work = self.db.job_work(job).await?;
            let pending = self.db.pending_slices(job).await?;
            let counts = self.db.slice_counts(job, stored.total).await?;
            Ok::<_, Error>((stored, work, pending, counts))
        };
        let (stored, work, pending, counts) = match loaded.await {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%job, cause = %error, "cannot load a job; it is resumed at the next start");
                return None;
            }
        };
        if stored.state.ended() {
            return None;
        }
        tracing::info!(%job, total = stored.total, pending = pending.len(), "job running");
        let plan = JobPlan {
            groups: stored.meta.groups.iter().cloned().collect(),
            requirements: stored.meta.requirements.clone(),
            pending,
            total: stored.total,
            computed: counts.computed,
            failed: counts.failed,
            closed: stored.state == JobState::Closed,
            slice_deadline_ms: work.limits.deadline_ms,
        };
        self.works.insert(job, Arc::new(work));
        Some(Event::JobStarted { job, plan })
    }

    /// Stores slices for an open job and queues them (big ones moved from their staging
    /// first, so a stored row never names bytes that are not there).
    pub(super) async fn add_slices(
        &mut self,
        job: JobId,
        added: AddSlices,
        staged: Option<StagedSlices>,
        reply: oneshot::Sender<Result<SlicesAdded>>,
    ) -> Option<Event> {
        let stored = match self.db.job(job).await {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                let _ = reply.send(Err(Error::NotFound(format!("no {job}"))));
                return None;
            }
            Err(error) => {
                let _ = reply.send(Err(error));
                return None;
            }
        };
        if stored.state != JobState::Open {
            let _ = reply.send(Err(Error::Conflict(format!("{job} is {:?}: it takes no more slices", stored.state))));
            return None;
        }
        if let Err(why) = ravproto::jobs::check_slices(&added.slices, &added.big, stored.total) {
            let _ = reply.send(Err(Error::BadRequest(why)));
            return None;
        }
        let (first, count) = (stored.total, added.slices.len() as u64);
        if let Some(staged) = &staged
            && let Err(error) = self.bulk.place_slices(staged, job, first)
        {
            let _ = reply.send(Err(error));
            return None;
        }
        let slices = NewSlices { inline: &added.slices, big: &added.big };
        if let Err(error) = self.db.add_slices(job, first, slices).await {
            let _ = reply.send(Err(error));
            return None;
        }
        if let Some(staged) = &staged {
            self.bulk.forget_uploads(staged);
        }
        let _ = reply.send(Ok(SlicesAdded { first, count }));
        Some(Event::SlicesAdded { job, from: first, count })
    }

    /// Closes or cancels a job: the state is stored, then the scheduler told.
    pub(super) async fn job_end(
        &mut self,
        job: JobId,
        cancel: bool,
        reply: oneshot::Sender<Result<()>>,
    ) -> Option<Event> {
        let state = if cancel { JobState::Cancelled } else { JobState::Closed };
        let stored = async {
            let stored = self.db.job(job).await?.ok_or_else(|| Error::NotFound(format!("no {job}")))?;
            if stored.state.ended() {
                return Err(Error::Conflict(format!("{job} has ended ({:?})", stored.state)));
            }
            self.db.set_job_state(job, state).await
        };
        let outcome = stored.await;
        let ok = outcome.is_ok();
        let _ = reply.send(outcome);
        if !ok {
            return None;
        }
        tracing::info!(%job, ?state, "job ended by its requester");
        if cancel {
            self.works.remove(&job);
            self.bulk.remove_job_slices(job);
            let _ = self.outbox.jobs.send(job);
            Some(Event::JobCancelled { job })
        } else {
            Some(Event::JobClosed { job })
        }
    }

    /// A provider's answers (all of a bundle's, or a part with more to come): kept only for the
    /// slices of a bundle it holds, stored in one transaction, then counted.
    pub(super) async fn slice_results(&mut self, provider: ProviderId, results: BundleResults) -> Option<Event> {
        let bundle = AssignmentId(results.bundle);
        let Some((job, slices)) = self.scheduler.bundle(bundle, provider) else {
            tracing::debug!(%provider, bundle = results.bundle, "answers to a bundle not out to this provider; ignored");
            return None;
        };
        let first_seq = self.scheduler.next_seq(job)?;
        let max_result = self.works.get(&job).map_or(u32::MAX, |work| work.limits.max_result_bytes);
        let wanted: BTreeSet<u64> = slices.into_iter().collect();
        let mut seen = BTreeSet::new();
        let mut outcomes = Vec::new();
        for done in results.results {
            if !wanted.contains(&done.slice) || !seen.insert(done.slice) {
                continue;
            }
            // The provider's sandbox enforces the limit; a provider that does not is not
            // believed.
            let outcome = match done.outcome {
                Outcome::Value(value) if value.0.len() > max_result as usize => {
                    Outcome::Failed(SliceFailure::ResultTooLarge { len: value.0.len() as u64, limit: max_result })
                }
                Outcome::Stored { len } if len > u64::from(max_result) => {
                    Outcome::Failed(SliceFailure::ResultTooLarge { len, limit: max_result })
                }
                // Uploaded to the provider's home: moved into the blob store, or (missing, or
                // not the length named) not believed, and the slice goes to another hand-out.
                Outcome::Stored { len } => {
                    let name = ravproto::files::bundle_result(bundle.0, done.slice);
                    let user = crate::bulk::provider_user(provider);
                    if let Err(error) = self.bulk.adopt_result(&user, &name, job, done.slice, len) {
                        tracing::warn!(%provider, %job, slice = done.slice, cause = %error, "a big result is not taken");
                        continue;
                    }
                    self.metrics.ftp("from_providers", len);
                    Outcome::Stored { len }
                }
                outcome => outcome,
            };
            let seq = first_seq + outcomes.len() as u64;
            outcomes.push(NewOutcome { slice: done.slice, seq, outcome, events: done.events });
        }
        let failed = outcomes.iter().filter(|o| matches!(o.outcome, Outcome::Failed(_))).count() as u64;
        if let Err(error) = self.db.store_outcomes(job, &outcomes).await {
            // Nothing counted: the slices go to another hand-out, blaming nobody.
            tracing::error!(%job, cause = %error, "cannot store slice outcomes");
            self.health.storage_failed(error.to_string());
            return Some(Event::BundleUnsent { bundle });
        }
        let stored = outcomes.into_iter().map(|o| o.slice).collect();
        Some(Event::SlicesStored { provider, bundle, stored, failed, more: results.more })
    }

    /// Sends a bundle, with the work function when the connection does not have it yet.
    pub(super) async fn assign_slices(&mut self, assignment: SliceAssignment) {
        let SliceAssignment { bundle, provider, job, slices, send_work } = assignment;
        let work = match (send_work, self.works.get(&job)) {
            (false, _) => None,
            (true, Some(work)) => Some(work.as_ref().clone()),
            (true, None) => {
                tracing::error!(%job, "no work function loaded for a running job");
                self.followups.push(Event::BundleUnsent { bundle });
                return;
            }
        };
        let inputs = match self.db.slice_inputs(job, &slices).await {
            Ok(inputs) => inputs,
            Err(error) => {
                tracing::error!(%job, cause = %error, "cannot read slice inputs");
                self.health.storage_failed(error.to_string());
                self.followups.push(Event::BundleUnsent { bundle });
                return;
            }
        };
        let mut bundled = Vec::with_capacity(inputs.len());
        let user = crate::bulk::provider_user(provider);
        for (slice, input) in inputs {
            bundled.push(match input {
                SliceInput::Inline(bytes) => BundledSlice { slice, input: ravproto::jobs::Blob(bytes), file: None },
                // Lent by hard link: placing costs nothing, and the provider downloads each
                // just before its slice runs.
                SliceInput::Blob(_) => {
                    let name = ravproto::files::bundle_slice(bundle.0, slice);
                    match self.bulk.lend_slice(job, slice, &user, &name) {
                        Ok(len) => {
                            self.metrics.ftp("to_providers", len);
                            BundledSlice {
                                slice,
                                input: ravproto::jobs::Blob::default(),
                                file: Some(SliceFile { name, len }),
                            }
                        }
                        Err(error) => {
                            tracing::error!(%job, slice, cause = %error, "cannot place a big slice for a provider");
                            self.health.storage_failed(error.to_string());
                            self.followups.push(Event::BundleUnsent { bundle });
                            return;
                        }
                    }
                }
            });
        }
        let message = SliceBundle { bundle: bundle.0, job, work, slices: bundled };
        self.outbox.to_provider(provider, EVENT_SLICES, &message).await;
    }

    /// Tells a provider to drop a bundle.
    pub(super) async fn withdraw_slices(&self, provider: ProviderId, bundle: AssignmentId) {
        self.outbox.to_provider(provider, EVENT_WITHDRAW_SLICES, &Withdraw { assignment: bundle.0 }).await;
    }

    /// Tells the providers that have an ended job's work function to let it go.
    pub(super) async fn forget_work(&self, job: JobId, providers: Vec<ProviderId>) {
        for provider in providers {
            self.outbox.to_provider(provider, EVENT_JOB_ENDED, &JobEnded { job }).await;
        }
    }

    /// Stores slices nobody answered as failed.
    pub(super) async fn abandon_slices(&mut self, job: JobId, slices: Vec<u64>, handouts: u32) {
        // One event can abandon several bundles of a job; the scheduler counts each batch only
        // when its follow-up is handled, so the numbers already taken are kept aside until then.
        let Some(next_seq) = self.scheduler.next_seq(job) else { return };
        let first_seq = next_seq + self.seqs_taken.get(&job).copied().unwrap_or(0);
        tracing::warn!(%job, slices = slices.len(), handouts, "slices abandoned by every provider they went to");
        let outcomes: Vec<NewOutcome> = slices
            .iter()
            .enumerate()
            .map(|(i, &slice)| NewOutcome {
                slice,
                seq: first_seq + i as u64,
                outcome: Outcome::Failed(SliceFailure::Abandoned { handouts }),
                events: Vec::new(),
            })
            .collect();
        match self.db.store_outcomes(job, &outcomes).await {
            Ok(()) => {
                *self.seqs_taken.entry(job).or_default() += outcomes.len() as u64;
                self.followups.push(Event::AbandonedStored { job, count: outcomes.len() as u64 });
            }
            // Left without an outcome: the job resumes them at the next start.
            Err(error) => tracing::error!(%job, cause = %error, "cannot store abandoned slices"),
        }
    }

    /// A job's counts changed: the long polls look.
    pub(super) fn job_progress(&self, job: JobId, _counts: SliceCounts) {
        let _ = self.outbox.jobs.send(job);
    }

    /// Every slice of a closed job has an outcome.
    pub(super) async fn job_complete(&mut self, job: JobId, counts: SliceCounts) -> Result<()> {
        tracing::info!(%job, computed = counts.computed, failed = counts.failed, "job complete");
        self.works.remove(&job);
        self.bulk.remove_job_slices(job);
        let stored = self.db.set_job_state(job, JobState::Complete).await;
        let _ = self.outbox.jobs.send(job);
        stored
    }
}

//! Jobs in the one scheduler: each running job's queue of slices, the bundles out with their
//! deadlines, and which provider may take which job (its requirements and compute groups).
//! Sans-IO like the rest: the dispatch task stores outcomes before it reports them
//! ([`super::Event::SlicesStored`]), and the scheduler counts a slice only then.
//!
//! A bundle is a run of slices of one job for one provider: many small slices per message.
//! Its size splits the queue over the providers that may take it (so the last slices do not
//! wait on one provider), at most [`MAX_BUNDLE_SLICES`]. A bundle not answered by its
//! deadline, or held by a provider that leaves, goes back to the front of the queue; a slice
//! handed out [`MAX_SLICE_HANDOUTS`] times without an answer fails (`abandoned`).

use super::{Account, Action, AssignmentId, Millis, ProviderState};
use ravproto::ProviderId;
use ravproto::jobs::{JobId, MAX_BUNDLE_SLICES, SliceCounts};
use ravproto::messages::Requirements;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Bundles one provider connection may hold at once (one computing, one arriving).
pub const BUNDLES_PER_PROVIDER: usize = 2;

/// Hand-outs of one slice without an answer before it fails.
pub const MAX_SLICE_HANDOUTS: u32 = 5;

/// A bundle's deadline: this, plus each slice's own deadline.
pub const BUNDLE_DEADLINE_BASE_MS: Millis = 30_000;

/// A job as the scheduler runs it (started, or resumed after a restart).
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    /// Groups whose providers may take it; empty: any provider.
    pub groups: BTreeSet<String>,
    pub requirements: Requirements,
    /// Slices without an outcome, in order.
    pub pending: Vec<u64>,
    /// Slices in the job.
    pub total: u64,
    /// Slices with an outcome: computed, and failed.
    pub computed: u64,
    pub failed: u64,
    /// Whether it takes no more slices.
    pub closed: bool,
    /// One slice's wall-clock deadline (its limits').
    pub slice_deadline_ms: Millis,
}

struct JobRun {
    plan: JobPlan,
    queue: VecDeque<u64>,
    /// Slices in bundles out.
    out: u64,
    /// Hand-outs of slices that were handed out and came back unanswered.
    handouts: BTreeMap<u64, u32>,
}

impl JobRun {
    fn counts(&self) -> SliceCounts {
        SliceCounts {
            total: self.plan.total,
            distributed: self.out,
            computed: self.plan.computed,
            failed: self.plan.failed,
        }
    }

    /// Counts the stored outcomes of `stored` (`failed` of them failures).
    fn count(&mut self, stored: &BTreeSet<u64>, failed: u64) {
        self.plan.failed += failed;
        self.plan.computed += stored.len() as u64 - failed;
        for slice in stored {
            self.handouts.remove(slice);
        }
    }

    fn complete(&self) -> bool {
        self.plan.closed && self.plan.computed + self.plan.failed >= self.plan.total
    }
}

/// A bundle out.
struct Bundle {
    provider: ProviderId,
    account: Account,
    job: JobId,
    slices: Vec<u64>,
    deadline: Millis,
}

/// A bundle handed out: what the dispatch task sends.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceAssignment {
    pub bundle: AssignmentId,
    pub provider: ProviderId,
    pub job: JobId,
    pub slices: Vec<u64>,
    /// Whether this connection needs the work function (its first bundle of the job).
    pub send_work: bool,
}

/// Every running job.
#[derive(Default)]
pub(super) struct Jobs {
    jobs: BTreeMap<JobId, JobRun>,
    out: BTreeMap<AssignmentId, Bundle>,
    held: BTreeMap<ProviderId, usize>,
    /// Connections that have a job's work function.
    has_work: BTreeSet<(ProviderId, JobId)>,
}

/// Whether `provider` may take slices of a job with these requirements and groups.
fn may_take(plan: &JobPlan, provider: &ProviderState) -> bool {
    provider.graph.is_none()
        && plan.requirements.accepts(&provider.benchmark)
        && (plan.groups.is_empty() || plan.groups.iter().any(|g| provider.groups.contains(g)))
}

impl Jobs {
    /// Runs a job.
    pub(super) fn start(&mut self, job: JobId, plan: JobPlan, actions: &mut Vec<Action>) {
        let queue = plan.pending.iter().copied().collect();
        let run = JobRun { plan, queue, out: 0, handouts: BTreeMap::new() };
        if run.complete() {
            actions.push(Action::JobComplete { job, counts: run.counts() });
            return;
        }
        self.jobs.insert(job, run);
    }

    /// Slices `from..from + count` were stored for an open job.
    pub(super) fn added(&mut self, job: JobId, from: u64, count: u64) {
        let Some(run) = self.jobs.get_mut(&job) else { return };
        run.queue.extend(from..from + count);
        run.plan.total = run.plan.total.max(from + count);
    }

    /// The job takes no more slices; it completes when the ones it has are done.
    pub(super) fn closed(&mut self, job: JobId, actions: &mut Vec<Action>) {
        let Some(run) = self.jobs.get_mut(&job) else { return };
        run.plan.closed = true;
        if run.complete() {
            let counts = run.counts();
            self.jobs.remove(&job);
            actions.push(Action::JobComplete { job, counts });
            self.forget(job, actions);
        }
    }

    /// The job was cancelled: its bundles are withdrawn.
    pub(super) fn cancelled(&mut self, job: JobId, actions: &mut Vec<Action>) {
        self.jobs.remove(&job);
        let bundles: Vec<AssignmentId> = self.out.iter().filter(|(_, b)| b.job == job).map(|(id, _)| *id).collect();
        for id in bundles {
            if let Some(bundle) = self.take(id) {
                actions.push(Action::WithdrawSlices { provider: bundle.provider, bundle: id });
            }
        }
        self.forget(job, actions);
    }

    /// The providers sent the job's work function are told to let it go: a provider that runs
    /// for months would otherwise keep every job's compiled module while it stays connected.
    fn forget(&mut self, job: JobId, actions: &mut Vec<Action>) {
        let providers: Vec<ProviderId> = self.has_work.iter().filter(|(_, j)| *j == job).map(|(p, _)| *p).collect();
        self.has_work.retain(|(_, j)| *j != job);
        if !providers.is_empty() {
            actions.push(Action::ForgetWork { job, providers });
        }
    }

    fn take(&mut self, id: AssignmentId) -> Option<Bundle> {
        let bundle = self.out.remove(&id)?;
        if let Some(held) = self.held.get_mut(&bundle.provider) {
            *held = held.saturating_sub(1);
        }
        if let Some(run) = self.jobs.get_mut(&bundle.job) {
            run.out = run.out.saturating_sub(bundle.slices.len() as u64);
        }
        Some(bundle)
    }

    /// Puts slices back at the front of their job's queue; those handed out too often fail.
    fn requeue(&mut self, job: JobId, slices: &[u64], actions: &mut Vec<Action>) {
        let Some(run) = self.jobs.get_mut(&job) else { return };
        let mut abandoned = Vec::new();
        for &slice in slices.iter().rev() {
            let handouts = run.handouts.entry(slice).or_insert(0);
            *handouts += 1;
            if *handouts >= MAX_SLICE_HANDOUTS {
                abandoned.push(slice);
            } else {
                run.queue.push_front(slice);
            }
        }
        if !abandoned.is_empty() {
            abandoned.reverse();
            actions.push(Action::AbandonSlices { job, slices: abandoned, handouts: MAX_SLICE_HANDOUTS });
        }
    }

    /// The bundle `id` if `provider` holds it: its job and slices.
    pub(super) fn bundle(&self, id: AssignmentId, provider: ProviderId) -> Option<(JobId, &[u64])> {
        self.out.get(&id).filter(|b| b.provider == provider).map(|b| (b.job, b.slices.as_slice()))
    }

    /// The number the next stored outcome of `job` gets (outcomes are numbered from 1 in the
    /// order they are stored).
    pub(super) fn next_seq(&self, job: JobId) -> Option<u64> {
        self.jobs.get(&job).map(|run| run.plan.computed + run.plan.failed + 1)
    }

    /// A job's counts, if it runs.
    pub(super) fn counts(&self, job: JobId) -> Option<SliceCounts> {
        self.jobs.get(&job).map(JobRun::counts)
    }

    /// The outcomes of `stored` (computed, with `failed` of them failures) of bundle `id` are
    /// stored; the bundle's other slices go back to the queue. Answers the account that held
    /// it.
    pub(super) fn stored(
        &mut self,
        id: AssignmentId,
        provider: ProviderId,
        stored: &BTreeSet<u64>,
        failed: u64,
        actions: &mut Vec<Action>,
    ) -> Option<Account> {
        self.bundle(id, provider)?;
        let bundle = self.take(id)?;
        let missing: Vec<u64> = bundle.slices.iter().copied().filter(|s| !stored.contains(s)).collect();
        if let Some(run) = self.jobs.get_mut(&bundle.job) {
            run.count(stored, failed);
        }
        self.requeue(bundle.job, &missing, actions);
        self.progress(bundle.job, actions);
        Some(bundle.account)
    }

    /// A part of bundle `id`'s answers is stored: those slices are counted and leave the
    /// bundle, which stays out (with its deadline) for the rest.
    pub(super) fn stored_part(
        &mut self,
        id: AssignmentId,
        provider: ProviderId,
        stored: &BTreeSet<u64>,
        failed: u64,
        actions: &mut Vec<Action>,
    ) {
        let Some(bundle) = self.out.get_mut(&id).filter(|b| b.provider == provider) else { return };
        bundle.slices.retain(|slice| !stored.contains(slice));
        let job = bundle.job;
        if let Some(run) = self.jobs.get_mut(&job) {
            run.out = run.out.saturating_sub(stored.len() as u64);
            run.count(stored, failed);
        }
        self.progress(job, actions);
    }

    /// Slices failed without an answer (abandoned) were stored as failures.
    pub(super) fn abandoned_stored(&mut self, job: JobId, count: u64, actions: &mut Vec<Action>) {
        if let Some(run) = self.jobs.get_mut(&job) {
            run.plan.failed += count;
        }
        self.progress(job, actions);
    }

    fn progress(&mut self, job: JobId, actions: &mut Vec<Action>) {
        let Some(run) = self.jobs.get(&job) else { return };
        let counts = run.counts();
        if run.complete() && run.out == 0 {
            self.jobs.remove(&job);
            actions.push(Action::JobComplete { job, counts });
            self.forget(job, actions);
        } else {
            actions.push(Action::JobProgress { job, counts });
        }
    }

    /// A provider is gone (left, evicted, dropped): its bundles go back to their queues
    /// (withdrawn first when `withdraw`: the connection may still be open). Answers whether it
    /// held any.
    pub(super) fn release_provider(&mut self, provider: ProviderId, withdraw: bool, actions: &mut Vec<Action>) -> bool {
        let bundles: Vec<AssignmentId> =
            self.out.iter().filter(|(_, b)| b.provider == provider).map(|(id, _)| *id).collect();
        for &id in &bundles {
            if let Some(bundle) = self.take(id) {
                if withdraw {
                    actions.push(Action::WithdrawSlices { provider, bundle: id });
                }
                self.requeue(bundle.job, &bundle.slices, actions);
            }
        }
        self.held.remove(&provider);
        self.has_work.retain(|(p, _)| *p != provider);
        !bundles.is_empty()
    }

    /// Providers holding a bundle past its deadline.
    pub(super) fn late(&self, now: Millis) -> BTreeSet<ProviderId> {
        self.out.values().filter(|b| b.deadline <= now).map(|b| b.provider).collect()
    }

    /// The earliest bundle deadline.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.out.values().map(|b| b.deadline).min()
    }

    /// Hands bundles to providers with a free slot, fastest first, oldest job first.
    pub(super) fn dispatch(
        &mut self,
        now: Millis,
        providers: &BTreeMap<ProviderId, ProviderState>,
        next_id: &mut u64,
        actions: &mut Vec<Action>,
    ) {
        if self.jobs.values().all(|run| run.queue.is_empty()) {
            return;
        }
        let mut order: Vec<(&ProviderId, &ProviderState)> = providers.iter().collect();
        order.sort_by(|a, b| b.1.benchmark.speed_score.total_cmp(&a.1.benchmark.speed_score).then(a.0.cmp(b.0)));
        loop {
            let mut handed = false;
            for &(&provider, state) in &order {
                if self.held.get(&provider).copied().unwrap_or(0) >= BUNDLES_PER_PROVIDER {
                    continue;
                }
                let Some((&job, run)) =
                    self.jobs.iter_mut().find(|(_, run)| !run.queue.is_empty() && may_take(&run.plan, state))
                else {
                    continue;
                };
                // The queue split over the providers that may take it, so none waits alone
                // on the last big bundle.
                let takers = providers.values().filter(|p| may_take(&run.plan, p)).count().max(1);
                let share = run.queue.len().div_ceil(takers * BUNDLES_PER_PROVIDER);
                let size = share.clamp(1, MAX_BUNDLE_SLICES);
                let slices: Vec<u64> = run.queue.drain(..size.min(run.queue.len())).collect();
                run.out += slices.len() as u64;
                let id = AssignmentId(*next_id);
                *next_id += 1;
                let deadline = now
                    .saturating_add(BUNDLE_DEADLINE_BASE_MS)
                    .saturating_add(run.plan.slice_deadline_ms.saturating_mul(slices.len() as u64));
                let send_work = self.has_work.insert((provider, job));
                actions.push(Action::AssignSlices(SliceAssignment {
                    bundle: id,
                    provider,
                    job,
                    slices: slices.clone(),
                    send_work,
                }));
                self.out.insert(id, Bundle { provider, account: state.account, job, slices, deadline });
                *self.held.entry(provider).or_default() += 1;
                handed = true;
            }
            if !handed {
                return;
            }
        }
    }

    /// A bundle could not be sent: its slices go back without counting a hand-out, and the
    /// connection will be sent the work again.
    pub(super) fn unsent(&mut self, id: AssignmentId) {
        let Some(bundle) = self.take(id) else { return };
        self.has_work.remove(&(bundle.provider, bundle.job));
        if let Some(run) = self.jobs.get_mut(&bundle.job) {
            for &slice in bundle.slices.iter().rev() {
                run.queue.push_front(slice);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::bench;
    use super::super::{Event, Scheduler};
    use super::*;

    fn plan(total: u64, groups: &[&str]) -> JobPlan {
        JobPlan {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            requirements: Requirements::default(),
            pending: (0..total).collect(),
            total,
            computed: 0,
            failed: 0,
            closed: true,
            slice_deadline_ms: 1_000,
        }
    }

    fn join(s: &mut Scheduler, provider: u64, groups: &[&str]) -> Vec<Action> {
        let groups = groups.iter().map(|g| g.to_string()).collect();
        let benchmark = bench(1.0);
        s.handle(
            0,
            Event::ProviderJoined {
                provider: ProviderId(provider),
                account: provider as i64,
                benchmark,
                graph: None,
                groups,
            },
        )
    }

    fn bundles(actions: &[Action]) -> Vec<SliceAssignment> {
        actions.iter().filter_map(|a| if let Action::AssignSlices(b) = a { Some(b.clone()) } else { None }).collect()
    }

    #[test]
    fn slices_are_split_over_providers_and_a_leaving_provider_s_go_to_another() {
        let mut s = Scheduler::default();
        join(&mut s, 1, &[]);
        join(&mut s, 2, &[]);
        let out = bundles(&s.handle(0, Event::JobStarted { job: JobId(1), plan: plan(100, &[]) }));
        // Two bundles for each provider, each a quarter of what is left, the work function with
        // each first one.
        assert_eq!(out.iter().map(|b| b.slices.len()).collect::<Vec<_>>(), vec![25, 19, 14, 11]);
        assert_eq!(out.iter().filter(|b| b.send_work).count(), 2);
        let of_1: Vec<&SliceAssignment> = out.iter().filter(|b| b.provider == ProviderId(1)).collect();
        // Provider 1 answers one bundle (one slice failed), takes another and leaves with both.
        let first = of_1[0];
        let stored: BTreeSet<u64> = first.slices.iter().copied().collect();
        let actions = s.handle(
            1,
            Event::SlicesStored { provider: ProviderId(1), bundle: first.bundle, stored, failed: 1, more: false },
        );
        assert!(actions.contains(&Action::JobProgress {
            job: JobId(1),
            counts: SliceCounts { total: 100, distributed: 44, computed: 24, failed: 1 }
        }));
        let actions = s.handle(2, Event::ProviderLeft { provider: ProviderId(1) });
        assert!(bundles(&actions).is_empty(), "provider 2 is busy with two bundles");
        // Provider 2 finishes its bundles; the left one's slices come to it.
        let mut done = 25;
        let mut queue: Vec<SliceAssignment> = out.iter().filter(|b| b.provider == ProviderId(2)).cloned().collect();
        let (mut complete, mut forget) = (None, None);
        while let Some(bundle) = queue.pop() {
            let stored: BTreeSet<u64> = bundle.slices.iter().copied().collect();
            done += stored.len();
            let actions = s.handle(
                3,
                Event::SlicesStored { provider: ProviderId(2), bundle: bundle.bundle, stored, failed: 0, more: false },
            );
            assert!(bundles(&actions).iter().all(|b| !b.send_work), "provider 2 has the work function");
            queue.extend(bundles(&actions));
            forget = forget.or(actions.iter().find(|a| matches!(a, Action::ForgetWork { .. })).cloned());
            complete = complete.or(actions.into_iter().find(|a| matches!(a, Action::JobComplete { .. })));
        }
        assert_eq!(done, 100);
        // The provider still connected that was sent the work function is told to let it go.
        assert_eq!(forget, Some(Action::ForgetWork { job: JobId(1), providers: vec![ProviderId(2)] }));
        assert_eq!(
            complete,
            Some(Action::JobComplete {
                job: JobId(1),
                counts: SliceCounts { total: 100, distributed: 0, computed: 99, failed: 1 }
            })
        );
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn a_bundle_answered_in_parts_counts_each_part_and_stays_out_for_the_rest() {
        let mut s = Scheduler::default();
        join(&mut s, 1, &[]);
        let out = bundles(&s.handle(0, Event::JobStarted { job: JobId(1), plan: plan(4, &[]) }));
        let bundle = out.iter().find(|b| b.slices.len() == 2).expect("a bundle of two").clone();
        let (first, second) = (bundle.slices[0], bundle.slices[1]);
        let part = |slice: u64, more: bool| Event::SlicesStored {
            provider: ProviderId(1),
            bundle: bundle.bundle,
            stored: [slice].into(),
            failed: 0,
            more,
        };
        let actions = s.handle(1, part(first, true));
        assert!(actions.contains(&Action::JobProgress {
            job: JobId(1),
            counts: SliceCounts { total: 4, distributed: 2, computed: 1, failed: 0 }
        }));
        assert!(bundles(&actions).is_empty(), "the bundle is still out");
        assert_eq!(s.bundle(bundle.bundle, ProviderId(1)), Some((JobId(1), vec![second])), "what is left of it");
        // The last part: the bundle is done, none of it goes back.
        let actions = s.handle(2, part(second, false));
        assert!(actions.contains(&Action::JobProgress {
            job: JobId(1),
            counts: SliceCounts { total: 4, distributed: 1, computed: 2, failed: 0 }
        }));
        assert_eq!(s.bundle(bundle.bundle, ProviderId(1)), None);
        // A part from a provider that does not hold the bundle changes nothing.
        let other = out.iter().find(|b| b.bundle != bundle.bundle).expect("another bundle");
        let stray = Event::SlicesStored {
            provider: ProviderId(9),
            bundle: other.bundle,
            stored: [other.slices[0]].into(),
            failed: 0,
            more: true,
        };
        assert!(s.handle(3, stray).is_empty());
        assert_eq!(s.job_counts(JobId(1)).map(|c| c.computed), Some(2));
    }

    #[test]
    fn a_group_s_job_goes_only_to_its_members_and_a_slice_nobody_answers_is_abandoned() {
        let mut s = Scheduler::default();
        join(&mut s, 1, &[]);
        assert!(bundles(&s.handle(0, Event::JobStarted { job: JobId(1), plan: plan(3, &["lab"]) })).is_empty());
        let mut now = 0;
        let mut abandoned = Vec::new();
        // Each member takes the slices and vanishes; the fifth hand-out is the last.
        for provider in 10..10 + u64::from(MAX_SLICE_HANDOUTS) {
            let out = bundles(&join(&mut s, provider, &["lab"]));
            let mut taken: Vec<u64> = out.iter().flat_map(|b| b.slices.clone()).collect();
            taken.sort_unstable();
            assert_eq!(taken, vec![0, 1, 2]);
            now += 1;
            abandoned = s.handle(now, Event::ProviderLeft { provider: ProviderId(provider) });
        }
        let mut given_up: Vec<u64> = abandoned
            .iter()
            .filter_map(|a| match a {
                Action::AbandonSlices { job: JobId(1), slices, handouts: 5 } => Some(slices.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        given_up.sort_unstable();
        assert_eq!(given_up, vec![0, 1, 2]);
        let actions = s.handle(now, Event::AbandonedStored { job: JobId(1), count: 3 });
        assert!(matches!(actions[..], [Action::JobComplete { .. }]));
    }

    #[test]
    fn an_open_job_completes_only_once_closed_and_a_late_bundle_evicts_its_provider() {
        let mut s = Scheduler::default();
        join(&mut s, 1, &[]);
        let open = JobPlan { closed: false, ..plan(1, &[]) };
        let out = bundles(&s.handle(0, Event::JobStarted { job: JobId(1), plan: open }));
        let stored = BTreeSet::from([0]);
        let actions = s.handle(
            1,
            Event::SlicesStored { provider: ProviderId(1), bundle: out[0].bundle, stored, failed: 0, more: false },
        );
        assert!(!actions.iter().any(|a| matches!(a, Action::JobComplete { .. })), "open: more may come");
        s.handle(2, Event::SlicesAdded { job: JobId(1), from: 1, count: 1 });
        let deadline = s.next_deadline().expect("a bundle is out");
        let actions = s.handle(deadline, Event::Tick);
        assert!(actions.iter().any(|a| matches!(a, Action::Evict { provider: ProviderId(1), .. })));
        assert!(actions.iter().any(|a| matches!(a, Action::WithdrawSlices { provider: ProviderId(1), .. })));
        let out = bundles(&join(&mut s, 2, &[]));
        assert_eq!(out[0].slices, vec![1]);
        assert!(out[0].send_work);
        let stored = BTreeSet::from([1]);
        s.handle(
            deadline + 1,
            Event::SlicesStored { provider: ProviderId(2), bundle: out[0].bundle, stored, failed: 0, more: false },
        );
        let actions = s.handle(deadline + 2, Event::JobClosed { job: JobId(1) });
        // Complete, and the provider that has the work function is told to let it go.
        assert!(matches!(
            &actions[..],
            [Action::JobComplete { .. }, Action::ForgetWork { job: JobId(1), providers }] if providers == &[ProviderId(2)]
        ));
    }
}

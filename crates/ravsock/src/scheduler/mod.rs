//! The scheduler: one event-driven state machine for every graph and provider.
//!
//! Port of the original's scheduler-service (§3.6) without its weaknesses: no 10 Hz polling
//! (the server calls [`Scheduler::handle`] on each event and wakes up at
//! [`Scheduler::next_deadline`]), no lock-step (every ready subgraph goes to any idle eligible
//! provider, several at once), and retries that count up to a limit. Time is an explicit
//! millisecond value so tests control it. The scheduler keeps no values and does no I/O: the
//! server stores results (in batches) before reporting completion, and performs the returned
//! [`Action`]s. Topics' rounds are timers of the same machine ([`topics`]).

mod conduct;
mod failures;
mod handout;
pub mod jobs;
mod lifecycle;
mod partition;
mod queries;
#[cfg(test)]
mod stake_tests;
mod stakes;
#[cfg(test)]
mod tests;
mod topics;
#[cfg(test)]
mod verify_tests;
mod verifying;
pub mod views;

pub use conduct::Account;
pub use jobs::{JobPlan, SliceAssignment};
pub use partition::{OpInfo, Subgraph, partition};
pub use topics::{OpenRound, Refusal as AnswerRefusal, Timing};

use conduct::Conduct;
use ravproto::jobs::{JobId, SliceCounts};
use ravproto::messages::{Benchmark, OpFailure, Requirements};
use ravproto::provider::{OverBudget, RejectionCode};
use ravproto::status::GraphStatus;
use ravproto::topics::TopicId;
use ravproto::{GraphId, OpId, ProviderId};
use std::collections::{BTreeMap, BTreeSet};

/// The scheduler's queue at one moment (for the metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Subgraphs whose inputs are all computed, waiting for a provider that may take them.
    pub ready_subgraphs: u64,
    /// Subgraphs handed out and not yet answered.
    pub assigned_subgraphs: u64,
}

/// Lifecycle of one subgraph inside the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SubgraphStatus {
    /// Some external input is not computed yet.
    NotReady,
    /// Every input is available; waiting for a provider.
    Ready,
    /// Sent to a provider, result not back yet.
    Assigned,
    /// Results ingested.
    Computed,
}

/// Milliseconds on the server's monotonic clock.
pub type Millis = u64;

/// Identifies one hand-out of a subgraph to a provider; a retry gets a new one, so a late
/// answer to a withdrawn assignment can be recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssignmentId(pub u64);

/// Scheduling policy.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// Most ops per subgraph (the original's `2 × min_split_size`).
    pub window: usize,
    /// Providers (distinct accounts) whose attempt at one subgraph may fail before its graph
    /// fails; hand-outs are capped at [`HANDOUTS_PER_ATTEMPT`] times this.
    pub max_attempts: u32,
    /// Fixed part of a subgraph's deadline.
    pub deadline_base_ms: Millis,
    /// Deadline added per op of the subgraph.
    pub deadline_per_op_ms: Millis,
    /// Subgraphs a provider may hold at once (more than one hides network latency).
    pub slots_per_provider: usize,
    /// Assignments an account may abandon in a row (disconnecting with them, missing their
    /// deadline) before it is quarantined.
    pub quarantine_after: u32,
    /// How long a quarantine lasts.
    pub quarantine_ms: Millis,
}

/// A subgraph's hand-outs are capped at this many per [`SchedulerConfig::max_attempts`], so
/// that failures of one account, which count once, cannot retry a subgraph forever.
pub const HANDOUTS_PER_ATTEMPT: u32 = 3;

/// Providers (distinct accounts) that must refuse a subgraph with a kernel error before it
/// fails the graph, when that many can take it: one provider's word does not fail a graph.
pub const CONFIRMATIONS: usize = 2;

/// A graph whose results the server failed to store this many times in a row fails: its
/// storage is broken, not a provider. Each failure pauses the graph for
/// [`SERVER_RETRY_BASE_MS`] doubled per failure before it (0.5, 1, 2, 4 and 8 s: 15.5 s in
/// all before the sixth fails it).
pub const SERVER_RETRIES: u32 = 6;

/// The first pause after the server failed to store a graph's results.
pub const SERVER_RETRY_BASE_MS: Millis = 500;

impl Default for SchedulerConfig {
    fn default() -> SchedulerConfig {
        SchedulerConfig {
            window: 100,
            max_attempts: 3,
            deadline_base_ms: 30_000,
            deadline_per_op_ms: 100,
            slots_per_provider: 2,
            quarantine_after: 3,
            quarantine_ms: 600_000,
        }
    }
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A graph was executed (or restored after a restart: computed ops are not redone).
    GraphSubmitted {
        graph: GraphId,
        /// Every op, in dependency order.
        ops: Vec<OpInfo>,
        /// What providers must offer.
        requirements: Requirements,
    },
    /// The requester cancelled a graph.
    GraphCancelled { graph: GraphId },
    /// A provider connected and benchmarked; `graph` limits it to one graph.
    ProviderJoined {
        provider: ProviderId,
        /// Its account: what retries and quarantine count.
        account: Account,
        /// Its report.
        benchmark: Benchmark,
        /// The graph it chose, or any.
        graph: Option<GraphId>,
        /// The compute groups it proved it belongs to (their keys).
        groups: BTreeSet<String>,
    },
    /// A provider disconnected.
    ProviderLeft { provider: ProviderId },
    /// A provider returned every output of an assignment (already stored by the server).
    SubgraphCompleted { provider: ProviderId, assignment: AssignmentId },
    /// A provider could not compute an assignment.
    SubgraphFailed {
        provider: ProviderId,
        assignment: AssignmentId,
        /// The op and the reason.
        failure: OpFailure,
        /// Whether another attempt may succeed (a kernel's refusal of its inputs will not).
        retryable: bool,
        /// The op needs more memory than the provider's budget: a provider with more may
        /// compute it.
        over_budget: Option<OverBudget>,
    },
    /// The server could not store an assignment's results, or its storage failed while a
    /// provider used it: the provider is not to blame, the graph pauses with backoff.
    ServerFault {
        provider: ProviderId,
        assignment: AssignmentId,
        /// What failed, for the requester and the failure report.
        reason: String,
    },
    /// A topic runs (opened, or resumed after a restart): round `next_round` opens at
    /// `next_open_at`, after `open` (resumed with its stored answers) closes.
    TopicStarted { topic: TopicId, timing: Timing, next_round: u64, next_open_at: Millis, open: Option<OpenRound> },
    /// A topic was closed: its open round closes now, and no other opens.
    TopicStopped { topic: TopicId },
    /// A worker's answer to a round was stored.
    RoundAnswered { topic: TopicId, round: u64 },
    /// The account of the provider an assignment went to could not stake for its graph
    /// (`stakes`): the assignment was not sent.
    StakeShort {
        provider: ProviderId,
        assignment: AssignmentId,
        /// Why, told to a provider that chose the graph.
        reason: String,
    },
    /// A verified graph's answer was held (`verifying`): it does not settle the subgraph yet,
    /// which needs `answers_wanted` answers in all (more after a disagreement).
    ReplicaHeld { provider: ProviderId, assignment: AssignmentId, answers_wanted: u32 },
    /// A verified graph's answers to a subgraph disagree past [`ravproto::verify::max_answers`]:
    /// the graph fails.
    Disputed { provider: ProviderId, assignment: AssignmentId, failure: OpFailure },
    /// A subgraph's answers were compared: these accounts agreed with the stored value, these
    /// did not (their record of clean answers starts again, and each counts as a strike).
    Judged { right: Vec<Account>, wrong: Vec<Account> },
    /// A job runs (started, or resumed after a restart).
    JobStarted { job: JobId, plan: JobPlan },
    /// Slices `from..from + count` were stored for an open job.
    SlicesAdded { job: JobId, from: u64, count: u64 },
    /// A job takes no more slices.
    JobClosed { job: JobId },
    /// A job was cancelled (stored as such).
    JobCancelled { job: JobId },
    /// The outcomes of these slices of a bundle are stored (`failed` of them are failures);
    /// with `more`, the provider answers the rest of the bundle later, else the bundle's other
    /// slices go to another provider.
    SlicesStored { provider: ProviderId, bundle: AssignmentId, stored: BTreeSet<u64>, failed: u64, more: bool },
    /// Slices given up on ([`Action::AbandonSlices`]) were stored as failures.
    AbandonedStored { job: JobId, count: u64 },
    /// A bundle could not be sent to its provider.
    BundleUnsent { bundle: AssignmentId },
    /// Time passed (the server calls this at [`Scheduler::next_deadline`]).
    Tick,
}

/// A subgraph handed to a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// This hand-out.
    pub id: AssignmentId,
    /// Who computes it.
    pub provider: ProviderId,
    pub graph: GraphId,
    /// Index of the subgraph within the graph.
    pub subgraph: usize,
    /// Ops to compute, in order.
    pub ops: Vec<OpId>,
    /// Values to send along (computed earlier).
    pub external_inputs: Vec<OpId>,
    /// Results to send back.
    pub outputs: Vec<OpId>,
    /// When the scheduler gives up on this hand-out.
    pub deadline: Millis,
    /// Whether it trains (starts from the graph's training state and changes it).
    pub trains: bool,
}

/// What the server must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send a subgraph to a provider.
    Assign(Assignment),
    /// Tell a provider to drop an assignment (deadline passed, graph failed or cancelled).
    Withdraw { provider: ProviderId, assignment: AssignmentId },
    /// A provider missed a deadline: it gets no more work until it connects again (the server
    /// closes its connection; its other assignments went back to ready).
    Evict {
        provider: ProviderId,
        /// Why, told to the provider before its connection closes.
        reason: String,
    },
    /// A provider may not join the graph it chose.
    Rejected {
        provider: ProviderId,
        /// The graph it chose, if the rejection is about one.
        graph: Option<GraphId>,
        /// Why.
        reason: String,
        /// What the provider should do next. [`RejectionCode::NotExecuting`] means only that
        /// the graph is not in the scheduler's memory: the dispatch task tells the provider
        /// whether it is still to start, finished, or unknown from the database.
        code: RejectionCode,
    },
    /// Ops of a graph were computed.
    Progress {
        graph: GraphId,
        /// Computed ops.
        computed: u64,
        /// All ops.
        total: u64,
    },
    /// An attempt at a subgraph failed and the subgraph is ready again for another.
    AttemptFailed {
        graph: GraphId,
        /// The op (the subgraph's first when none is to blame) and the reason.
        failure: OpFailure,
    },
    /// Every op of the graph is computed.
    GraphComputed { graph: GraphId },
    /// The graph failed for good.
    GraphFailed {
        graph: GraphId,
        /// The op and the reason.
        failure: OpFailure,
    },
    /// Store a topic's round as open and tell its workers; it takes answers for `deadline_ms`.
    OpenRound { topic: TopicId, round: u64, deadline_ms: Millis },
    /// Close a topic's round: its deadline passed, every worker answered, or the topic closed.
    CloseRound { topic: TopicId, round: u64 },
    /// Send a bundle of slices to a provider.
    AssignSlices(SliceAssignment),
    /// Tell a provider to drop a bundle.
    WithdrawSlices { provider: ProviderId, bundle: AssignmentId },
    /// Store these slices as failed: handed out `handouts` times, never answered.
    AbandonSlices { job: JobId, slices: Vec<u64>, handouts: u32 },
    /// A job's counts changed.
    JobProgress { job: JobId, counts: SliceCounts },
    /// Every slice of a closed job has an outcome.
    JobComplete { job: JobId, counts: SliceCounts },
    /// A job ended: these providers were sent its work function and may let it go.
    ForgetWork { job: JobId, providers: Vec<ProviderId> },
    /// Keep `amount` of `account`'s stake in `graph`: it abandoned work of it (`why`).
    Slash { account: Account, graph: GraphId, amount: u64, why: &'static str },
}

struct SubgraphState {
    subgraph: Subgraph,
    status: SubgraphStatus,
    /// Hand-outs, over-budget refusals not counted.
    attempts: u32,
    missing_inputs: usize,
    /// Accounts whose attempt failed (an error they call transient, a disconnect, a missed
    /// deadline): one account's failures count once.
    failed_by: BTreeSet<Account>,
    /// Accounts whose kernel refused it: it never goes back to them.
    refused_by: BTreeSet<Account>,
    /// The most memory an op of it was reported to need: it goes only to a provider with a
    /// budget this big.
    needs_bytes: u64,
    /// Answers it needs in all (1, or the replicas of a verified graph, more after a
    /// disagreement): it is handed out while answers and hand-outs out are fewer.
    wanted: u32,
    /// Accounts whose answer is held for comparison: it never goes to them again.
    answered_by: BTreeSet<Account>,
    /// Accounts holding it now: never two connections of one account.
    out_to: BTreeSet<Account>,
}

struct GraphState {
    requirements: Requirements,
    status: GraphStatus,
    subgraphs: Vec<SubgraphState>,
    /// Subgraphs waiting for each op produced by another subgraph.
    consumers: BTreeMap<OpId, Vec<usize>>,
    total_ops: u64,
    computed_ops: u64,
    /// The operator name of each pending op, for failure reports.
    operators: BTreeMap<OpId, &'static str>,
    /// Whether the graph is pinned to one provider ([`ravproto::OpKind::pinned`]): its layers'
    /// weights live in that provider's memory, so every subgraph goes to
    /// [`GraphState::holder`] while it is connected.
    pinned: bool,
    /// The provider holding the training state.
    holder: Option<ProviderId>,
    /// Server faults in a row (a stored result resets it): see [`SERVER_RETRIES`].
    server_faults: u32,
    /// Nothing of the graph is handed out before this time (after a server fault).
    paused_until: Option<Millis>,
    /// A training subgraph is out: the next one waits, as it starts from the state this one
    /// leaves.
    training_out: bool,
}

struct ProviderState {
    account: Account,
    benchmark: Benchmark,
    graph: Option<GraphId>,
    /// Its compute groups' keys.
    groups: BTreeSet<String>,
    in_flight: BTreeSet<AssignmentId>,
    /// Graphs whose stake its account could not pay: none of their work comes to it.
    short_of_stake: BTreeSet<GraphId>,
    /// What the dashboard shows of it.
    record: views::ProviderRecord,
}

struct InFlight {
    provider: ProviderId,
    account: Account,
    graph: GraphId,
    subgraph: usize,
    deadline: Millis,
    trains: bool,
}

/// The scheduler state machine.
#[derive(Default)]
pub struct Scheduler {
    config: SchedulerConfig,
    graphs: BTreeMap<GraphId, GraphState>,
    providers: BTreeMap<ProviderId, ProviderState>,
    in_flight: BTreeMap<AssignmentId, InFlight>,
    next_assignment: u64,
    conduct: Conduct,
    topics: topics::Topics,
    jobs: jobs::Jobs,
}

impl Scheduler {
    /// A scheduler with this policy.
    pub fn new(config: SchedulerConfig) -> Scheduler {
        Scheduler { config, ..Scheduler::default() }
    }

    /// The same, numbering its assignments from `first` (a restarted task's scheduler must not
    /// reuse the ids of the one before it).
    pub fn numbering_from(self, first: u64) -> Scheduler {
        Scheduler { next_assignment: first, ..self }
    }

    /// Applies one event at time `now` and returns what the server must do.
    pub fn handle(&mut self, now: Millis, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::GraphSubmitted { graph, ops, requirements } => self.submit(graph, ops, requirements, &mut actions),
            Event::GraphCancelled { graph } => self.finish(graph, GraphStatus::Cancelled, &mut actions),
            Event::ProviderJoined { provider, account, benchmark, graph, groups } => {
                if let Some(reason) = self.conduct.quarantine(account, now) {
                    // A connection of a quarantined account gets nothing (and if it joined
                    // before, what it holds goes back).
                    self.drop_provider(provider, &mut actions);
                    actions.push(Action::Rejected { provider, graph: None, reason, code: RejectionCode::Quarantined });
                    // What it held goes to the others now.
                    self.dispatch(now, &mut actions);
                    return actions;
                }
                if let Some(chosen) = graph {
                    let refusal = match self.graphs.get(&chosen) {
                        None => Some((RejectionCode::NotExecuting, format!("{chosen} is not executing"))),
                        Some(state) if state.status != GraphStatus::Computing => {
                            Some((RejectionCode::Finished, format!("{chosen} has ended ({:?})", state.status)))
                        }
                        Some(state) if !state.requirements.accepts(&benchmark) => Some((
                            RejectionCode::Requirements,
                            format!(
                                "this provider does not meet the requirements of {chosen}: it needs {}",
                                state.requirements.shortfalls(&benchmark).join(", ")
                            ),
                        )),
                        Some(_) => None,
                    };
                    if let Some((code, reason)) = refusal {
                        actions.push(Action::Rejected { provider, graph: Some(chosen), reason, code });
                        return actions;
                    }
                }
                // A second join of the same connection keeps what it holds and its record.
                let (in_flight, record) = self
                    .providers
                    .remove(&provider)
                    .map_or_else(|| (BTreeSet::new(), views::ProviderRecord::new(now)), |p| (p.in_flight, p.record));
                let short_of_stake = BTreeSet::new();
                self.providers.insert(
                    provider,
                    ProviderState { account, benchmark, graph, groups, in_flight, short_of_stake, record },
                );
            }
            Event::ProviderLeft { provider } => self.left(provider, now, &mut actions),
            Event::SubgraphCompleted { provider, assignment } => {
                if let Some(flight) = self.in_flight.get(&assignment).filter(|f| f.provider == provider) {
                    self.conduct.completed(flight.account);
                    self.record(provider, true);
                    self.completed(assignment, &mut actions);
                }
            }
            Event::SubgraphFailed { provider, assignment, failure, retryable, over_budget } => {
                if self.in_flight.get(&assignment).is_some_and(|f| f.provider == provider) {
                    self.record(provider, false);
                    match over_budget {
                        Some(over) => self.over_budget(assignment, failure, over, &mut actions),
                        None if retryable => {
                            self.attempt_failed(assignment, Some(failure.op_id), &failure.reason, &mut actions)
                        }
                        None => self.refused(assignment, failure, &mut actions),
                    }
                }
            }
            Event::ServerFault { provider, assignment, reason } => {
                if self.in_flight.get(&assignment).is_some_and(|f| f.provider == provider) {
                    self.server_fault(assignment, &reason, now, &mut actions);
                }
            }
            Event::ReplicaHeld { provider, assignment, answers_wanted } => {
                if self.in_flight.get(&assignment).is_some_and(|f| f.provider == provider) {
                    self.replica_held(assignment, answers_wanted);
                }
            }
            Event::Disputed { provider, assignment, failure } => {
                if let Some(flight) = self.in_flight.get(&assignment).filter(|f| f.provider == provider) {
                    let graph = flight.graph;
                    self.release(assignment);
                    self.fail_graph(graph, failure, &mut actions);
                }
            }
            Event::Judged { right, wrong } => self.judged(right, wrong, now, &mut actions),
            Event::StakeShort { provider, assignment, reason } => {
                if self.in_flight.get(&assignment).is_some_and(|f| f.provider == provider) {
                    self.stake_short(provider, assignment, reason, &mut actions);
                }
            }
            Event::TopicStarted { topic, timing, next_round, next_open_at, open } => {
                self.topics.start(topic, timing, next_round, next_open_at, open);
                self.topics.tick(now, &mut actions);
            }
            Event::TopicStopped { topic } => self.topics.stop(topic, &mut actions),
            Event::RoundAnswered { topic, round } => self.topics.answered(topic, round, &mut actions),
            Event::JobStarted { job, plan } => self.jobs.start(job, plan, &mut actions),
            Event::SlicesAdded { job, from, count } => self.jobs.added(job, from, count),
            Event::JobClosed { job } => self.jobs.closed(job, &mut actions),
            Event::JobCancelled { job } => self.jobs.cancelled(job, &mut actions),
            Event::SlicesStored { provider, bundle, stored, failed, more: true } => {
                self.jobs.stored_part(bundle, provider, &stored, failed, &mut actions);
            }
            Event::SlicesStored { provider, bundle, stored, failed, more: false } => {
                if let Some(account) = self.jobs.stored(bundle, provider, &stored, failed, &mut actions) {
                    self.conduct.completed(account);
                }
            }
            Event::AbandonedStored { job, count } => self.jobs.abandoned_stored(job, count, &mut actions),
            Event::BundleUnsent { bundle } => self.jobs.unsent(bundle),
            Event::Tick => {
                self.topics.tick(now, &mut actions);
                // A provider late with a bundle is stuck or gone, as with a subgraph.
                for provider in self.jobs.late(now) {
                    let Some(account) = self.providers.get(&provider).map(|p| p.account) else {
                        self.jobs.release_provider(provider, true, &mut actions);
                        continue;
                    };
                    self.drop_provider(provider, &mut actions);
                    self.abandoned(account, "a missed deadline", now, &mut actions);
                    actions.push(Action::Evict { provider, reason: "it missed a deadline".into() });
                }
                let expired: Vec<AssignmentId> =
                    self.in_flight.iter().filter(|(_, f)| f.deadline <= now).map(|(id, _)| *id).collect();
                for assignment in expired {
                    let Some((provider, account)) = self.in_flight.get(&assignment).map(|f| (f.provider, f.account))
                    else {
                        continue;
                    };
                    self.slash_abandoned(account, [assignment], "it missed a deadline", &mut actions);
                    actions.push(Action::Withdraw { provider, assignment });
                    self.attempt_failed(assignment, None, "deadline exceeded", &mut actions);
                    // A provider that misses a deadline is stuck or gone: stop trusting it,
                    // so the retry goes elsewhere even if it benchmarked fastest.
                    if let Some(state) = self.providers.remove(&provider) {
                        self.jobs.release_provider(provider, true, &mut actions);
                        self.abandoned(state.account, "a missed deadline", now, &mut actions);
                        for other in state.in_flight {
                            actions.push(Action::Withdraw { provider, assignment: other });
                            self.attempt_failed(other, None, "provider evicted after a missed deadline", &mut actions);
                        }
                        actions.push(Action::Evict { provider, reason: "it missed a deadline".into() });
                    }
                }
            }
        }
        self.dispatch(now, &mut actions);
        self.jobs.dispatch(now, &self.providers, &mut self.next_assignment, &mut actions);
        actions
    }
}

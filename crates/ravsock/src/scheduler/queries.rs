//! What the dispatch task and the dashboard ask the scheduler between events: the next
//! deadline, whether a round takes an answer, the queue's depth, one graph's status, an
//! assignment or bundle that is out, a job's counts, an account's standing. Read-only: nothing
//! here changes the state machine.

use super::{Account, AnswerRefusal, AssignmentId, GraphStatus, Millis, QueueDepth, Scheduler, SubgraphStatus};
use ravproto::jobs::{JobId, SliceCounts};
use ravproto::topics::TopicId;
use ravproto::{GraphId, OpId, ProviderId};

impl Scheduler {
    /// The earliest deadline of any assignment: when the server should send [`Event::Tick`].
    pub fn next_deadline(&self) -> Option<Millis> {
        let pauses = self.graphs.values().filter(|g| g.status == GraphStatus::Computing).filter_map(|g| g.paused_until);
        self.in_flight
            .values()
            .map(|f| f.deadline)
            .chain(pauses)
            .chain(self.topics.next_deadline())
            .chain(self.jobs.next_deadline())
            .min()
    }

    /// Whether `round` of `topic` takes an answer at `now` (checked before the answer is
    /// stored; [`Event::RoundAnswered`] follows once it is).
    pub fn accepts_answer(&self, topic: TopicId, round: u64, now: Millis) -> Result<(), AnswerRefusal> {
        self.topics.accepts(topic, round, now)
    }

    /// A bundle `provider` holds: its job and slices.
    pub fn bundle(&self, bundle: AssignmentId, provider: ProviderId) -> Option<(JobId, Vec<u64>)> {
        self.jobs.bundle(bundle, provider).map(|(job, slices)| (job, slices.to_vec()))
    }

    /// The number the next stored outcome of a running job gets.
    pub fn next_seq(&self, job: JobId) -> Option<u64> {
        self.jobs.next_seq(job)
    }

    /// A running job's counts.
    pub fn job_counts(&self, job: JobId) -> Option<SliceCounts> {
        self.jobs.counts(job)
    }

    /// How much work waits and how much is out, over the graphs being computed.
    pub fn depth(&self) -> QueueDepth {
        let computing = self.graphs.values().filter(|g| g.status == GraphStatus::Computing);
        let ready = computing.flat_map(|g| &g.subgraphs).filter(|s| s.status == SubgraphStatus::Ready).count();
        QueueDepth { ready_subgraphs: ready as u64, assigned_subgraphs: self.in_flight.len() as u64 }
    }

    /// Status of a graph the scheduler knows.
    pub fn graph_status(&self, graph: GraphId) -> Option<GraphStatus> {
        self.graphs.get(&graph).map(|g| g.status)
    }

    /// An assignment that is still out: who holds it, its graph, its ops and expected outputs.
    pub fn assignment(&self, id: AssignmentId) -> Option<(ProviderId, GraphId, Vec<OpId>, Vec<OpId>)> {
        let flight = self.in_flight.get(&id)?;
        let sub = &self.graphs.get(&flight.graph)?.subgraphs.get(flight.subgraph)?.subgraph;
        Some((flight.provider, flight.graph, sub.ops.clone(), sub.outputs.clone()))
    }

    /// Whether completing `assignment` finishes its graph: every other op is computed.
    pub fn completes(&self, assignment: AssignmentId) -> bool {
        let Some(flight) = self.in_flight.get(&assignment) else { return false };
        let Some(graph) = self.graphs.get(&flight.graph) else { return false };
        let Some(sub) = graph.subgraphs.get(flight.subgraph) else { return false };
        graph.status == GraphStatus::Computing && graph.computed_ops + sub.subgraph.ops.len() as u64 == graph.total_ops
    }

    /// Whether `account`'s answers are only spot-checked: a record of
    /// [`ravproto::verify::TRUSTED_AFTER`] agreeing answers in a row.
    pub fn trusted(&self, account: Account) -> bool {
        self.conduct.clean_answers(account) >= ravproto::verify::TRUSTED_AFTER
    }

    /// The account of a joined provider.
    pub fn account_of(&self, provider: ProviderId) -> Option<Account> {
        self.providers.get(&provider).map(|state| state.account)
    }

    /// Assignments currently out, by provider.
    pub fn in_flight(&self, provider: ProviderId) -> Vec<AssignmentId> {
        self.providers.get(&provider).map(|p| p.in_flight.iter().copied().collect()).unwrap_or_default()
    }
}

//! A verified graph's replicas in the scheduler (`ravproto::verify`): the dispatch task
//! compares the answers and holds them until enough agree; the scheduler hands the subgraph
//! out until it has the answers wanted, and keeps each account's record of agreeing answers,
//! which decides whether a spot check may take its word alone.

use super::{Account, Action, AssignmentId, Millis, Scheduler, SubgraphStatus};

impl Scheduler {
    /// An answer to `assignment` is held: its account will not get the subgraph again, and the
    /// subgraph is handed out until `answers_wanted` answers are in or out.
    pub(super) fn replica_held(&mut self, assignment: AssignmentId, answers_wanted: u32) {
        let Some(flight) = self.release(assignment) else { return };
        let Some(graph) = self.graphs.get_mut(&flight.graph) else { return };
        let Some(sub) = graph.subgraphs.get_mut(flight.subgraph) else { return };
        sub.answered_by.insert(flight.account);
        sub.wanted = sub.wanted.max(answers_wanted);
        if sub.status != SubgraphStatus::Computed {
            sub.status = match sub.answered_by.len() + sub.out_to.len() < sub.wanted as usize {
                true => SubgraphStatus::Ready,
                false => SubgraphStatus::Assigned,
            };
        }
    }

    /// A subgraph's answers were compared: agreeing accounts add to their clean record, and
    /// each account in the minority starts again and takes a strike (three in a row
    /// quarantine it, as abandoned work does).
    pub(super) fn judged(&mut self, right: Vec<Account>, wrong: Vec<Account>, now: Millis, actions: &mut Vec<Action>) {
        for account in right {
            self.conduct.answered_right(account);
        }
        for account in wrong {
            self.conduct.answered_wrong(account);
            self.abandoned(account, "a result the other providers disagreed with", now, actions);
        }
    }
}

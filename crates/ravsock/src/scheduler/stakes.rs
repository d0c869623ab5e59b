//! Stakes, as the scheduler sees them (see `ravproto::ledger`, "Stakes"). It knows no
//! balances: the dispatch task stakes a provider's account at its first subgraph of a graph
//! that asks for a stake, and when the balance is short hands that subgraph back
//! ([`Event::StakeShort`]): it goes to another provider, uncharged, and this provider gets
//! nothing more of that graph while it stays connected (one that chose the graph is rejected
//! with the reason). Work of such a graph abandoned (a disconnect holding it, a missed
//! deadline) becomes [`Action::Slash`], which the dispatch task makes once per graph and
//! account.
//!
//! [`Event::StakeShort`]: super::Event::StakeShort

use super::{Account, Action, AssignmentId, Scheduler};
use ravproto::ledger::slash_amount;
use ravproto::provider::RejectionCode;
use ravproto::{GraphId, ProviderId};
use std::collections::BTreeSet;

impl Scheduler {
    /// `provider`'s account could not stake for `assignment`'s graph: the subgraph is ready
    /// again, uncharged, and the graph is closed to this provider.
    pub(super) fn stake_short(
        &mut self,
        provider: ProviderId,
        assignment: AssignmentId,
        reason: String,
        actions: &mut Vec<Action>,
    ) {
        let Some(flight) = self.hand_back(assignment) else { return };
        let Some(state) = self.providers.get_mut(&provider) else { return };
        state.short_of_stake.insert(flight.graph);
        if state.graph == Some(flight.graph) {
            // It chose this graph and cannot take part: told, and forgotten (as at the end
            // of its graph), so it can choose another.
            self.providers.remove(&provider);
            let graph = Some(flight.graph);
            actions.push(Action::Rejected { provider, graph, reason, code: RejectionCode::Requirements });
        }
    }

    /// Slashes `account` in each graph that asks for a stake among `assignments` (still in
    /// flight: call before they are released), which it abandoned (`why`).
    pub(super) fn slash_abandoned(
        &self,
        account: Account,
        assignments: impl IntoIterator<Item = AssignmentId>,
        why: &'static str,
        actions: &mut Vec<Action>,
    ) {
        let graphs: BTreeSet<GraphId> =
            assignments.into_iter().filter_map(|id| self.in_flight.get(&id)).map(|flight| flight.graph).collect();
        for graph in graphs {
            let stake = self.graphs.get(&graph).map_or(0, |state| state.requirements.min_stake);
            if stake > 0 {
                actions.push(Action::Slash { account, graph, amount: slash_amount(stake), why });
            }
        }
    }
}

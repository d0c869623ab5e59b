//! What the scheduler shows the operators' dashboard: each provider connection with what it
//! holds and how it did since it joined, and which ops of a graph are out now and with whom.
//! Read-only views of the one state machine, taken by the dispatch task on request.

use super::{Account, Millis, Scheduler};
use ravproto::messages::Benchmark;
use ravproto::{GraphId, OpId, ProviderId};

/// A provider connection's record since it joined.
#[derive(Clone, Copy, Debug)]
pub(super) struct ProviderRecord {
    joined_at: Millis,
    done: u64,
    failed: u64,
}

impl ProviderRecord {
    pub(super) fn new(now: Millis) -> ProviderRecord {
        ProviderRecord { joined_at: now, done: 0, failed: 0 }
    }
}

/// One provider connection, as the scheduler knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderView {
    pub provider: ProviderId,
    pub account: Account,
    pub benchmark: Benchmark,
    /// The graph it chose, if any.
    pub graph: Option<GraphId>,
    /// Milliseconds since it joined.
    pub joined_ms_ago: u64,
    /// Subgraphs it holds now.
    pub in_flight: u64,
    /// Subgraphs it answered since it joined.
    pub done: u64,
    /// Subgraphs it failed since it joined.
    pub failed: u64,
}

impl Scheduler {
    /// Counts an answer (`done`) or a failure of `provider`'s.
    pub(super) fn record(&mut self, provider: ProviderId, done: bool) {
        if let Some(state) = self.providers.get_mut(&provider) {
            if done {
                state.record.done += 1;
            } else {
                state.record.failed += 1;
            }
        }
    }

    /// Every provider connection that joined, at `now`.
    pub fn provider_views(&self, now: Millis) -> Vec<ProviderView> {
        self.providers
            .iter()
            .map(|(&provider, state)| ProviderView {
                provider,
                account: state.account,
                benchmark: state.benchmark.clone(),
                graph: state.graph,
                joined_ms_ago: now.saturating_sub(state.record.joined_at),
                in_flight: state.in_flight.len() as u64,
                done: state.record.done,
                failed: state.record.failed,
            })
            .collect()
    }

    /// The ops of `graph` handed out now, each with the account holding it.
    pub fn ops_out(&self, graph: GraphId) -> Vec<(OpId, Account)> {
        let Some(state) = self.graphs.get(&graph) else { return Vec::new() };
        self.in_flight
            .values()
            .filter(|flight| flight.graph == graph)
            .filter_map(|flight| Some((state.subgraphs.get(flight.subgraph)?, flight.account)))
            .flat_map(|(sub, account)| sub.subgraph.ops.iter().map(move |&op| (op, account)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assignments, bench, chain, config, submit};
    use super::super::{Event, Scheduler};
    use ravproto::{GraphId, ProviderId};

    #[test]
    fn views_count_answers_and_show_what_is_out() {
        let mut scheduler = Scheduler::new(config(2));
        submit(&mut scheduler, 1, chain(4));
        let joined = Event::ProviderJoined {
            provider: ProviderId(5),
            account: 9,
            benchmark: bench(1.0),
            graph: None,
            groups: Default::default(),
        };
        let handed = assignments(&scheduler.handle(100, joined));
        assert_eq!(handed.len(), 1, "one window of the chain is out");
        let out = scheduler.ops_out(GraphId(1));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|&(_, account)| account == 9), "{out:?}");
        scheduler.handle(150, Event::SubgraphCompleted { provider: ProviderId(5), assignment: handed[0].id });
        let views = scheduler.provider_views(400);
        assert_eq!(views.len(), 1);
        assert_eq!((views[0].account, views[0].joined_ms_ago, views[0].done, views[0].failed), (9, 300, 1, 0));
        assert_eq!(views[0].in_flight, 1, "the next window went out at once");
    }
}

//! Providers' stakes in paid graphs (see `ravproto::ledger`, "Stakes"): taken at an account's
//! first subgraph of a graph before the subgraph is sent, and slashed when the scheduler says
//! work was abandoned. Only graphs that pay (executed with accounting on) take stakes; the
//! ledger's keys make each movement once per graph and account, also across restarts.

use super::task::Dispatcher;
use crate::error::{Error, Result};
use crate::scheduler::{Account, Assignment, Event};
use ravproto::GraphId;

impl Dispatcher {
    /// Stakes the account of `assignment`'s provider in its graph when that is due. `false`:
    /// the account is short, and the assignment went back to the scheduler unsent.
    pub(super) async fn stake_for(&mut self, assignment: &Assignment) -> Result<bool> {
        let Some(run) = self.runs.get(assignment.graph) else { return Ok(true) };
        if run.payer.is_none() || run.stake == 0 {
            return Ok(true);
        }
        let Some(account) = self.scheduler.account_of(assignment.provider) else { return Ok(true) };
        if run.staked.contains(&account) {
            return Ok(true);
        }
        let stake = run.stake;
        match self.db.stake(assignment.graph, account, stake).await {
            Ok(()) => {
                tracing::info!(graph = %assignment.graph, account, stake, "provider staked");
                if let Some(run) = self.runs.get_mut(assignment.graph) {
                    run.staked.insert(account);
                }
                Ok(true)
            }
            Err(Error::InsufficientFunds(reason)) => {
                tracing::info!(graph = %assignment.graph, account, %reason, "provider cannot stake");
                let (provider, assignment) = (assignment.provider, assignment.id);
                self.followups.push(Event::StakeShort { provider, assignment, reason });
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Keeps `amount` of `account`'s stake in `graph`, which it abandoned work of (`why`).
    /// Not written now (storage failing), it is not made: a slash is a penalty, not a debt.
    pub(super) async fn slash(&self, account: Account, graph: GraphId, amount: u64, why: &str) {
        if self.runs.get(graph).is_none_or(|run| run.payer.is_none()) {
            return;
        }
        match self.db.slash(graph, account, amount).await {
            Ok(true) => tracing::warn!(%graph, account, amount, why, "provider's stake slashed"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%graph, account, cause = %error, "cannot slash a provider's stake"),
        }
    }
}

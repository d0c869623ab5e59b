//! Providers' stakes in paid graphs (see `ravproto::ledger`, "Stakes"): staked once per graph
//! and account at its first subgraph, partly slashed once when it leaves holding work or misses
//! a deadline, and what is left returned when the graph ends. Each is a movement of the
//! provider's own pockets with a key per graph and account, so a replay after a crash (a stake
//! taken again at the first subgraph after a restart, a return swept at the next start) moves
//! nothing twice.

use super::Db;
use super::ledger::{Movement, graph_of, is_balance_check};
use crate::error::{Error, Result};
use ravproto::GraphId;
use ravproto::ledger::{Pocket, Reason};

/// The idempotency key of `account`'s stake in `graph`.
fn stake_key(graph: GraphId, account: i64) -> String {
    format!("graph:{}:stake:{account}", graph.0)
}

/// Sums a graph's stakes per account: staked minus slashed minus returned. `$tail` narrows the
/// rows (a literal: sqlx takes only literal SQL).
macro_rules! stakes_left {
    ($tail:literal) => {
        concat!(
            "SELECT reference, to_account, CAST(SUM(CASE WHEN reason = $1 THEN amount ELSE -amount END) AS BIGINT) ",
            "FROM ledger_entries WHERE reason IN ($1, $2, $3) ",
            $tail,
            " GROUP BY reference, to_account HAVING SUM(CASE WHEN reason = $1 THEN amount ELSE -amount END) <> 0"
        )
    };
}

impl Db {
    /// Moves `amount` of `account`'s available balance to staked for `graph`, once per graph
    /// and account (again after a restart moves nothing). 402 when the balance is short.
    pub async fn stake(&self, graph: GraphId, account: i64, amount: u64) -> Result<()> {
        let movement = Movement {
            key: stake_key(graph, account),
            from: Some((account, Pocket::Available)),
            to: (account, Pocket::Staked),
            amount,
            reason: Reason::Stake,
            reference: graph.to_string(),
        };
        match self.apply(&[&movement]).await {
            Err(error) if is_balance_check(&error) => Err(Error::InsufficientFunds(format!(
                "{graph} asks each provider for a stake of {amount} units, more than this account has available"
            ))),
            other => other,
        }
    }

    /// Keeps `amount` of `account`'s stake in `graph` (moved to slashed), once per graph and
    /// account; nothing when it never staked there. Returns whether this call slashed.
    pub async fn slash(&self, graph: GraphId, account: i64, amount: u64) -> Result<bool> {
        let key = format!("graph:{}:slash:{account}", graph.0);
        if amount == 0 || self.entry_with_key(&stake_key(graph, account)).await?.is_none() {
            return Ok(false);
        }
        if self.entry_with_key(&key).await?.is_some() {
            return Ok(false);
        }
        let movement = Movement {
            key,
            from: Some((account, Pocket::Staked)),
            to: (account, Pocket::Slashed),
            amount,
            reason: Reason::Slash,
            reference: graph.to_string(),
        };
        self.apply(&[&movement]).await?;
        Ok(true)
    }

    /// Returns what is left of every provider's stake in an ended `graph` (once); the units
    /// returned in all.
    pub async fn return_stakes(&self, graph: GraphId) -> Result<u64> {
        let rows: Vec<(String, i64, i64)> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as(stakes_left!("AND reference = $4"))
                .bind(Reason::Stake.name())
                .bind(Reason::Slash.name())
                .bind(Reason::StakeReturn.name())
                .bind(graph.to_string())
                .fetch_all(pool)
                .await)?;
        let movements: Vec<Movement> = rows
            .into_iter()
            .filter(|(_, _, left)| *left > 0)
            .map(|(_, account, left)| Movement {
                key: format!("graph:{}:unstake:{account}", graph.0),
                from: Some((account, Pocket::Staked)),
                to: (account, Pocket::Available),
                amount: left as u64,
                reason: Reason::StakeReturn,
                reference: graph.to_string(),
            })
            .collect();
        if !movements.is_empty() {
            self.apply(&movements.iter().collect::<Vec<_>>()).await?;
        }
        Ok(movements.iter().map(|movement| movement.amount).sum())
    }

    /// Stakes not yet returned, by graph and account, where not zero.
    pub async fn open_stakes(&self) -> Result<Vec<(GraphId, i64, i64)>> {
        let rows: Vec<(String, i64, i64)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(stakes_left!(""))
            .bind(Reason::Stake.name())
            .bind(Reason::Slash.name())
            .bind(Reason::StakeReturn.name())
            .fetch_all(pool)
            .await)?;
        rows.into_iter()
            .map(|(reference, account, left)| Ok((graph_of(&reference, "a stake")?, account, left)))
            .collect()
    }
}

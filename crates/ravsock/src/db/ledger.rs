//! The ledger tables (`ledger_balances`, `ledger_entries`; see `ravproto::ledger`): movements
//! of integer units, written as statements of the transaction that causes them (a topic's
//! truth and its rewards commit together), and the reads behind `GET /v1/account` and
//! `ravsock ledger check`.
//!
//! A movement is four statements, sent in one batch without reading anything back: the
//! balance rows of both sides are made to exist (at 0), the entry is inserted unless its key
//! exists (`ON CONFLICT DO NOTHING`), and the two balances change only where the entry with
//! that key carries this attempt's random nonce, that is, where this attempt inserted it. A
//! replay therefore changes nothing, on SQLite (one writer at a time) and on PostgreSQL (whose
//! READ COMMITTED lets two attempts with one key reach their updates: the second's insert
//! waits for the first's commit, does nothing, and its updates then see the first's nonce).
//! The debited row exists before its update, so an overdraft always meets the `amount >= 0`
//! CHECK instead of updating no row.

use super::{Db, Statement, now_secs};
use crate::error::{Error, Result};
use ravproto::ledger::{Balance, Book, Entry, EntryPage, MAX_AMOUNT, MAX_KEY_BYTES, Pocket, Reason};
use ravproto::{GraphId, OpId};
use std::collections::BTreeMap;

/// One movement of units, before it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    /// The idempotency key.
    pub key: String,
    /// The debited account and pocket; none: the mint.
    pub from: Option<(i64, Pocket)>,
    /// The credited account and pocket.
    pub to: (i64, Pocket),
    /// Units, 1 to `MAX_AMOUNT`.
    pub amount: u64,
    /// Why.
    pub reason: Reason,
    /// For people.
    pub reference: String,
}

/// Checks an amount a caller sent: 1 to `MAX_AMOUNT` units.
pub fn check_amount(amount: u64) -> Result<i64> {
    match amount {
        0 => Err(Error::BadRequest("an amount must be at least 1 unit".into())),
        amount if amount > MAX_AMOUNT => {
            Err(Error::BadRequest(format!("an amount may be at most {MAX_AMOUNT} units, not {amount}")))
        }
        amount => Ok(amount as i64),
    }
}

/// Checks an idempotency key a caller sent: 1 to `MAX_KEY_BYTES` bytes of printable ASCII.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadRequest(format!(
            "an idempotency key is 1 to {MAX_KEY_BYTES} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

/// The statements of `movement` (see the module docs).
pub(super) fn movement_statements(movement: &Movement) -> Result<Vec<Statement>> {
    let amount = check_amount(movement.amount)?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| Error::Internal(format!("no randomness for a ledger nonce: {e}")))?;
    let nonce = i64::from_le_bytes(nonce);
    let exists = |account: i64, pocket: Pocket| {
        Statement::new("INSERT INTO ledger_balances (account_id, pocket, amount) VALUES (")
            .int(account)
            .sql(", ")
            .text(Some(pocket.name().into()))
            .sql(", 0) ON CONFLICT (account_id, pocket) DO NOTHING")
    };
    let change = |account: i64, pocket: Pocket, sign: &'static str| {
        Statement::new("UPDATE ledger_balances SET amount = amount ")
            .sql(sign)
            .sql(" ")
            .int(amount)
            .sql(" WHERE account_id = ")
            .int(account)
            .sql(" AND pocket = ")
            .text(Some(pocket.name().into()))
            .sql(" AND EXISTS (SELECT 1 FROM ledger_entries WHERE idempotency_key = ")
            .text(Some(movement.key.clone()))
            .sql(" AND nonce = ")
            .int(nonce)
            .sql(")")
    };
    let (to, to_pocket) = movement.to;
    let (from_account, from_pocket) = match movement.from {
        Some((account, pocket)) => (Some(account), pocket),
        None => (None, Pocket::Mint),
    };
    let mut statements = vec![exists(to, to_pocket)];
    if let Some(from) = from_account {
        statements.push(exists(from, from_pocket));
    }
    let insert = Statement::new(
        "INSERT INTO ledger_entries (idempotency_key, nonce, from_account, from_pocket, to_account, to_pocket, \
         amount, reason, reference, created_at) VALUES (",
    )
    .text(Some(movement.key.clone()))
    .sql(", ")
    .int(nonce)
    .sql(", ");
    let insert = match from_account {
        Some(from) => insert.int(from),
        // A NULL literal: a NULL bound as text is not a bigint to PostgreSQL.
        None => insert.sql("NULL"),
    };
    statements.push(
        insert
            .sql(", ")
            .text(Some(from_pocket.name().into()))
            .sql(", ")
            .int(to)
            .sql(", ")
            .text(Some(to_pocket.name().into()))
            .sql(", ")
            .int(amount)
            .sql(", ")
            .text(Some(movement.reason.name().into()))
            .sql(", ")
            .text(Some(movement.reference.clone()))
            .sql(", ")
            .int(now_secs())
            .sql(") ON CONFLICT (idempotency_key) DO NOTHING"),
    );
    if let Some(from) = from_account {
        statements.push(change(from, from_pocket, "-"));
    }
    statements.push(change(to, to_pocket, "+"));
    Ok(statements)
}

/// Whether a database error is a ledger CHECK refusing a balance below zero or over the
/// maximum.
pub(super) fn is_balance_check(error: &Error) -> bool {
    matches!(error, Error::Database(sqlx::Error::Database(e)) if e.kind() == sqlx::error::ErrorKind::CheckViolation)
}

/// The idempotency key of a graph's escrow.
pub fn escrow_key(graph: GraphId) -> String {
    format!("graph:{}:escrow", graph.0)
}

/// Reads a graph's reference back (`graph#N`, as `GraphId` displays); `what` names the entry
/// for the error.
pub(super) fn graph_of(reference: &str, what: &str) -> Result<GraphId> {
    reference
        .strip_prefix("graph#")
        .and_then(|id| id.parse().ok())
        .map(GraphId)
        .ok_or_else(|| Error::Internal(format!("{what} has the reference {reference:?}")))
}

/// The movement paying `provider` the price of a subgraph of `graph` (whose first op is
/// `first`) from the escrow of `owner`. A verified graph pays each agreeing answer of a
/// subgraph (`replica`): its key names the account too.
pub fn subgraph_payment(graph: GraphId, first: OpId, owner: i64, provider: i64, price: u64, replica: bool) -> Movement {
    let key = match replica {
        true => format!("graph:{}:op:{}:by:{provider}", graph.0, first.0),
        false => format!("graph:{}:op:{}", graph.0, first.0),
    };
    Movement {
        key,
        from: Some((owner, Pocket::Escrowed)),
        to: (provider, Pocket::Available),
        amount: price,
        reason: Reason::SubgraphPayment,
        reference: graph.to_string(),
    }
}

type EntryRow = (i64, String, Option<String>, String, String, String, i64, String, String, i64);

/// The SELECT of entries with both sides' account names, followed by `$tail` (a literal: the
/// SQL stays a literal string, as sqlx asks).
macro_rules! select_entries {
    ($tail:literal) => {
        concat!(
            "SELECT e.id, e.idempotency_key, f.name, e.from_pocket, t.name, e.to_pocket, e.amount, e.reason, ",
            "e.reference, e.created_at FROM ledger_entries e LEFT JOIN accounts f ON f.id = e.from_account ",
            "JOIN accounts t ON t.id = e.to_account ",
            $tail
        )
    };
}

fn entry(row: EntryRow) -> Result<Entry> {
    let (id, key, from, from_pocket, to, to_pocket, amount, reason, reference, at) = row;
    let pocket = |name: &str| {
        Pocket::from_name(name).ok_or_else(|| Error::Internal(format!("unknown pocket {name:?} in the ledger")))
    };
    Ok(Entry {
        id: id as u64,
        from: Book { account: from, pocket: pocket(&from_pocket)? },
        to: Book { account: Some(to), pocket: pocket(&to_pocket)? },
        amount: amount as u64,
        reason: Reason::from_name(&reason)
            .ok_or_else(|| Error::Internal(format!("unknown reason {reason:?} in the ledger")))?,
        reference,
        key,
        at: at as u64,
    })
}

/// What `ravsock ledger check` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Entries read.
    pub entries: u64,
    /// Accounts with a balance row.
    pub accounts: u64,
    /// Units issued by credits, in all.
    pub issued: u64,
    /// Every broken invariant, one sentence each; empty when the ledger is sound.
    pub problems: Vec<String>,
}

impl Db {
    /// Makes `movements` in one transaction of their own. A balance CHECK refusing one (an
    /// overdraft, a balance over the maximum) is an error that [`is_balance_check`] tells: on
    /// PostgreSQL it comes from the statement, on SQLite from the commit.
    pub(super) async fn apply(&self, movements: &[&Movement]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for movement in movements {
            for statement in movement_statements(movement)? {
                tx.execute(statement).await?;
            }
        }
        Ok(tx.commit().await?)
    }

    /// The id of the account `name`, or 404.
    pub async fn account_id(&self, name: &str) -> Result<i64> {
        let found: Option<(i64,)> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as("SELECT id FROM accounts WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await)?;
        found.map(|(id,)| id).ok_or_else(|| Error::NotFound(format!("no account is named `{name}`")))
    }

    /// Issues `amount` units to `account`'s available balance, once per `key`: the same key
    /// again answers the first credit, and with another account or amount is a conflict.
    pub async fn credit(&self, account: &str, amount: u64, key: &str) -> Result<Entry> {
        check_amount(amount)?;
        check_key(key)?;
        // An admin's keys live apart from the ones the server makes (`graph:…`, `topic:…`), so
        // no credit can take the key of a movement the server will make.
        let key = &format!("credit:{key}");
        let id = self.account_id(account).await?;
        let same = |entry: &Entry| {
            entry.reason == Reason::Credit && entry.amount == amount && entry.to.account.as_deref() == Some(account)
        };
        if let Some(entry) = self.entry_with_key(key).await? {
            return match same(&entry) {
                true => Ok(entry),
                false => Err(Error::Conflict(format!("the idempotency key `{key}` was used for another movement"))),
            };
        }
        let movement = Movement {
            key: key.into(),
            from: None,
            to: (id, Pocket::Available),
            amount,
            reason: Reason::Credit,
            reference: format!("credit to {account}"),
        };
        match self.apply(&[&movement]).await {
            Err(error) if is_balance_check(&error) => {
                return Err(Error::BadRequest(format!(
                    "crediting {amount} units would take `{account}`'s balance over the most an account may hold ({MAX_AMOUNT})"
                )));
            }
            other => other?,
        }
        let entry = self.entry_with_key(key).await?.ok_or_else(|| Error::Internal("a credit vanished".into()))?;
        match same(&entry) {
            true => Ok(entry),
            false => Err(Error::Conflict(format!("the idempotency key `{key}` was used for another movement"))),
        }
    }

    /// The entry with idempotency key `key`, if any.
    pub async fn entry_with_key(&self, key: &str) -> Result<Option<Entry>> {
        let row: Option<EntryRow> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as(select_entries!("WHERE e.idempotency_key = $1"))
                .bind(key)
                .fetch_optional(pool)
                .await)?;
        row.map(entry).transpose()
    }

    /// The balances of the account `id` (named `name`).
    pub async fn balance(&self, id: i64, name: &str) -> Result<Balance> {
        let rows: Vec<(String, i64)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT pocket, amount FROM ledger_balances WHERE account_id = $1"
        )
        .bind(id)
        .fetch_all(pool)
        .await)?;
        let mut balance = Balance { account: name.into(), ..Balance::default() };
        for (pocket, amount) in rows {
            let amount = amount as u64;
            match Pocket::from_name(&pocket) {
                Some(Pocket::Available) => balance.available = amount,
                Some(Pocket::Staked) => balance.staked = amount,
                Some(Pocket::Escrowed) => balance.escrowed = amount,
                Some(Pocket::Slashed) => balance.slashed = amount,
                _ => return Err(Error::Internal(format!("unknown pocket {pocket:?} in the ledger"))),
            }
        }
        Ok(balance)
    }

    /// The movements into or out of account `id` after entry `after`, oldest first, at most
    /// `limit` of them.
    pub async fn entries_of(&self, id: i64, after: u64, limit: u32) -> Result<EntryPage> {
        let limit = limit.clamp(1, ravproto::ledger::MAX_ENTRIES_PER_PAGE);
        let rows: Vec<EntryRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(select_entries!(
            "WHERE (e.from_account = $1 OR e.to_account = $1) AND e.id > $2 ORDER BY e.id LIMIT $3"
        ))
        .bind(id)
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await)?;
        let mut entries = rows.into_iter().map(entry).collect::<Result<Vec<_>>>()?;
        let next = match entries.len() > limit as usize {
            true => {
                entries.truncate(limit as usize);
                entries.last().map(|entry| entry.id)
            }
            false => None,
        };
        Ok(EntryPage { entries, next })
    }

    /// Moves `cost` units of `owner`'s available balance to escrow for `graph`, once (a graph
    /// executed again after a crash is not charged twice); 402 when the balance is short.
    pub async fn escrow_graph(&self, graph: GraphId, owner: i64, owner_name: &str, cost: u64) -> Result<()> {
        if cost == 0 {
            return Ok(());
        }
        let short = |available: u64| {
            Error::InsufficientFunds(format!(
                "computing {graph} costs {cost} units, and `{owner_name}` has {available} available"
            ))
        };
        let available = self.balance(owner, owner_name).await?.available;
        if available < cost && self.entry_with_key(&escrow_key(graph)).await?.is_none() {
            return Err(short(available));
        }
        let movement = Movement {
            key: escrow_key(graph),
            from: Some((owner, Pocket::Available)),
            to: (owner, Pocket::Escrowed),
            amount: cost,
            reason: Reason::GraphEscrow,
            reference: graph.to_string(),
        };
        match self.apply(&[&movement]).await {
            Err(error) if is_balance_check(&error) => Err(short(self.balance(owner, owner_name).await?.available)),
            other => other,
        }
    }

    /// Whether `graph` has an escrow (it was executed with accounting on): only then are its
    /// subgraphs paid.
    pub async fn graph_escrowed(&self, graph: GraphId) -> Result<bool> {
        Ok(self.entry_with_key(&escrow_key(graph)).await?.is_some_and(|entry| entry.reason == Reason::GraphEscrow))
    }

    /// What is left of each graph's escrow, by graph, where it is not zero: escrowed minus
    /// paid and refunded.
    pub async fn open_escrows(&self) -> Result<Vec<(GraphId, i64)>> {
        let rows: Vec<(String, i64)> = on_backend!(self, |pool, sql, DB| {
            sqlx::query_as(
            "SELECT reference, CAST(SUM(CASE WHEN reason = $1 THEN amount ELSE -amount END) AS BIGINT) FROM ledger_entries \
             WHERE reason IN ($1, $2, $3) GROUP BY reference HAVING SUM(CASE WHEN reason = $1 THEN amount ELSE -amount END) <> 0"
        )
        .bind(Reason::GraphEscrow.name())
        .bind(Reason::SubgraphPayment.name())
        .bind(Reason::GraphRefund.name())
        .fetch_all(pool)
        .await
        })?;
        rows.into_iter().map(|(reference, left)| Ok((graph_of(&reference, "a graph's escrow")?, left))).collect()
    }

    /// Returns what is left of an ended graph's escrow to its owner (once); the units
    /// returned.
    pub async fn settle_graph(&self, graph: GraphId, owner: i64) -> Result<u64> {
        // This graph's entries only, by the reference index (not every graph's, as
        // `open_escrows` reads them).
        let (left,): (i64,) = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN reason = $1 THEN amount ELSE -amount END), 0) AS BIGINT) \
             FROM ledger_entries WHERE reference = $4 AND reason IN ($1, $2, $3)"
        )
        .bind(Reason::GraphEscrow.name())
        .bind(Reason::SubgraphPayment.name())
        .bind(Reason::GraphRefund.name())
        .bind(graph.to_string())
        .fetch_one(pool)
        .await)?;
        if left <= 0 {
            return Ok(0);
        }
        let movement = Movement {
            key: format!("graph:{}:refund", graph.0),
            from: Some((owner, Pocket::Escrowed)),
            to: (owner, Pocket::Available),
            amount: left as u64,
            reason: Reason::GraphRefund,
            reference: graph.to_string(),
        };
        self.apply(&[&movement]).await?;
        Ok(left as u64)
    }

    /// Recomputes every balance from the entries and checks the ledger's invariants: each
    /// stored balance equals its entries' sum; the balances add up to the units issued; no
    /// balance is below zero; no reference paid the same account twice for one reason, except
    /// a graph's subgraphs (each has its own key); and the escrow of an ended graph, and every
    /// provider's stake in it, is zero.
    pub async fn check_ledger(&self) -> Result<CheckReport> {
        type Sum = (Option<i64>, String, i64);
        let (credited, debited, stored): (Vec<Sum>, Vec<Sum>, Vec<Sum>) = on_backend!(self, |pool, sql, DB| {
            let credited = sqlx::query_as(
                "SELECT to_account, to_pocket, CAST(SUM(amount) AS BIGINT) FROM ledger_entries GROUP BY to_account, to_pocket",
            )
            .fetch_all(pool)
            .await?;
            let debited = sqlx::query_as(
                "SELECT from_account, from_pocket, CAST(SUM(amount) AS BIGINT) FROM ledger_entries GROUP BY from_account, from_pocket",
            )
            .fetch_all(pool)
            .await?;
            let stored =
                sqlx::query_as("SELECT account_id, pocket, amount FROM ledger_balances").fetch_all(pool).await?;
            (credited, debited, stored)
        });
        let (entries, twice): (i64, Vec<(String, String, i64)>) = on_backend!(self, |pool, sql, DB| {
            let (entries,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ledger_entries").fetch_one(pool).await?;
            let twice = sqlx::query_as(
                "SELECT reason, reference, CAST(COUNT(*) AS BIGINT) FROM ledger_entries WHERE reason NOT IN ($1, $2) \
                 GROUP BY reason, reference, to_account, to_pocket HAVING COUNT(*) > 1",
            )
            .bind(Reason::Credit.name())
            .bind(Reason::SubgraphPayment.name())
            .fetch_all(pool)
            .await?;
            (entries, twice)
        });
        let mut recomputed: BTreeMap<(Option<i64>, String), i128> = BTreeMap::new();
        for (account, pocket, sum) in credited {
            *recomputed.entry((account, pocket)).or_default() += i128::from(sum);
        }
        for (account, pocket, sum) in debited {
            *recomputed.entry((account, pocket)).or_default() -= i128::from(sum);
        }
        let issued = -recomputed.remove(&(None, Pocket::Mint.name().into())).unwrap_or(0);
        let mut report = CheckReport { entries: entries as u64, issued: issued as u64, ..CheckReport::default() };
        let mut stored_map: BTreeMap<(Option<i64>, String), i128> = BTreeMap::new();
        for (account, pocket, amount) in stored {
            stored_map.insert((account, pocket), i128::from(amount));
        }
        report.accounts =
            stored_map.keys().filter_map(|(account, _)| *account).collect::<std::collections::BTreeSet<_>>().len()
                as u64;
        let keys: std::collections::BTreeSet<_> = recomputed.keys().chain(stored_map.keys()).cloned().collect();
        let mut total: i128 = 0;
        for key in keys {
            let from_entries = recomputed.get(&key).copied().unwrap_or(0);
            let stored = stored_map.get(&key).copied().unwrap_or(0);
            let (account, pocket) = &key;
            let who = account.map_or_else(|| "the mint".to_string(), |id| format!("account {id}"));
            if key.0.is_none() {
                report.problems.push(format!("{who} has a `{pocket}` book, which only accounts have"));
            }
            if from_entries != stored {
                report
                    .problems
                    .push(format!("{who} holds {stored} in `{pocket}`, but its entries add up to {from_entries}"));
            }
            if from_entries < 0 {
                report.problems.push(format!("{who}'s `{pocket}` entries add up to {from_entries}, below zero"));
            }
            total += stored;
        }
        if total != issued {
            report.problems.push(format!("the balances add up to {total} units, but {issued} were issued"));
        }
        for (graph, left) in self.open_escrows().await? {
            let ended = self.graph(graph).await?.is_none_or(|stored| stored.status.has_ended());
            if left < 0 {
                report.problems.push(format!("{graph} paid out {} units more than it escrowed", -left));
            } else if ended {
                report.problems.push(format!("the escrow of {graph}, which ended, still holds {left} units"));
            }
        }
        for (graph, account, left) in self.open_stakes().await? {
            if left < 0 {
                report
                    .problems
                    .push(format!("account {account} got back {} units more than it staked in {graph}", -left));
            } else if self.graph(graph).await?.is_none_or(|stored| stored.status.has_ended()) {
                report
                    .problems
                    .push(format!("account {account} still has {left} units staked in {graph}, which ended"));
            }
        }
        for (reason, reference, count) in twice {
            report.problems.push(format!("`{reference}` paid one account {count} times ({reason})"));
        }
        Ok(report)
    }
}

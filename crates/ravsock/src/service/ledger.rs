//! The ledger for its callers: an account's balances and movements (its own only), and an
//! admin's credit. Movements caused by work (a topic's rewards) are written by the service
//! that does the work, in its own transaction; see `ravproto::ledger`.

use super::access;
pub use crate::config::Accounting;
use crate::db::{Account, Db};
use crate::error::Result;
use ravproto::ledger::{Balance, CreditRequest, Entry, EntryPage, MAX_ENTRIES_PER_PAGE};

/// The caller's balances.
pub async fn balance(db: &Db, caller: &Account) -> Result<Balance> {
    db.balance(caller.id, &caller.name).await
}

/// The caller's movements after entry `after` (0: from the first), oldest first.
pub async fn entries(db: &Db, caller: &Account, after: Option<u64>, limit: Option<u32>) -> Result<EntryPage> {
    db.entries_of(caller.id, after.unwrap_or(0), limit.unwrap_or(MAX_ENTRIES_PER_PAGE)).await
}

/// Issues units to an account (admin only), once per idempotency key.
pub async fn credit(db: &Db, caller: &Account, request: CreditRequest) -> Result<Entry> {
    access::admin(caller)?;
    let entry = db.credit(&request.account, request.amount, &request.key).await?;
    tracing::info!(admin = %caller.name, account = %request.account, amount = request.amount, entry = entry.id, "credit");
    Ok(entry)
}

//! The caller's account in ravsock's ledger (`ravproto::ledger`): its balances
//! ([`Client::balance`]) and its movements, oldest first ([`Client::entries`]). Units are
//! issued by an admin (`ravsock account credit`); a topic's truth pays its workers from the
//! requester's available balance when the server runs with `--accounting on`.

use crate::client::Client;
use crate::error::Result;
use ravproto::ledger::{Balance, Entry, EntryPage};
use ravproto::routes;

impl Client {
    /// This account's balances: available, staked, escrowed, slashed.
    pub async fn balance(&self) -> Result<Balance> {
        self.get(routes::ACCOUNT).await
    }

    /// Every movement into or out of this account, oldest first (read page by page).
    pub async fn entries(&self) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let page: EntryPage = self.get(&format!("{}?after={after}", routes::ACCOUNT_ENTRIES)).await?;
            entries.extend(page.entries);
            match page.next {
                Some(next) => after = next,
                None => return Ok(entries),
            }
        }
    }
}

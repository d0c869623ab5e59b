//! The caller's account in ravsock's ledger (`ravproto::ledger`): its balances
//! ([`Client::balance`]) and its movements, oldest first ([`Client::entries`]). Units are
//! issued by an admin (`ravsock account credit`); a topic's truth pays its workers from the
//! requester's available balance when the server runs with `--accounting on`.

use crate::client::Client;
use crate::error::Result;
use ravproto::ledger::{Balance, Entry};
use ravproto::routes;

impl Client {
    /// This account's balances: available, staked, escrowed, slashed.
    pub async fn balance(&self) -> Result<Balance> {
        self.get(routes::ACCOUNT).await
    }

    /// Every movement into or out of this account, oldest first (read page by page).
    pub async fn entries(&self) -> Result<Vec<Entry>> {
        Ok(self.http.ledger_entries().await?)
    }
}

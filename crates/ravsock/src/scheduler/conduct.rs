//! How each provider account has behaved: work it abandoned (a disconnect holding work, a
//! missed deadline) counts against the account, and an account that abandons work several
//! times in a row is quarantined for a while: its providers' joins are refused, with the
//! reason, until the time is up. Finishing an assignment clears the count.
//!
//! A verified graph's answers also count: agreeing ones build a clean record (which lets a
//! spot check take an account's word alone), a wrong one starts it again.
//!
//! Kept per account, not per connection: a provider that reconnects is a new connection of
//! the same account, and must not come back with a clean record.

use super::Millis;
use std::collections::BTreeMap;

/// The account behind a provider connection (the row id of its token's account).
pub type Account = i64;

/// Strikes and quarantines by account.
#[derive(Debug, Default)]
pub(super) struct Conduct {
    /// Abandoned assignments in a row.
    strikes: BTreeMap<Account, u32>,
    /// Quarantined accounts: until when, and why.
    quarantined: BTreeMap<Account, (Millis, String)>,
    /// Verified answers that agreed with the stored value, in a row.
    clean_answers: BTreeMap<Account, u32>,
}

impl Conduct {
    /// `account` abandoned work (`what`); at `after` strikes in a row it is quarantined until
    /// `now + duration`. Returns whether that happened now.
    pub(super) fn abandoned(
        &mut self,
        account: Account,
        what: &str,
        now: Millis,
        after: u32,
        duration: Millis,
    ) -> bool {
        let strikes = self.strikes.entry(account).or_default();
        *strikes += 1;
        if *strikes < after {
            return false;
        }
        let reason = format!(
            "this provider account is quarantined for {} s: it abandoned {strikes} assignments in a row (last: {what})",
            duration / 1000
        );
        self.strikes.remove(&account);
        self.quarantined.insert(account, (now.saturating_add(duration), reason));
        true
    }

    /// `account` finished an assignment: its record is clean again.
    pub(super) fn completed(&mut self, account: Account) {
        self.strikes.remove(&account);
    }

    /// A verified answer of `account` agreed with the stored value: its record grows, and so
    /// does its clean slate for strikes.
    pub(super) fn answered_right(&mut self, account: Account) {
        let clean = self.clean_answers.entry(account).or_default();
        *clean = clean.saturating_add(1);
        self.strikes.remove(&account);
    }

    /// A verified answer of `account` disagreed with the stored value: its record starts again.
    pub(super) fn answered_wrong(&mut self, account: Account) {
        self.clean_answers.remove(&account);
    }

    /// Verified answers of `account` that agreed, in a row.
    pub(super) fn clean_answers(&self, account: Account) -> u32 {
        self.clean_answers.get(&account).copied().unwrap_or(0)
    }

    /// Why `account` may not take work at `now`, if it is quarantined.
    pub(super) fn quarantine(&mut self, account: Account, now: Millis) -> Option<String> {
        match self.quarantined.get(&account) {
            Some((until, reason)) if now < *until => Some(format!("{reason}; {} s left", (until - now).div_ceil(1000))),
            Some(_) => {
                self.quarantined.remove(&account);
                None
            }
            None => None,
        }
    }
}

//! The ledger on the wire: balances, movements (entries) and the admin's credit.
//!
//! Every account holds integer units (never floats) in four pockets: `available` (free to
//! spend), `staked` (a provider's stake while it works), `escrowed` (a requester's funds held
//! for work it ordered) and `slashed` (a record of the stake taken for broken promises). Money
//! moves only as [`Entry`] rows: double entry (what leaves one [`Book`] enters another),
//! append-only, each with a unique idempotency key, so replaying a movement after a crash
//! never moves it twice. Units enter the system only by an admin's credit, which moves them
//! from the mint (the one book with no account, whose balance is minus everything issued).
//!
//! # Where units move (`reason`)
//! | reason | from → to | key |
//! |---|---|---|
//! | `credit` | mint → account's available | `credit:{the admin's key}` |
//! | `topic_reward` | requester's available → worker's available | `topic:{id}:round:{n}:worker:{account}` |
//! | `graph_escrow` | requester's available → requester's escrowed | `graph:{id}:escrow` |
//! | `subgraph_payment` | requester's escrowed → provider's available | `graph:{id}:op:{first op of the subgraph}` |
//! | `graph_refund` | requester's escrowed → requester's available | `graph:{id}:refund` |
//! | `stake` | provider's available → provider's staked | `graph:{id}:stake:{account}` |
//! | `slash` | provider's staked → provider's slashed | `graph:{id}:slash:{account}` |
//! | `stake_return` | provider's staked → provider's available | `graph:{id}:unstake:{account}` |
//!
//! # What a graph costs
//! With accounting on, executing a graph moves its cost to escrow (refused with 402
//! `insufficient_funds` when the available balance is short). Its cost is the sum of
//! [`op_price`] over the ops providers compute (uploaded values cost nothing). Each subgraph,
//! when its results are stored, pays the provider that computed it the price of its ops, in
//! the same transaction; when the graph ends (computed, failed or cancelled) what is left in
//! its escrow goes back to the requester.
//!
//! # Stakes
//! A paid graph may ask each provider for a stake ([`crate::messages::Requirements::min_stake`]).
//! A provider's account stakes it once per graph, when it is first handed a subgraph of it; an
//! account whose available balance is short is not given the graph's work (a provider that
//! chose that graph is rejected with the reason). Leaving while holding a subgraph of it, or
//! missing a subgraph's deadline, moves [`slash_amount`] of the stake to `slashed`, once per
//! graph and account; the rest returns when the graph ends (computed, failed or cancelled).
//!
//! `ravsock ledger check` recomputes every balance from the entries and checks the invariants
//! (see the server's `ledger` module).

use crate::ops::{Group, OpKind};
use serde::{Deserialize, Serialize};

/// The most units a balance or a movement may hold: 2^62 − 1, so that adding two never
/// overflows a 64-bit signed integer in either database.
pub const MAX_AMOUNT: u64 = (1 << 62) - 1;
/// Longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 200;
/// Most entries per page of [`EntryPage`].
pub const MAX_ENTRIES_PER_PAGE: u32 = 1_000;

/// A part of an account's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pocket {
    /// Free to spend or stake.
    Available,
    /// A provider's stake, held while it works.
    Staked,
    /// A requester's funds held for work it ordered.
    Escrowed,
    /// Stake taken for broken promises: a record, never spent.
    Slashed,
    /// The source of every unit (an account-less book; only credits move out of it).
    Mint,
}

impl Pocket {
    /// Every pocket an account has, in the order they are shown.
    pub const OF_ACCOUNTS: [Pocket; 4] = [Pocket::Available, Pocket::Staked, Pocket::Escrowed, Pocket::Slashed];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Pocket::Available => "available",
            Pocket::Staked => "staked",
            Pocket::Escrowed => "escrowed",
            Pocket::Slashed => "slashed",
            Pocket::Mint => "mint",
        }
    }

    /// The pocket of a stored name.
    pub fn from_name(name: &str) -> Option<Pocket> {
        [Pocket::Mint].into_iter().chain(Pocket::OF_ACCOUNTS).find(|pocket| pocket.name() == name)
    }
}

/// Why units moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// An admin issued units to an account.
    Credit,
    /// A topic's requester paid a worker its share of a round's reward.
    TopicReward,
    /// A requester's funds held for a graph it executed.
    GraphEscrow,
    /// A subgraph's price paid from its graph's escrow to the provider that computed it.
    SubgraphPayment,
    /// What was left of an ended graph's escrow, returned.
    GraphRefund,
    /// A provider's stake for a graph it works on.
    Stake,
    /// Part of a provider's stake kept because it left holding work or missed a deadline.
    Slash,
    /// What is left of a provider's stake, returned when its graph ended.
    StakeReturn,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 8] = [
        Reason::Credit,
        Reason::TopicReward,
        Reason::GraphEscrow,
        Reason::SubgraphPayment,
        Reason::GraphRefund,
        Reason::Stake,
        Reason::Slash,
        Reason::StakeReturn,
    ];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Credit => "credit",
            Reason::TopicReward => "topic_reward",
            Reason::GraphEscrow => "graph_escrow",
            Reason::SubgraphPayment => "subgraph_payment",
            Reason::GraphRefund => "graph_refund",
            Reason::Stake => "stake",
            Reason::Slash => "slash",
            Reason::StakeReturn => "stake_return",
        }
    }

    /// The reason of a stored name.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|reason| reason.name() == name)
    }
}

/// The share of a stake, in percent, kept when a provider leaves holding work or misses a
/// deadline: enough to hurt a provider that walks away, not all of it for one dropped
/// connection.
pub const SLASH_PERCENT: u64 = 50;

/// The units kept of `stake` for a broken promise: [`SLASH_PERCENT`] of it, rounded down, and
/// at least 1 of any stake.
pub fn slash_amount(stake: u64) -> u64 {
    match stake {
        0 => 0,
        // In 128 bits: a stake near `MAX_AMOUNT` times the percent overflows 64.
        stake => ((u128::from(stake) * u128::from(SLASH_PERCENT) / 100) as u64).max(1),
    }
}

/// The price of computing one op, in units, by its catalogue group: 1 for element-wise
/// arithmetic, logic and inputs made by the server's providers (`zeros`, `random`…); 2 for
/// linear algebra and shape, statistics, losses and federated ops; 5 for classic machine
/// learning and deep-learning layers; 10 for a whole model (ONNX).
pub fn op_price(kind: OpKind) -> u64 {
    match kind.group() {
        Group::Input | Group::Arithmetic | Group::Logic => 1,
        Group::LinalgShape | Group::Statistics | Group::Losses | Group::Federated => 2,
        Group::ClassicMl | Group::DeepLearning => 5,
        Group::WholeModel => 10,
    }
}

/// One side of a movement: an account's pocket, or the mint (no account).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    /// The account's name; none for the mint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Which pocket.
    pub pocket: Pocket,
}

/// `GET /v1/account`: the caller's balances, in units.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The account's name.
    pub account: String,
    /// Free to spend or stake.
    pub available: u64,
    /// Held as stake.
    pub staked: u64,
    /// Held for work ordered.
    pub escrowed: u64,
    /// Taken from stake, in all.
    pub slashed: u64,
}

/// One movement of units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the ledger (increasing).
    pub id: u64,
    /// Where the units came from.
    pub from: Book,
    /// Where they went.
    pub to: Book,
    /// How many (at least 1).
    pub amount: u64,
    /// Why.
    pub reason: Reason,
    /// What it was for, for people (`topic 3 round 12`).
    pub reference: String,
    /// The idempotency key: a second movement with it is never made.
    pub key: String,
    /// When (unix seconds).
    pub at: u64,
}

/// `GET /v1/account/entries?after=&limit=`: the caller's movements after entry `after`, oldest
/// first; `next` is the `after` of the next page, none at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPage {
    /// The movements.
    pub entries: Vec<Entry>,
    /// Where the next page starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// `POST /v1/admin/credit` (admin): issue units to an account. Sent again with the same key,
/// it moves nothing and answers the first credit; the same key with another account or
/// amount is refused (409).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    /// The account credited.
    pub account: String,
    /// Units, 1 to [`MAX_AMOUNT`].
    pub amount: u64,
    /// The idempotency key (1 to [`MAX_KEY_BYTES`] bytes).
    pub key: String,
}

impl std::fmt::Display for Book {
    /// `alice:available`, or `mint`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.account {
            Some(account) => write!(f, "{account}:{}", self.pocket.name()),
            None => f.write_str(self.pocket.name()),
        }
    }
}

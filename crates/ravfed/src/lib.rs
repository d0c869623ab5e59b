//! Federated analytics without network code: CSV files filtered by a graph's rules, their
//! sufficient statistics in fixed point, the final mean / variance / deviation, and (feature
//! `he`) their encryption with tfhe.
//!
//! The flow, and who runs what:
//! 1. The requester sets [`ravproto::federated::FederatedRules`] and, in encrypted mode, makes
//!    keys with [`he::KeySet::generate`] (keeping the client key, sending the evaluation keys).
//! 2. Each provider runs [`table::column_sums`] over its own CSV and sends the result, encrypted
//!    with [`he::encrypt`] under the requester's public key in encrypted mode.
//! 3. ravsock adds the submissions ([`he::Aggregator`] or [`stats::add_plain`]) and hands the
//!    sum, and only the sum, to the requester once `min_clients` providers reported.
//! 4. The requester decrypts ([`he::KeySet::decrypt`]) and turns the sums into statistics with
//!    [`stats::Statistics::from_sums`].
//!
//! # Threat model (encrypted mode)
//! - **What each party holds.** The requester holds the tfhe client key, the only key that
//!   decrypts; it never leaves the requester's process (or the file the requester saves it
//!   to). ravsock holds the compressed server key, an evaluation key: it can add ciphertexts
//!   but decrypts nothing. Providers hold the compact public key, which encrypts only.
//! - **What ravsock learns.** Per provider: that it reported, when, and the size of its
//!   ciphertext (the same for every provider of a graph). Not its row count, sums, or which
//!   rows it kept. Its database and logs hold ciphertexts only (a test scans them).
//! - **What the requester learns.** The sum over all contributors, and only after at least
//!   `min_clients` reported: ravsock never sends it a single provider's ciphertext, and closes
//!   the query (no more submissions) when it hands out the sum, so two reads cannot be
//!   subtracted to isolate the last contributor. With `min_clients = 1` a lone provider's
//!   sums are its own; providers see `min_clients` and the privacy mode before they join.
//! - **What it does not protect against.** A requester and ravsock that collude: ravsock could
//!   pass one provider's ciphertext to the requester. A dishonest provider can send made-up
//!   sums (there is no proof of correct computation), and a requester can create provider
//!   accounts of its own to reach `min_clients` (a Sybil attack; accounts are created by
//!   the ravsock operator). Sums reveal aggregate facts about small groups: use a
//!   `min_clients` and bounds that make the aggregate safe to publish. Plain mode protects
//!   nothing from ravsock; it exists for speed and is shown to providers as such.
//! - **Integrity of the keys.** ravsock serves the requester's public key to providers; a
//!   malicious ravsock could substitute a key of its own. Transport security (TLS in front
//!   of ravsock) and operator trust cover this; tfhe's zero-knowledge proofs are not used.

pub mod query;
pub mod stats;
pub mod table;

#[cfg(feature = "he")]
pub mod he;

pub use stats::Statistics;
pub use table::{ColumnSummary, Table, column_summaries, column_sums};

/// Why a federated step failed; every message names the column and, for data, the row.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The CSV is malformed.
    #[error("malformed CSV: {0}")]
    Csv(String),
    /// The file holds nothing, not even a header row.
    #[error("the file is empty: a header row naming the columns is needed")]
    Empty,
    /// The file has a header but no data row.
    #[error("the file has no data rows")]
    NoRows,
    /// No row passes the rules' bounds: there is nothing to contribute.
    #[error("no row of the file is within the rules' bounds ({rows} rows read)")]
    NoKeptRows {
        /// Rows in the file.
        rows: u64,
    },
    /// A required column of the rules is not in the file.
    #[error("column `{column}` of the rules is missing from the file (its columns: {found})")]
    MissingColumn {
        column: String,
        /// The file's header.
        found: String,
    },
    /// A cell of a rule column is not a number.
    #[error("line {line}, column `{column}`: {value:?} is not a number")]
    NotNumeric {
        column: String,
        /// Line of the file, 1 being the header.
        line: u64,
        /// The cell.
        value: String,
    },
    /// A cell is beyond the fixed-point range.
    #[error("line {line}, column `{column}`: {value} is too large for the fixed-point encoding (|x| < 9e12)")]
    OutOfRange {
        column: String,
        /// Line of the file, 1 being the header.
        line: u64,
        /// The number.
        value: f64,
    },
    /// The file's sums could overflow once added to other providers'.
    #[error("column `{column}`: the sums of this file are too large to be added for {max_clients} providers")]
    Overflow {
        column: String,
        /// Providers the encoding must leave room for.
        max_clients: u32,
    },
    /// The graph asks for a column its rules do not define.
    #[error("the graph asks about column `{0}`, which its rules do not define")]
    UnknownColumn(String),
    /// Statistics do not match the columns asked for.
    #[error("statistics do not match the graph: {0}")]
    Mismatch(String),
    /// Plain sums that no file within the rules could have produced.
    #[error("column `{column}`: {reason}")]
    Implausible {
        column: String,
        /// What the sums contradict.
        reason: String,
    },
    /// A key or ciphertext is malformed, or tfhe refused it.
    #[error("encryption: {0}")]
    Crypto(String),
}

/// Result alias of ravfed.
pub type Result<T, E = FedError> = std::result::Result<T, E>;

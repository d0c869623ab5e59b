//! Federated analytics: the rules a requester sets, what providers send, and what the
//! requester gets back.
//!
//! A federated graph asks for the mean, variance or standard deviation of CSV columns that
//! stay on the providers' machines. Each provider filters its rows with the rules (a row is
//! kept only if every bounded column is within its bounds, inclusive), and sends only the
//! sufficient statistics of the columns the graph asks about: the count and sum of each, and
//! the sum of squares where a variance or deviation needs it. Never min or max, never a row.
//!
//! Statistics are integers in fixed point, so sums are exact and the same in plain and
//! encrypted mode: a value `x` is sent as `round(x * FIXED_POINT_SCALE)` ([`to_fixed`]), a sum
//! at [`FIXED_POINT_SCALE`] and a sum of squares at its square. Values are rounded to 1/1000;
//! a mean or deviation is exact to that rounding.
//!
//! | route | who | body |
//! |---|---|---|
//! | `GET /v1/federated/{id}` | provider or owner | → [`FederatedSpec`] |
//! | `GET /v1/federated/{id}/wait?contributors_above=N&timeout_ms=T` | owner | → [`FederatedSpec`], long poll |
//! | `PUT /v1/federated/{id}/keys` | owner, before execute | raw bytes: the evaluation keys (`ravfed::he`) |
//! | `GET /v1/federated/{id}/public-key` | provider | → raw bytes: the requester's compact public key |
//! | `POST /v1/federated/{id}/submissions` | provider, once | [`FederatedPayload`] → [`FederatedSpec`] |
//! | `POST /v1/federated/{id}/close` | owner | → [`FederatedAggregate`]: closes the query once `min_clients` reported |

use crate::ids::GraphId;
use crate::status::GraphStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Values are rounded to `1 / FIXED_POINT_SCALE`; sums of squares carry its square.
pub const FIXED_POINT_SCALE: i64 = 1000;
/// Providers accepted when the rules set no `max_clients` (the fixed-point range is sized for it).
pub const DEFAULT_MAX_CLIENTS: u32 = 1000;
/// Columns a federated graph may name.
pub const MAX_COLUMNS: usize = 64;

/// Whether providers' statistics travel and are added encrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privacy {
    /// tfhe: providers encrypt under the requester's public key, ravsock adds ciphertexts with
    /// an evaluation key that cannot decrypt, and only the requester decrypts the sum.
    #[default]
    Encrypted,
    /// Statistics in the clear (fast); ravsock sees each provider's sums. Shown to providers
    /// before they join.
    Plain,
}

/// Bounds on one column of a federated graph (inclusive; `None` is unbounded).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// Smallest kept value.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest kept value.
    #[serde(default)]
    pub max: Option<f64>,
    /// A file may lack this column (it then contributes nothing to it); otherwise a missing
    /// column is an error on the provider.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// Rules of a federated graph: which columns, their bounds, and how many providers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedRules {
    /// Columns and their bounds.
    pub columns: BTreeMap<String, ColumnRule>,
    /// Providers needed before the aggregate can be read.
    pub min_clients: u32,
    /// Providers accepted at most ([`DEFAULT_MAX_CLIENTS`] when unset).
    #[serde(default)]
    pub max_clients: Option<u32>,
    /// Encrypted (the default) or plain.
    #[serde(default)]
    pub privacy: Privacy,
}

impl FederatedRules {
    /// `max_clients`, or its default.
    pub fn effective_max_clients(&self) -> u32 {
        self.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS)
    }

    /// Checks the rules; the reason they are unusable otherwise.
    pub fn check(&self) -> Result<(), String> {
        if self.columns.is_empty() {
            return Err("the rules name no column".into());
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(format!("the rules name {} columns, at most {MAX_COLUMNS} are allowed", self.columns.len()));
        }
        for (name, rule) in &self.columns {
            if name.trim().is_empty() {
                return Err("a column name cannot be empty".into());
            }
            for bound in [rule.min, rule.max].into_iter().flatten() {
                if !bound.is_finite() {
                    return Err(format!("column `{name}`: bounds must be finite numbers"));
                }
            }
            if let (Some(min), Some(max)) = (rule.min, rule.max)
                && min > max
            {
                return Err(format!("column `{name}`: min {min} is above max {max}"));
            }
        }
        if self.min_clients == 0 {
            return Err("min_clients must be at least 1".into());
        }
        let max = self.effective_max_clients();
        if max < self.min_clients {
            return Err(format!("max_clients {max} is below min_clients {}", self.min_clients));
        }
        if max > DEFAULT_MAX_CLIENTS {
            return Err(format!(
                "max_clients is at most {DEFAULT_MAX_CLIENTS} (the fixed-point range is sized for it)"
            ));
        }
        Ok(())
    }
}

/// `x` in fixed point, or `None` when it is not finite or too large for the encoding.
pub fn to_fixed(x: f64) -> Option<i64> {
    let scaled = (x * FIXED_POINT_SCALE as f64).round();
    // Below 2^53 every integer is exact in f64, and a square stays below 2^106.
    (scaled.is_finite() && scaled.abs() < 9.0e15).then_some(scaled as i64)
}

/// One column a federated graph asks about, in the order statistics are sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRequest {
    pub column: String,
    /// Whether its sum of squares is needed (a variance or deviation asks for it).
    pub squares: bool,
}

/// What a provider needs to know about a federated graph before it joins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedSpec {
    /// The graph.
    pub graph_id: GraphId,
    pub name: String,
    /// Its rules (privacy mode included).
    pub rules: FederatedRules,
    /// The statistics asked for, in the order they are sent.
    pub columns: Vec<ColumnRequest>,
    /// Computing while open; computed once closed.
    pub status: GraphStatus,
    /// Providers that have reported.
    pub contributors: u32,
}

/// Sufficient statistics of one column, in fixed point (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSums {
    /// Values counted.
    pub count: u64,
    /// Their sum, at [`FIXED_POINT_SCALE`].
    pub sum: i64,
    /// The sum of their squares, at its square; `None` when not asked for.
    #[serde(default)]
    pub sum_sq: Option<u128>,
}

/// A provider's statistics, or an aggregate of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FederatedPayload {
    /// In the clear: one entry per [`FederatedSpec::columns`].
    Plain(Vec<ColumnSums>),
    /// tfhe ciphertexts (`ravfed::he`'s encoding), in standard base64.
    Encrypted(String),
}

/// `POST /v1/federated/{id}/close` reply: the sum over every contributor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedAggregate {
    /// The graph.
    pub graph_id: GraphId,
    /// Providers summed.
    pub contributors: u32,
    /// The statistics asked for, in the order of the payload.
    pub columns: Vec<ColumnRequest>,
    /// The sums.
    pub payload: FederatedPayload,
}

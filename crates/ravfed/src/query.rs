//! What a federated graph asks for, read off its ops, and its answers from aggregated sums.
//!
//! The requester and ravsock both derive the list of [`ColumnRequest`]s from the graph's ops
//! with [`column_requests`], so they agree on the order of the statistics without sending it.

use crate::{FedError, Result, Statistics};
use ravproto::Operation;
use ravproto::federated::{ColumnRequest, ColumnSums, FederatedRules};
use ravproto::ops::FederatedParams;
use std::collections::BTreeMap;

/// Which statistic a federated op asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// `federated_mean`.
    Mean,
    /// `federated_variance` (population).
    Variance,
    /// `federated_standard_deviation` (population).
    StandardDeviation,
}

/// The statistic and params of a federated op; `None` for any other op.
pub fn federated_op(operation: &Operation) -> Option<(Statistic, &FederatedParams)> {
    match operation {
        Operation::FederatedMean(params) => Some((Statistic::Mean, params)),
        Operation::FederatedVariance(params) => Some((Statistic::Variance, params)),
        Operation::FederatedStandardDeviation(params) => Some((Statistic::StandardDeviation, params)),
        _ => None,
    }
}

/// The columns an op covers: its column, or every rule column (sorted by name) when it names
/// none.
pub fn op_columns<'a>(params: &'a FederatedParams, rules: &'a FederatedRules) -> Result<Vec<&'a str>> {
    match &params.column {
        Some(column) if rules.columns.contains_key(column) => Ok(vec![column.as_str()]),
        Some(column) => Err(FedError::UnknownColumn(column.clone())),
        None => Ok(rules.columns.keys().map(String::as_str).collect()),
    }
}

/// The statistics a graph's ops need, one entry per column they name, sorted by column.
/// Errors on a non-federated op or a column outside the rules.
pub fn column_requests<'a>(
    rules: &FederatedRules,
    operations: impl IntoIterator<Item = &'a Operation>,
) -> Result<Vec<ColumnRequest>> {
    let mut squares: BTreeMap<&str, bool> = BTreeMap::new();
    for operation in operations {
        let (statistic, params) = federated_op(operation)
            .ok_or_else(|| FedError::Mismatch(format!("`{}` cannot be part of a federated graph", operation.kind())))?;
        for column in op_columns(params, rules)? {
            let entry = squares.entry(column).or_default();
            *entry |= statistic != Statistic::Mean;
        }
    }
    Ok(squares.into_iter().map(|(column, squares)| ColumnRequest { column: column.to_string(), squares }).collect())
}

/// The value of a federated op given the aggregate (`sums`, in `columns` order): one number
/// per column the op covers.
pub fn answer(
    operation: &Operation,
    rules: &FederatedRules,
    columns: &[ColumnRequest],
    sums: &[ColumnSums],
) -> Result<Vec<f64>> {
    let (statistic, params) = federated_op(operation)
        .ok_or_else(|| FedError::Mismatch(format!("`{}` is not a federated op", operation.kind())))?;
    crate::stats::check_shape(columns, sums)?;
    let mut out = Vec::new();
    for column in op_columns(params, rules)? {
        let index = columns
            .iter()
            .position(|c| c.column == column)
            .ok_or_else(|| FedError::Mismatch(format!("the aggregate has no column `{column}`")))?;
        let stats = Statistics::from_sums(&sums[index]);
        let value = match statistic {
            Statistic::Mean => Some(stats.mean),
            Statistic::Variance => stats.variance,
            Statistic::StandardDeviation => stats.standard_deviation(),
        };
        out.push(value.ok_or_else(|| FedError::Mismatch(format!("the aggregate lacks the squares of `{column}`")))?);
    }
    Ok(out)
}

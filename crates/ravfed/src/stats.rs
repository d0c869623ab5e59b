//! From sums to statistics, and the plain-mode addition of providers' sums.
//!
//! The variance is computed from exact integers: with `n` values of fixed-point sum `s` and
//! sum of squares `q`, `n * q - s^2` is exact in 128-bit integers (it is `n^2` times the
//! variance at the square of the scale), so there is no catastrophic cancellation as in the
//! float formula `q / n - mean^2`. Only a 128-bit overflow (about `n * q > 3.4e38`) falls
//! back to floats.

use crate::{FedError, Result};
use ravproto::federated::{ColumnRequest, ColumnSums, FIXED_POINT_SCALE};

/// Statistics of one column over every contributor's kept rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Statistics {
    /// Values counted.
    pub count: u64,
    /// Their mean (NaN when `count` is 0).
    pub mean: f64,
    /// Their population variance, when the sum of squares was asked for.
    pub variance: Option<f64>,
}

impl Statistics {
    /// The statistics of aggregated sums.
    pub fn from_sums(sums: &ColumnSums) -> Statistics {
        let scale = FIXED_POINT_SCALE as f64;
        if sums.count == 0 {
            return Statistics { count: 0, mean: f64::NAN, variance: sums.sum_sq.map(|_| f64::NAN) };
        }
        let n = sums.count;
        let mean = sums.sum as f64 / (n as f64 * scale);
        let variance = sums.sum_sq.map(|q| {
            let s2 = i128::from(sums.sum).unsigned_abs().pow(2);
            match u128::from(n).checked_mul(q) {
                // n*q >= s^2 by Cauchy-Schwarz; saturate in case of dishonest inputs.
                Some(nq) => nq.saturating_sub(s2) as f64 / ((n as f64).powi(2) * scale * scale),
                None => (q as f64 / n as f64 - (sums.sum as f64 / n as f64).powi(2)).max(0.0) / (scale * scale),
            }
        });
        Statistics { count: n, mean, variance }
    }

    /// The population standard deviation.
    pub fn standard_deviation(&self) -> Option<f64> {
        self.variance.map(f64::sqrt)
    }
}

/// Adds one provider's plain sums to a running total (both in the order of `columns`).
pub fn add_plain(total: &mut Vec<ColumnSums>, columns: &[ColumnRequest], sums: &[ColumnSums]) -> Result<()> {
    check_shape(columns, sums)?;
    if total.is_empty() {
        total.extend(columns.iter().map(|c| ColumnSums { count: 0, sum: 0, sum_sq: c.squares.then_some(0) }));
    }
    for ((total, sums), column) in total.iter_mut().zip(sums).zip(columns) {
        let overflow = || FedError::Mismatch(format!("column `{}`: the sums overflow", column.column));
        total.count = total.count.checked_add(sums.count).ok_or_else(overflow)?;
        total.sum = total.sum.checked_add(sums.sum).ok_or_else(overflow)?;
        if let (Some(total), Some(add)) = (total.sum_sq.as_mut(), sums.sum_sq) {
            *total = total.checked_add(add).ok_or_else(overflow)?;
        }
    }
    Ok(())
}

/// Checks that `sums` has one entry per column, with a sum of squares exactly where asked.
pub fn check_shape(columns: &[ColumnRequest], sums: &[ColumnSums]) -> Result<()> {
    if columns.len() != sums.len() {
        return Err(FedError::Mismatch(format!("{} columns sent, {} asked for", sums.len(), columns.len())));
    }
    for (column, sums) in columns.iter().zip(sums) {
        if column.squares != sums.sum_sq.is_some() {
            let what = if column.squares { "is missing" } else { "was not asked for" };
            return Err(FedError::Mismatch(format!("the sum of squares of `{}` {what}", column.column)));
        }
    }
    Ok(())
}

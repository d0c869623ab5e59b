//! From sums to statistics, and the plain-mode addition of providers' sums.
//!
//! The variance is computed from exact integers: with `n` values of fixed-point sum `s` and
//! sum of squares `q`, `n * q - s^2` is exact in 128-bit integers (it is `n^2` times the
//! variance at the square of the scale), so there is no catastrophic cancellation as in the
//! float formula `q / n - mean^2`. Only a 128-bit overflow (about `n * q > 3.4e38`) falls
//! back to floats.

use crate::{FedError, Result};
use ravproto::federated::{ColumnRequest, ColumnSums, FIXED_POINT_SCALE, FederatedRules, to_fixed};

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

/// Checks one provider's plain sums before they are stored, so that no submission can make
/// the aggregate wrong or its addition overflow: the shape ([`check_shape`]); no more than
/// leaves room for the rules' `max_clients` providers (what an honest provider's
/// [`crate::table::column_summaries`] ensures); a sum that `count` values within the column's
/// bounds can make; a sum of squares that such values can make (at least `sum² / count` by
/// Cauchy-Schwarz, at most `count` times the largest bound squared). Encrypted sums cannot be
/// read, so this is for plain mode.
pub fn check_plain(columns: &[ColumnRequest], rules: &FederatedRules, sums: &[ColumnSums]) -> Result<()> {
    check_shape(columns, sums)?;
    let max_clients = rules.effective_max_clients();
    for (request, sums) in columns.iter().zip(sums) {
        let column = &request.column;
        let rule = rules.columns.get(column).ok_or_else(|| FedError::UnknownColumn(column.clone()))?;
        let implausible = |reason: String| FedError::Implausible { column: column.clone(), reason };
        let room = u64::from(max_clients);
        if sums.count > u64::MAX / room
            || sums.sum.unsigned_abs() > i64::MAX as u64 / room
            || sums.sum_sq.is_some_and(|q| q > u128::MAX / u128::from(room))
        {
            return Err(FedError::Overflow { column: column.clone(), max_clients });
        }
        if sums.count == 0 && (sums.sum != 0 || sums.sum_sq.is_some_and(|q| q != 0)) {
            return Err(implausible("no values were counted, yet their sums are not zero".into()));
        }
        let (count, sum) = (i128::from(sums.count), i128::from(sums.sum));
        if let Some(low) = rule.min.and_then(to_fixed)
            && sum < count * i128::from(low)
        {
            return Err(implausible(format!(
                "a sum of {} over {} values is below what values of at least {} make",
                unscaled(sum),
                sums.count,
                unscaled(i128::from(low))
            )));
        }
        if let Some(high) = rule.max.and_then(to_fixed)
            && sum > count * i128::from(high)
        {
            return Err(implausible(format!(
                "a sum of {} over {} values is above what values of at most {} make",
                unscaled(sum),
                sums.count,
                unscaled(i128::from(high))
            )));
        }
        if let Some(q) = sums.sum_sq {
            // |sum| <= i64::MAX, so sum² < 2^126 fits; n·q may not, and is then large enough.
            let s2 = sum.unsigned_abs().pow(2);
            if u128::from(sums.count).checked_mul(q).is_some_and(|nq| nq < s2) {
                return Err(implausible("the sum of squares is smaller than the sum allows".into()));
            }
            let largest = [rule.min, rule.max].map(|bound| bound.and_then(to_fixed).map(i64::unsigned_abs));
            if let [Some(low), Some(high)] = largest {
                let bound = u128::from(low.max(high)).pow(2);
                if u128::from(sums.count).checked_mul(bound).is_some_and(|most| q > most) {
                    return Err(implausible("the sum of squares is larger than values within the bounds make".into()));
                }
            }
        }
    }
    Ok(())
}

/// A fixed-point number as the value it stands for.
fn unscaled(fixed: i128) -> f64 {
    fixed as f64 / FIXED_POINT_SCALE as f64
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

#[cfg(test)]
mod tests {
    //! What plain submissions are refused: sums no file within the rules could produce.

    use super::*;
    use ravproto::federated::ColumnRule;

    fn rules() -> FederatedRules {
        let mut rules = FederatedRules { min_clients: 1, max_clients: Some(10), ..Default::default() };
        rules.columns.insert("age".into(), ColumnRule { min: Some(18.0), max: Some(80.0), optional: false });
        rules.columns.insert("free".into(), ColumnRule::default());
        rules
    }

    fn check(column: &str, count: u64, sum: i64, sum_sq: Option<u128>) -> Result<()> {
        let request = ColumnRequest { column: column.into(), squares: sum_sq.is_some() };
        check_plain(&[request], &rules(), &[ColumnSums { count, sum, sum_sq }])
    }

    #[test]
    fn honest_sums_pass_and_impossible_ones_are_refused() {
        let k = FIXED_POINT_SCALE;
        // Ages 20 and 30: sum 50, squares 1300.
        check("age", 2, 50 * k, Some(1300 * (k * k) as u128)).unwrap();
        check("age", 0, 0, Some(0)).unwrap();
        check("free", 3, -7 * k, None).unwrap();

        let refused = |result: Result<()>, words: &str| {
            let error = result.expect_err(words).to_string();
            assert!(error.contains(words), "{error:?} does not say {words:?}");
        };
        // The submission that bricked a query: one value summing to i64::MAX.
        refused(check("age", 1, i64::MAX, None), "too large to be added for 10 providers");
        refused(check("age", 1, 81 * k, None), "above what values of at most 80 make");
        refused(check("age", 2, 35 * k, None), "below what values of at least 18 make");
        refused(check("age", 0, k, None), "no values were counted");
        // Two values summing to 100 have squares of at least 5000.
        refused(check("age", 2, 100 * k, Some(4999 * (k * k) as u128)), "smaller than the sum allows");
        refused(check("age", 2, 100 * k, Some(12_801 * (k * k) as u128)), "larger than values within the bounds make");
        refused(check("free", 1, i64::MAX / 10 + 1, None), "too large to be added");
        refused(check("nope", 1, 0, None), "which its rules do not define");
    }
}

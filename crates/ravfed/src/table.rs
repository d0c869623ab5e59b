//! A provider's CSV, filtered by the graph's rules, and its sufficient statistics.
//!
//! Rows are filtered as rows: a row is kept only if every bounded column it has a value for
//! is within its bounds, inclusive (the original filtered each column on its own, so the
//! columns of a "kept" record no longer belonged to the same rows, and used exclusive
//! bounds). Sums are accumulated in integers of the fixed-point encoding, so they are exact
//! and independent of row order.

use crate::{FedError, Result};
use ravproto::federated::{ColumnRequest, ColumnSums, FIXED_POINT_SCALE, FederatedRules, to_fixed};
use std::collections::BTreeMap;
use std::io::Read;

/// The rule columns of a CSV file: one fixed-point value (or none) per row and column.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column name → values by row; a column the file lacks is absent.
    columns: BTreeMap<String, Vec<Option<i64>>>,
    /// Data rows read.
    rows: u64,
}

impl Table {
    /// Reads the rule columns of the CSV at `path`.
    pub fn open(path: &std::path::Path, rules: &FederatedRules) -> Result<Table> {
        let file =
            std::fs::File::open(path).map_err(|source| FedError::Io { path: path.display().to_string(), source })?;
        Table::read(std::io::BufReader::new(file), rules)
    }

    /// Reads the rule columns of a CSV: a header row, then data rows. A required column that
    /// is missing, a cell that is not a number, and an empty file are errors; an empty cell is
    /// a missing value (an error in a required column).
    pub fn read(reader: impl Read, rules: &FederatedRules) -> Result<Table> {
        let mut csv = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(reader);
        let headers = csv.headers().map_err(|e| FedError::Csv(e.to_string()))?.clone();
        if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
            return Err(FedError::Empty);
        }
        let mut wanted = Vec::new();
        for (name, rule) in &rules.columns {
            match headers.iter().position(|h| h == name) {
                Some(index) => wanted.push((name.clone(), index, rule.optional)),
                None if rule.optional => {}
                None => {
                    return Err(FedError::MissingColumn {
                        column: name.clone(),
                        found: headers.iter().collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        let mut columns: BTreeMap<String, Vec<Option<i64>>> =
            wanted.iter().map(|(name, ..)| (name.clone(), Vec::new())).collect();
        let mut rows = 0;
        let mut record = csv::StringRecord::new();
        while csv.read_record(&mut record).map_err(|e| FedError::Csv(e.to_string()))? {
            let line = record.position().map_or(rows + 2, |p| p.line());
            for (name, index, optional) in &wanted {
                let cell = record.get(*index).unwrap_or("");
                let value = if cell.is_empty() {
                    if !optional {
                        return Err(FedError::NotNumeric { column: name.clone(), line, value: String::new() });
                    }
                    None
                } else {
                    let number: f64 = cell
                        .parse()
                        .ok()
                        .filter(|x: &f64| !x.is_nan())
                        .ok_or_else(|| FedError::NotNumeric { column: name.clone(), line, value: cell.to_string() })?;
                    let fixed =
                        to_fixed(number).ok_or(FedError::OutOfRange { column: name.clone(), line, value: number })?;
                    Some(fixed)
                };
                if let Some(values) = columns.get_mut(name) {
                    values.push(value);
                }
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(FedError::NoRows);
        }
        Ok(Table { columns, rows })
    }

    /// Data rows in the file.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Which rows pass every bound of the rules (inclusive; a missing value passes).
    pub fn kept_rows(&self, rules: &FederatedRules) -> Vec<bool> {
        let mut kept = vec![true; self.rows as usize];
        for (name, values) in &self.columns {
            let Some(rule) = rules.columns.get(name) else { continue };
            // Compared after rounding both sides to the fixed-point grid.
            let min = rule.min.and_then(to_fixed);
            let max = rule.max.and_then(to_fixed);
            if min.is_none() && max.is_none() {
                continue;
            }
            for (keep, value) in kept.iter_mut().zip(values) {
                if let Some(v) = value
                    && (min.is_some_and(|min| *v < min) || max.is_some_and(|max| *v > max))
                {
                    *keep = false;
                }
            }
        }
        kept
    }
}

/// The sufficient statistics of one column of one file: what is sent ([`ColumnSums`]) and,
/// for the provider's own record only, the extremes. Min and max never leave the machine (the
/// original always sent them, leaking the extreme values of every silo).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColumnSummary {
    /// Count, sum and sum of squares, as sent.
    pub sums: ColumnSums,
    /// Smallest kept value (`None` without values).
    pub min: Option<f64>,
    /// Largest kept value.
    pub max: Option<f64>,
}

/// The statistics a graph asks for (`requests`, in order) over the kept rows of `table`, with
/// room left for `rules.effective_max_clients()` providers to be added without overflow.
pub fn column_summaries(
    table: &Table,
    rules: &FederatedRules,
    requests: &[ColumnRequest],
) -> Result<Vec<ColumnSummary>> {
    let kept = table.kept_rows(rules);
    let kept_count = kept.iter().filter(|k| **k).count() as u64;
    if kept_count == 0 {
        return Err(FedError::NoKeptRows { rows: table.rows });
    }
    let max_clients = rules.effective_max_clients();
    let mut out = Vec::with_capacity(requests.len());
    for request in requests {
        if !rules.columns.contains_key(&request.column) {
            return Err(FedError::UnknownColumn(request.column.clone()));
        }
        let Some(values) = table.columns.get(&request.column) else {
            // An optional column this file lacks: it contributes nothing.
            let sums = ColumnSums { count: 0, sum: 0, sum_sq: request.squares.then_some(0) };
            out.push(ColumnSummary { sums, min: None, max: None });
            continue;
        };
        let (mut count, mut sum, mut sum_sq) = (0u64, 0i128, 0u128);
        let (mut min, mut max) = (i64::MAX, i64::MIN);
        for value in values.iter().zip(&kept).filter(|(_, keep)| **keep).filter_map(|(v, _)| *v) {
            count += 1;
            sum += i128::from(value);
            // |value| < 9e15, so a square is below 8.1e31 and 2^128 holds 4e6 of them.
            sum_sq = sum_sq.saturating_add((i128::from(value) * i128::from(value)) as u128);
            min = min.min(value);
            max = max.max(value);
        }
        let overflow = || FedError::Overflow { column: request.column.clone(), max_clients };
        let sum = i64::try_from(sum).map_err(|_| overflow())?;
        if sum.unsigned_abs() > i64::MAX as u64 / u64::from(max_clients)
            || sum_sq > u128::MAX / u128::from(max_clients)
            || count > u64::MAX / u64::from(max_clients)
        {
            return Err(overflow());
        }
        let unscale = |v: i64| (count > 0).then(|| v as f64 / FIXED_POINT_SCALE as f64);
        out.push(ColumnSummary {
            sums: ColumnSums { count, sum, sum_sq: request.squares.then_some(sum_sq) },
            min: unscale(min),
            max: unscale(max),
        });
    }
    Ok(out)
}

/// The sums of [`column_summaries`]: exactly what a provider sends.
pub fn column_sums(table: &Table, rules: &FederatedRules, requests: &[ColumnRequest]) -> Result<Vec<ColumnSums>> {
    Ok(column_summaries(table, rules, requests)?.into_iter().map(|summary| summary.sums).collect())
}

#[cfg(test)]
mod tests;

//! Reading, filtering and summing CSV files.

use super::*;
use crate::Statistics;
use ravproto::federated::{ColumnRule, Privacy};

fn rules() -> FederatedRules {
    FederatedRules {
        columns: BTreeMap::from([
            ("age".into(), ColumnRule { min: Some(18.0), max: Some(80.0), optional: false }),
            ("salary".into(), ColumnRule { min: Some(1.0), max: Some(5.0), optional: false }),
            ("fund".into(), ColumnRule { min: None, max: None, optional: true }),
        ]),
        min_clients: 1,
        max_clients: Some(10),
        privacy: Privacy::Plain,
    }
}

fn requests() -> Vec<ColumnRequest> {
    vec![
        ColumnRequest { column: "age".into(), squares: true },
        ColumnRequest { column: "fund".into(), squares: false },
        ColumnRequest { column: "salary".into(), squares: true },
    ]
}

fn sums(csv: &str) -> Result<Vec<ColumnSums>> {
    column_sums(&Table::read(csv.as_bytes(), &rules())?, &rules(), &requests())
}

#[test]
fn rows_are_kept_whole_and_bounds_are_inclusive() {
    // Row 2 (age 17) and row 4 (salary 6) go entirely, their fund included; 18 and 80 stay.
    let csv = "age,salary,fund,name\n18,1,100.5,a\n17,3,999,b\n80,5,-0.25,c\n40,6,7,d\n";
    let got = sums(csv).unwrap();
    assert_eq!(got[0], ColumnSums { count: 2, sum: 98_000, sum_sq: Some(18_000u128.pow(2) + 80_000u128.pow(2)) });
    assert_eq!(got[1], ColumnSums { count: 2, sum: 100_250, sum_sq: None });
    assert_eq!(got[2], ColumnSums { count: 2, sum: 6_000, sum_sq: Some(1_000u128.pow(2) + 5_000u128.pow(2)) });
    let table = Table::read(csv.as_bytes(), &rules()).unwrap();
    let summaries = column_summaries(&table, &rules(), &requests()).unwrap();
    assert_eq!((summaries[0].min, summaries[0].max), (Some(18.0), Some(80.0)));
    assert_eq!((summaries[1].min, summaries[1].max), (Some(-0.25), Some(100.5)));
    let stats = Statistics::from_sums(&got[0]);
    assert_eq!(stats.mean, 49.0);
    assert_eq!(stats.variance, Some(961.0));
    assert_eq!(stats.standard_deviation(), Some(31.0));
}

#[test]
fn an_optional_column_may_be_missing_or_empty() {
    let got = sums("salary,age\n2,30\n4,50\n").unwrap();
    assert_eq!(got[1], ColumnSums { count: 0, sum: 0, sum_sq: None });
    let table = Table::read("salary,age\n2,30\n".as_bytes(), &rules()).unwrap();
    let missing = column_summaries(&table, &rules(), &requests()).unwrap()[1];
    assert_eq!((missing.min, missing.max), (None, None));
    let got = sums("salary,age,fund\n2,30,\n4,50,1.5\n").unwrap();
    assert_eq!(got[1], ColumnSums { count: 1, sum: 1_500, sum_sq: None });
    assert!(Statistics::from_sums(&ColumnSums::default()).mean.is_nan());
}

#[test]
fn bad_files_get_errors_naming_the_column_and_line() {
    let message = |csv: &str| sums(csv).unwrap_err().to_string();
    assert_eq!(
        message("age,fund\n30,1\n"),
        "column `salary` of the rules is missing from the file (its columns: age, fund)"
    );
    assert_eq!(message("age,salary\n30,2\n31,high\n"), "line 3, column `salary`: \"high\" is not a number");
    assert_eq!(message("age,salary\n30,\n"), "line 2, column `salary`: \"\" is not a number");
    assert_eq!(message("age,salary\n30,NaN\n"), "line 2, column `salary`: \"NaN\" is not a number");
    assert_eq!(message(""), "the file is empty: a header row naming the columns is needed");
    assert_eq!(message("age,salary\n"), "the file has no data rows");
    assert_eq!(message("age,salary\n90,2\n"), "no row of the file is within the rules' bounds (1 rows read)");
    assert_eq!(
        message("age,salary,fund\n30,2,1e13\n"),
        "line 2, column `fund`: 10000000000000 is too large for the fixed-point encoding (|x| < 9e12)"
    );
    let missing = Table::open(std::path::Path::new("/nonexistent/x.csv"), &rules()).unwrap_err();
    assert!(missing.to_string().starts_with("cannot read /nonexistent/x.csv: "), "{missing}");
}

#[test]
fn sums_leave_room_for_every_provider() {
    // 1000 providers may be added: a sum above i64::MAX / 1000 is refused for this file.
    let rules = FederatedRules { max_clients: None, ..rules() };
    let csv = "age,salary,fund\n30,2,8e12\n30,2,8e12\n";
    let table = Table::read(csv.as_bytes(), &rules).unwrap();
    assert_eq!(
        column_sums(&table, &rules, &requests()).unwrap_err().to_string(),
        "column `fund`: the sums of this file are too large to be added for 1000 providers"
    );
    assert!(column_sums(&table, &FederatedRules { max_clients: Some(100), ..rules }, &requests()).is_ok());
}

#[test]
fn plain_sums_add_up_and_shapes_are_checked() {
    let a = sums("age,salary\n20,2\n").unwrap();
    let b = sums("age,salary,fund\n40,4,3\n").unwrap();
    let mut total = Vec::new();
    crate::stats::add_plain(&mut total, &requests(), &a).unwrap();
    crate::stats::add_plain(&mut total, &requests(), &b).unwrap();
    assert_eq!(Statistics::from_sums(&total[0]).mean, 30.0);
    assert_eq!(Statistics::from_sums(&total[0]).variance, Some(100.0));
    assert_eq!(total[1].count, 1);
    let wrong = crate::stats::add_plain(&mut total, &requests(), &a[..2]).unwrap_err();
    assert_eq!(wrong.to_string(), "statistics do not match the graph: 2 columns sent, 3 asked for");
}

#[test]
fn unknown_columns_are_refused() {
    let table = Table::read("age,salary\n20,2\n".as_bytes(), &rules()).unwrap();
    let error = column_sums(&table, &rules(), &[ColumnRequest { column: "height".into(), squares: false }]);
    assert_eq!(error.unwrap_err().to_string(), "the graph asks about column `height`, which its rules do not define");
}

proptest::proptest! {
    /// The exact integer variance matches a two-pass float computation over the rounded values.
    #[test]
    fn variance_matches_two_pass(values in proptest::collection::vec(-1.0e6f64..1.0e6, 1..50)) {
        let rounded: Vec<f64> = values.iter().map(|v| (v * 1000.0).round() / 1000.0).collect();
        let csv = std::iter::once("age,salary,fund".to_string())
            .chain(rounded.iter().map(|v| format!("30,2,{v}")))
            .collect::<Vec<_>>()
            .join("\n");
        let requests = [ColumnRequest { column: "fund".into(), squares: true }];
        let got = column_sums(&Table::read(csv.as_bytes(), &rules()).unwrap(), &rules(), &requests).unwrap();
        let stats = Statistics::from_sums(&got[0]);
        let n = rounded.len() as f64;
        let mean = rounded.iter().sum::<f64>() / n;
        let variance = rounded.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        proptest::prop_assert!((stats.mean - mean).abs() <= 1e-9 * (1.0 + mean.abs()));
        proptest::prop_assert!((stats.variance.unwrap() - variance).abs() <= 1e-9 * (1.0 + variance));
    }
}

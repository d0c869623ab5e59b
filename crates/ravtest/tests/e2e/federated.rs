//! Federated queries end to end: ravsock, three providers with different CSV files (rows out
//! of bounds, one file without the optional column) and a requester. The aggregate must equal
//! the statistics over the union of the kept rows, in plain and (feature `he`) encrypted mode;
//! in encrypted mode neither the database nor the logs may hold a provider's statistic.

use crate::stack::Stack;
use ravop::ops::FederatedParams;
use ravop::{Error, Privacy, Rules};
use ravproto::federated::FederatedSpec;
use ravproto::federated::{ColumnSums, FederatedPayload};
use ravproto::messages::ErrorCode;
use ravpy::federated::{Contribution, FederatedConfig};
use ravsock::auth::Role;
use std::path::PathBuf;

/// (file name, contents). Kept rows: age in [18, 80] and salary in [1, 5], both inclusive.
const FILES: [(&str, &str); 3] = [
    // Rows 2 (age 17) and 4 (age 81) are dropped whole.
    ("a.csv", "age,salary,fund\n25,2,12345.678\n17,3,50\n40,4.5,-20.25\n81,1,10\n"),
    // No `fund` column at all; salary 6 drops the last row; 18 and 80 are kept (inclusive).
    ("b.csv", "salary,age\n1,18\n5,80\n6,30\n"),
    // Extra columns are ignored; an empty optional cell counts as missing.
    ("c.csv", "name,age,fund,salary\nx,33,98765.4321,3\ny,60,,2\nz,52,0.5,1.25\n"),
];

/// The kept rows of every file: (age, salary, fund).
const KEPT: [(f64, f64, Option<f64>); 7] = [
    (25.0, 2.0, Some(12345.678)),
    (40.0, 4.5, Some(-20.25)),
    (18.0, 1.0, None),
    (80.0, 5.0, None),
    (33.0, 3.0, Some(98765.432)),
    (60.0, 2.0, None),
    (52.0, 1.25, Some(0.5)),
];

fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n)
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-9 * (1.0 + want.abs()), "{what}: got {got}, want {want}");
}

fn rules(privacy: Privacy) -> Rules {
    Rules::new(3)
        .column("age", Some(18.0), Some(80.0))
        .column("salary", Some(1.0), Some(5.0))
        .optional_column("fund")
        .max_clients(4)
        .privacy(privacy)
}

fn column(name: &str) -> FederatedParams {
    FederatedParams { column: Some(name.into()) }
}

struct Run {
    contributions: Vec<Contribution>,
}

/// Runs the query with three providers and checks every answer.
async fn run_query(stack: &Stack, privacy: Privacy) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut providers = Vec::new();
    let db = ravsock::db::Db::connect(&stack.database_url).await.unwrap();
    for (index, (name, contents)) in FILES.iter().enumerate() {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let token = db.create_account(&format!("{privacy:?}-silo-{index}"), Role::Provider).await.unwrap();
        providers.push((token, path));
    }
    let graph = rules(privacy).graph("census");
    graph.federated_mean(column("age")).persist("mean_age");
    graph.federated_variance(column("salary")).persist("variance_salary");
    graph.federated_standard_deviation(FederatedParams::default()).persist("std_all");
    graph.federated_mean(column("fund")).persist("mean_fund");
    let client = stack.client().await;
    let mut query = client.federated(&graph).await.expect("federated query opens");
    let graph_id = query.graph_id();

    // Providers see the rules (and the privacy mode) before they contribute.
    let open =
        ravpy::list_graphs(&stack.url, &providers[0].0, &stack.trust, Some(ravop::Approach::Federated)).await.unwrap();
    let listed = open.iter().find(|g| g.graph_id == graph_id).expect("listed");
    assert_eq!(listed.rules.as_ref().unwrap().privacy, privacy);

    let config = |index: usize| FederatedConfig {
        server: stack.url.clone(),
        token: providers[index].0.clone(),
        trust: stack.trust.clone(),
        graph: graph_id,
        file: providers[index].1.clone(),
    };
    let mut contributions = Vec::new();
    for index in 0..2 {
        contributions.push(ravpy::federated::contribute(&config(index)).await.expect("contribution"));
    }
    // Two of three: the aggregate is not available yet.
    let early = query.close().await.unwrap_err();
    assert!(
        matches!(&early, Error::Server { code: ErrorCode::Conflict, message, .. } if message.contains("2 of the 3 providers")),
        "{early}"
    );
    // A provider reporting twice is refused and not counted twice.
    let twice = ravpy::federated::contribute(&config(0)).await.unwrap_err();
    assert!(twice.to_string().contains("already reported"), "{twice}");
    contributions.push(ravpy::federated::contribute(&config(2)).await.expect("contribution"));
    assert_eq!(contributions[2].spec.contributors, 3);
    assert_eq!(contributions.iter().map(|c| c.kept_rows).collect::<Vec<_>>(), [2, 2, 3]);

    let mut seen = Vec::new();
    let mean_age = query.fetch("mean_age", |spec: &FederatedSpec| seen.push(spec.contributors)).await.unwrap();
    assert_eq!(seen.last(), Some(&3));
    assert_eq!(query.contributors(), Some(3));
    let scalar = |value: ravop::TensorValue| match value {
        ravop::TensorValue::Tensor(t) => t.to_f64_array().into_raw_vec_and_offset().0,
        other => panic!("not a tensor: {other:?}"),
    };
    let ages: Vec<f64> = KEPT.iter().map(|r| r.0).collect();
    let salaries: Vec<f64> = KEPT.iter().map(|r| r.1).collect();
    let funds: Vec<f64> = KEPT.iter().filter_map(|r| r.2).collect();
    assert_close(scalar(mean_age)[0], mean_and_variance(&ages).0, "mean age");
    let variance = scalar(query.fetch("variance_salary", |_| {}).await.unwrap());
    assert_close(variance[0], mean_and_variance(&salaries).1, "variance of salary");
    assert_close(scalar(query.fetch("mean_fund", |_| {}).await.unwrap())[0], mean_and_variance(&funds).0, "mean fund");
    // No column named: every rule column, sorted by name (age, fund, salary).
    let std_all = scalar(query.fetch("std_all", |_| {}).await.unwrap());
    for (got, values, what) in
        [(std_all[0], &ages, "age"), (std_all[1], &funds, "fund"), (std_all[2], &salaries, "salary")]
    {
        assert_close(got, mean_and_variance(values).1.sqrt(), &format!("deviation of {what}"));
    }
    // Closed: a fourth provider (max_clients would allow it) is refused.
    let token = db.create_account(&format!("{privacy:?}-late"), Role::Provider).await.unwrap();
    let late = FederatedConfig { token, ..config(0) };
    let refused = ravpy::federated::contribute(&late).await.unwrap_err();
    assert!(refused.to_string().contains("not open"), "{refused}");
    let progress = client.progress(graph_id).await.unwrap();
    assert_eq!(progress.status, ravop::GraphStatus::Computed);
    Run { contributions }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_federated_statistics_equal_those_of_the_kept_rows() {
    let stack = Stack::start(30_000).await;
    let run = run_query(&stack, Privacy::Plain).await;
    // Plain mode stores the sums as sent: the scan of the encrypted test finds them here,
    // which shows that it can fail.
    let found = leaks(&clear_forms(&run.contributions), &database_files(&stack).await);
    assert!(found.iter().any(|leak| leak.contains("sum")), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_federated_requests_get_clear_errors() {
    let stack = Stack::start(30_000).await;
    let client = stack.client().await;
    // A distributed graph cannot hold federated ops, nor a federated graph other ops.
    let graph = ravop::Graph::new("mixed");
    graph.federated_mean(column("age")).persist("m");
    let error = client.submit(&graph).await.unwrap_err();
    assert!(error.to_string().contains("federated ops need a graph created with approach `federated`"), "{error}");
    let graph = rules(Privacy::Plain).graph("with a tensor");
    graph.t(vec![1.0]).persist("x");
    let error = client.federated(&graph).await.unwrap_err();
    assert!(error.to_string().contains("cannot be part of a federated graph"), "{error}");
    // A column outside the rules, and unusable rules.
    let graph = rules(Privacy::Plain).graph("height");
    graph.federated_mean(column("height")).persist("h");
    let error = client.federated(&graph).await.unwrap_err();
    assert!(error.to_string().contains("column `height`"), "{error}");
    let graph = Rules::new(0).column("age", None, None).privacy(Privacy::Plain).graph("nobody");
    graph.federated_mean(column("age")).persist("m");
    let error = client.federated(&graph).await.unwrap_err();
    assert!(error.to_string().contains("min_clients must be at least 1"), "{error}");

    // A provider's bad files: the errors name the column and line, and nothing is submitted.
    let graph = rules(Privacy::Plain).graph("census");
    graph.federated_mean(column("age")).persist("mean_age");
    let query = client.federated(&graph).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (contents, expected) in [
        ("age,fund\n30,1\n", "column `salary` of the rules is missing from the file (its columns: age, fund)"),
        ("age,salary\n30,2\n31,high\n", "line 3, column `salary`: \"high\" is not a number"),
        ("", "the file is empty"),
        ("age,salary\n", "the file has no data rows"),
    ] {
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, contents).unwrap();
        let config = FederatedConfig {
            server: stack.url.clone(),
            token: stack.provider_token.clone(),
            trust: stack.trust.clone(),
            graph: query.graph_id(),
            file: path,
        };
        let error = ravpy::federated::contribute(&config).await.unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert_eq!(query.spec().await.unwrap().contributors, 0);

    // Payloads of the wrong shape or mode are refused by the server.
    let http = crate::stack::http();
    let url = format!("{}/v1/federated/{}/submissions", stack.url, query.graph_id().0);
    for (body, expected) in [
        (FederatedPayload::Plain(vec![]), "0 columns sent, 1 asked for"),
        (FederatedPayload::Encrypted("AAAA".into()), "takes plain submissions"),
        (FederatedPayload::Plain(vec![ColumnSums { count: 1, sum: 1, sum_sq: Some(1) }]), "was not asked for"),
        // Sums no file within the rules could make: the one that made every later close fail
        // with "the sums overflow", and one out of the column's bounds.
        (FederatedPayload::Plain(vec![ColumnSums { count: 1, sum: i64::MAX, sum_sq: None }]), "too large to be added"),
        (FederatedPayload::Plain(vec![ColumnSums { count: 1, sum: 1, sum_sq: None }]), "below what values of at least"),
    ] {
        let response = http.post(&url).bearer_auth(&stack.provider_token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let text = response.text().await.unwrap();
        assert!(text.contains(expected), "{text}");
    }
    // Requesters cannot submit, and another requester cannot see the query.
    let response = http.post(&url).bearer_auth(&stack.requester).json(&FederatedPayload::Plain(vec![])).send().await;
    assert_eq!(response.unwrap().status(), 403);
    let other = crate::stack::http()
        .get(format!("{}/v1/federated/{}", stack.url, query.graph_id().0))
        .bearer_auth(&stack.other_requester)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

/// Every way a provider's statistic could be written down in the clear: decimal text and
/// little-endian bytes.
fn clear_forms(contributions: &[Contribution]) -> Vec<(String, Vec<u8>)> {
    let mut forms = Vec::new();
    for contribution in contributions {
        for sums in contribution.summaries.iter().map(|summary| &summary.sums) {
            let mut add = |label: String, value: i128| {
                // Small numbers occur everywhere by chance; these are distinctive.
                if value.unsigned_abs() >= 100_000 {
                    forms.push((label.clone(), value.to_string().into_bytes()));
                    forms.push((label.clone() + " as i64 bytes", (value as i64).to_le_bytes().to_vec()));
                    forms.push((label + " as u128 bytes", (value as u128).to_le_bytes().to_vec()));
                }
            };
            add(format!("sum {}", sums.sum), i128::from(sums.sum));
            if let Some(sum_sq) = sums.sum_sq {
                add(format!("sum of squares {sum_sq}"), sum_sq as i128);
            }
        }
    }
    assert!(forms.len() >= 6, "the test data must have distinctive sums");
    forms
}

/// What the stack's ravsock stored: its SQLite files (the main file, its WAL and shared memory),
/// or on PostgreSQL every column of every table.
async fn database_files(stack: &Stack) -> Vec<(String, Vec<u8>)> {
    if stack.database_url.starts_with("postgres") {
        return postgres_columns(&stack.database_url).await;
    }
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(stack.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ravsock.db")) {
            stored.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    stored
}

/// Every column of every table of a PostgreSQL database, its values joined: `bytea` as the bytes
/// stored, everything else as its text form.
async fn postgres_columns(url: &str) -> Vec<(String, Vec<u8>)> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = 'public'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert!(columns.iter().any(|(table, ..)| table == "federated_submissions"), "the schema is there");
    let mut stored = Vec::new();
    for (table, column, kind) in columns {
        let value =
            if kind == "bytea" { format!("\"{column}\"") } else { format!("convert_to(\"{column}\"::text, 'UTF8')") };
        let sql = format!("SELECT {value} FROM \"{table}\"");
        let values: Vec<Option<Vec<u8>>> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut connection).await.unwrap();
        stored.push((format!("{table}.{column}"), values.into_iter().flatten().flatten().collect()));
    }
    stored
}

/// "<place> holds <statistic>" for every clear form found in the haystacks.
fn leaks(forms: &[(String, Vec<u8>)], haystacks: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (label, needle) in forms {
        for (place, haystack) in haystacks {
            if haystack.windows(needle.len()).any(|w| w == needle.as_slice()) {
                found.push(format!("{place} holds a provider's {label}"));
            }
        }
    }
    found
}

#[cfg(feature = "he")]
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(feature = "he")]
impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "he")]
#[tokio::test(flavor = "current_thread")]
async fn encrypted_federated_statistics_match_and_ravsock_never_sees_them() {
    // Every log line of the process at every level (ravsock runs on this thread).
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let stack = Stack::start(30_000).await;
    let run = run_query(&stack, Privacy::Encrypted).await;
    let logs = logs.0.lock().unwrap().clone();
    assert!(String::from_utf8_lossy(&logs).contains("federated submission stored"), "logs were captured");
    let mut stored = database_files(&stack).await;
    assert!(stored.iter().map(|(_, bytes)| bytes.len()).sum::<usize>() > 1 << 20, "the keys are stored");
    stored.push(("logs".into(), logs));
    let found = leaks(&clear_forms(&run.contributions), &stored);
    assert!(found.is_empty(), "statistics in the clear: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_survive_a_restart_of_ravsock() {
    let mut stack = Stack::start(30_000).await;
    let dir = tempfile::tempdir().unwrap();
    let db = ravsock::db::Db::connect(&stack.database_url).await.unwrap();
    let graph = rules(Privacy::Plain).graph("census");
    graph.federated_mean(column("age")).persist("mean_age");
    let graph_id = stack.client().await.federated(&graph).await.unwrap().graph_id();
    let contribute = |url: String, index: usize, token: String| {
        let path = dir.path().join(FILES[index].0);
        std::fs::write(&path, FILES[index].1).unwrap();
        let config = FederatedConfig { server: url, token, trust: Default::default(), graph: graph_id, file: path };
        async move { ravpy::federated::contribute(&config).await }
    };
    let mut tokens = Vec::new();
    for index in 0..3 {
        tokens.push(db.create_account(&format!("silo-{index}"), Role::Provider).await.unwrap());
    }
    contribute(stack.url.clone(), 0, tokens[0].clone()).await.unwrap();
    contribute(stack.url.clone(), 1, tokens[1].clone()).await.unwrap();
    stack.restart(30_000).await;
    // The stored submissions count after the restart; a repeated one is still refused.
    let again = contribute(stack.url.clone(), 1, tokens[1].clone()).await.unwrap_err();
    assert!(again.to_string().contains("already reported"), "{again}");
    let third = contribute(stack.url.clone(), 2, tokens[2].clone()).await.unwrap();
    assert_eq!(third.spec.contributors, 3);
    let aggregate: ravproto::federated::FederatedAggregate = crate::stack::http()
        .post(format!("{}/v1/federated/{}/close", stack.url, graph_id.0))
        .bearer_auth(&stack.requester)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(aggregate.contributors, 3);
    let FederatedPayload::Plain(sums) = aggregate.payload else { panic!("a plain query") };
    let ages: Vec<f64> = KEPT.iter().map(|r| r.0).collect();
    assert_close(ravfed::Statistics::from_sums(&sums[0]).mean, mean_and_variance(&ages).0, "mean age");
    let client = stack.client().await;
    assert_eq!(client.progress(graph_id).await.unwrap().status, ravop::GraphStatus::Computed);
}

//! The federated benchmark: an encrypted query of 4 providers × 3 columns (mean and variance
//! of each, so every provider sends 9 values) through an in-process ravsock, and where its
//! time goes.
//!
//! Run: `cargo bench -p ravtest --features he --bench federated` (release; tfhe's build takes
//! about 11 minutes the first time). `FED_ROWS` sets the rows per provider (default 10,000).

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use ravfed::he::{Aggregator, KeySet, encrypt, public_key_of};
use ravop::ops::FederatedParams;
use ravop::{Privacy, Rules};
use ravproto::federated::ColumnRequest;
use ravsock::auth::Role;
use std::time::{Duration, Instant};

const PROVIDERS: usize = 4;
const COLUMNS: [&str; 3] = ["age", "fund", "salary"];

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn csv(rows: usize, seed: usize) -> String {
    let mut out = String::from("age,fund,salary\n");
    for row in 0..rows {
        let x = (row * 7919 + seed * 104_729) % 10_007;
        out.push_str(&format!("{},{}.{:02},{}\n", 18 + x % 63, 1000 + x * 3, x % 100, 1 + x % 5));
    }
    out
}

async fn run() {
    let rows: usize = std::env::var("FED_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("ravsock.db").display());
    let db = ravsock::db::Db::connect(&database_url).await.unwrap();
    let requester = db.create_account("requester", Role::Requester).await.unwrap();
    let mut providers = Vec::new();
    for index in 0..PROVIDERS {
        let token = db.create_account(&format!("silo-{index}"), Role::Provider).await.unwrap();
        let path = dir.path().join(format!("silo-{index}.csv"));
        std::fs::write(&path, csv(rows, index)).unwrap();
        providers.push((token, path));
    }
    let config = ravsock::config::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url),
        window: 64,
        max_attempts: 3,
        quarantine_after: 3,
        quarantine_secs: 600,
        deadline_base_ms: 30_000,
        deadline_per_op_ms: 10,
        slots_per_provider: 2,
        ftp_bind: "127.0.0.1:0".parse().unwrap(),
        ftp_passive_from: 49152,
        ftp_passive_to: 65535,
        inline_limit: 1 << 20,
        ftp_home_quota: ravftp::DEFAULT_HOME_QUOTA,
        max_op_bytes: ravsock::validate::DEFAULT_MAX_OP_BYTES,
        result_retention_secs: ravsock::config::DEFAULT_RESULT_RETENTION_SECS,
        ftp_file_retention_secs: ravsock::config::DEFAULT_FTP_FILE_RETENTION_SECS,
        tls_cert: None,
        tls_key: None,
        accounting: ravsock::config::Accounting::Off,
        heartbeat_interval_ms: ravsock::config::DEFAULT_HEARTBEAT_INTERVAL_MS,
        heartbeat_timeout_ms: ravsock::config::DEFAULT_HEARTBEAT_TIMEOUT_MS,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ravsock::run(config, listener, std::future::pending()));

    let client = ravop::Client::connect(&url, &requester).await.unwrap();
    let mut rules = Rules::new(PROVIDERS as u32).max_clients(PROVIDERS as u32).privacy(Privacy::Encrypted);
    for column in COLUMNS {
        rules = rules.column(column, None, None);
    }
    let graph = rules.graph("bench");
    for column in COLUMNS {
        graph.federated_mean(FederatedParams { column: Some(column.into()) }).persist(format!("mean_{column}"));
        graph.federated_variance(FederatedParams { column: Some(column.into()) }).persist(format!("var_{column}"));
    }

    let total = Instant::now();
    let started = Instant::now();
    let mut query = client.federated(&graph).await.unwrap();
    let open = started.elapsed();
    let mut contribute = Vec::new();
    for (token, path) in &providers {
        let config = ravpy::federated::FederatedConfig {
            server: url.clone(),
            token: token.clone(),
            trust: Default::default(),
            graph: query.graph_id(),
            file: path.clone(),
        };
        let started = Instant::now();
        ravpy::federated::contribute(&config).await.unwrap();
        contribute.push(started.elapsed());
    }
    // The 4th submission reached max_clients: ravsock closes the query by itself.
    let started = Instant::now();
    let value = query.fetch("mean_age", |_| {}).await.unwrap();
    let close = started.elapsed();
    let end_to_end = total.elapsed();
    println!("encrypted query, {PROVIDERS} providers x {} columns, {rows} rows each", COLUMNS.len());
    println!("  open (keys + 60 MB upload + checks):   {}", seconds(open));
    for (index, time) in contribute.iter().enumerate() {
        println!("  provider {index} (csv, encrypt, submit):  {}", seconds(*time));
    }
    println!("  close + download + decrypt:            {}", seconds(close));
    println!("  end to end:                            {}", seconds(end_to_end));
    println!("  (mean age = {value:?})");

    // Where the time goes, step by step, without the network.
    let columns: Vec<ColumnRequest> =
        COLUMNS.iter().map(|c| ColumnRequest { column: (*c).into(), squares: true }).collect();
    let step = |name: &str, started: Instant| println!("  {name:<38} {}", seconds(started.elapsed()));
    println!("steps (ravfed alone):");
    let started = Instant::now();
    let keys = KeySet::generate();
    step("client + public key", started);
    let started = Instant::now();
    let evaluation = keys.evaluation_keys().unwrap();
    step(&format!("compressed server key ({} MB)", evaluation.len() >> 20), started);
    let public = public_key_of(&evaluation).unwrap();
    let table = ravfed::Table::read(csv(rows, 0).as_bytes(), query.rules()).unwrap();
    let started = Instant::now();
    let sums = ravfed::column_sums(&table, query.rules(), &columns).unwrap();
    step("statistics of one csv", started);
    let started = Instant::now();
    let submission = encrypt(&public, &columns, &sums).unwrap();
    step(&format!("encrypt 9 values ({} KB)", submission.len() >> 10), started);
    let started = Instant::now();
    let mut aggregator = Aggregator::new(&evaluation, &columns).unwrap();
    step("server: load + decompress the key", started);
    for index in 0..PROVIDERS {
        let started = Instant::now();
        aggregator.add(&submission).unwrap();
        step(&format!("server: add submission {index}"), started);
    }
    let started = Instant::now();
    let aggregate = aggregator.finish().unwrap();
    step(&format!("server: serialize the sum ({} MB)", aggregate.len() >> 20), started);
    let started = Instant::now();
    keys.decrypt(&columns, &aggregate).unwrap();
    step("requester: decrypt", started);
}

fn main() {
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}

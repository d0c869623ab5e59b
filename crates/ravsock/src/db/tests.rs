//! The database against a real SQLite file: the graph cache agrees with what is stored, and a
//! write transaction that fails or is given up leaves nothing behind.

use super::write::Statement;
use super::*;
use crate::auth::Role;
use ravproto::messages::{GraphMeta, OpRecord};
use ravproto::status::GraphStatus;
use ravproto::{OpId, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::collections::BTreeMap;
use std::str::FromStr;

#[tokio::test]
async fn graph_reads_see_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    let owner = db.create_account("req", Role::Requester).await.unwrap();
    let owner = db.authenticate(&owner).await.unwrap().id;
    let graph = db.create_graph(owner, &GraphMeta::default()).await.unwrap();
    let status = |db: Db| async move { db.graph(graph).await.unwrap().unwrap().status };
    assert_eq!(status(db.clone()).await, GraphStatus::Pending);
    let record = OpRecord {
        local_id: 0,
        operation: serde_json::from_value(
            serde_json::json!({"operator": "lin", "params": {"dtype": "f64", "shape": []}}),
        )
        .unwrap(),
        inputs: vec![],
        persist: Some("x".into()),
        value: Some(Value::Tensor(ravproto::TensorData::from_f64(vec![], &[1.0]).unwrap())),
        value_file: None,
    };
    let refuse = |_: OpId, _: &OpRecord| -> Result<u64> { unreachable!("no files") };
    let stored = db.insert_ops(graph, &[record], &mut BTreeMap::new(), refuse, true).await.unwrap();
    assert_eq!(status(db.clone()).await, GraphStatus::Computing);
    db.set_graph_status(graph, GraphStatus::Failed, Some("why")).await.unwrap();
    assert_eq!(db.graph(graph).await.unwrap().unwrap().failure.as_deref(), Some("why"));
    db.store_results(&[], &[], &[stored[0].id], None, Some(graph), &[]).await.unwrap();
    let read = db.graph(graph).await.unwrap().unwrap();
    assert_eq!((read.status, read.failure.as_deref()), (GraphStatus::Computed, None));
    // What the cache says is what the database says.
    let fresh = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
    assert_eq!(fresh.graph(graph).await.unwrap(), Some(read));
}

#[tokio::test]
async fn a_write_transaction_given_up_or_failed_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let owner = Db::connect(&url).await.unwrap().create_account("req", Role::Requester).await.unwrap();
    // One connection: a transaction left open on it would block or break every later write.
    let options = SqliteConnectOptions::from_str(&url).unwrap().foreign_keys(true);
    let db = Db::from_pool(SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap());
    let owner = db.authenticate(&owner).await.unwrap().id;
    let insert = || {
        Statement::new("INSERT INTO graphs (owner, meta, status, created_at) VALUES (")
            .int(owner)
            .sql(r#", '{"name": "t"}', 'pending', 0)"#)
    };
    let count = || Statement::new("SELECT COUNT(*) FROM graphs");
    // Given up after a batch went (its transaction is open): rolled back, connection reused.
    let mut tx = db.write_tx().await.unwrap();
    tx.execute(insert()).await.unwrap();
    assert_eq!(tx.ids(vec![count()]).await.unwrap(), [1]);
    drop(tx);
    let mut tx = db.write_tx().await.unwrap();
    assert_eq!(tx.ids(vec![count()]).await.unwrap(), [0]);
    tx.commit().await.unwrap();
    // A batch that fails part-way is undone as a whole.
    let mut tx = db.write_tx().await.unwrap();
    tx.execute(insert()).await.unwrap();
    tx.execute(Statement::new("INSERT INTO no_such_table VALUES (1)")).await.unwrap();
    assert!(tx.commit().await.is_err());
    // And a batch that commits keeps everything, reading its own rows on the way.
    let mut tx = db.write_tx().await.unwrap();
    tx.execute(insert()).await.unwrap();
    assert_eq!(tx.ids(vec![insert().sql(" RETURNING 5"), count()]).await.unwrap(), [5, 2]);
    tx.commit().await.unwrap();
    assert_eq!(db.graphs_of(owner).await.unwrap().len(), 2);
}

#[tokio::test]
async fn stored_param_references_are_rewritten_to_server_ids_by_the_data_migration() {
    use sqlx::migrate::Migrator;
    // The migrations up to the one before the rewrite, then ops stored the old way (params
    // naming the requester's ids), then the rewrite, on the backend the tests use.
    let dir = tempfile::tempdir().unwrap();
    let url = super::scratch_database_url(dir.path()).await.unwrap();
    let postgres = url.starts_with("postgres");
    let (migrator, rewrite): (&Migrator, i64) = if postgres { (&POSTGRES_MIGRATOR, 2) } else { (&MIGRATOR, 6) };
    let old_ops = [
        "INSERT INTO accounts (name, role, token_sha256, created_at) VALUES ('req', 'requester', 'x', 0)",
        "INSERT INTO graphs (owner, meta, status, created_at) VALUES (1, '{\"name\": \"t\"}', 'computing', 0)",
        r#"INSERT INTO ops (id, graph_id, local_id, operation, inputs, persist, status) VALUES
           (40, 1, 7, '{"operator":"lin","params":{"dtype":"f64","shape":[2,2]}}', '[]', NULL, 'computed'),
           (41, 1, 8, '{"operator":"forward_pass_dense","params":{"n_units":1,"previous_forward_pass":null}}', '[40]', NULL, 'pending'),
           (42, 1, 9, '{"operator":"forward_pass_dense","params":{"n_units":1,"previous_forward_pass":8}}', '[40]', NULL, 'pending')"#,
    ];
    let run = |sql: String| {
        let url = url.clone();
        async move {
            match url.starts_with("postgres") {
                true => {
                    let pool = sqlx::PgPool::connect(&url).await.unwrap();
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
                    pool.close().await;
                }
                false => {
                    let options = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
                    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
                    pool.close().await;
                }
            }
        }
    };
    for migration in migrator.iter().filter(|m| m.version < rewrite) {
        run(migration.sql.as_str().to_string()).await;
    }
    for insert in old_ops {
        run(insert.to_string()).await;
    }
    let rewrite = migrator.iter().find(|m| m.version == rewrite).expect("the rewrite migration");
    run(rewrite.sql.as_str().to_string()).await;
    // Read back through the Db: the second layer now names op 41, the server's id of local 8.
    let db = match postgres {
        true => Db::with_pool(Pool::Postgres(sqlx::PgPool::connect(&url).await.unwrap())),
        false => Db::from_pool(SqlitePoolOptions::new().connect(&url).await.unwrap()),
    };
    let ops = db.ops(ravproto::GraphId(1)).await.unwrap();
    assert_eq!(ops[2].operation.param_refs(), vec![OpId(41)]);
    assert!(ops[1].operation.param_refs().is_empty());
    assert_eq!(ops[0].inputs, Vec::<OpId>::new());
}

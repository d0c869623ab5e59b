//! The ledger through the router and the `ravsock` binary: only an admin credits; a credit is
//! exact, bounded and made once per idempotency key (also when sent concurrently); bad amounts,
//! keys and accounts are typed 4xx with nothing written; a topic's truth pays its workers from
//! the requester's balance (402 and nothing stored when short); each account sees its own
//! balances and movements only; `ledger check` agrees, and finds a balance that was altered
//! behind the ledger's back.

use crate::http::Server;
use axum::http::StatusCode;
use ravproto::ledger::{Balance, Entry, EntryPage, MAX_AMOUNT, Pocket, Reason};
use ravproto::messages::ErrorCode;
use ravproto::routes;
use ravsock::auth::Role;
use ravsock::config::Accounting;
use serde_json::{Value, json};
use std::process::Command;

fn code(body: &Value) -> ErrorCode {
    serde_json::from_value(body["code"].clone()).unwrap_or_else(|_| panic!("a typed error code: {body}"))
}

async fn balance(server: &Server, token: &str) -> Balance {
    let (status, body) = server.call("GET", routes::ACCOUNT, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn entries(server: &Server, token: &str, query: &str) -> EntryPage {
    let (status, body) = server.call("GET", &format!("{}{query}", routes::ACCOUNT_ENTRIES), Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test]
async fn credits_are_an_admins_exact_and_made_once_per_key() {
    let server = Server::start().await;
    let root = server.token("root", Role::Admin).await;
    let alice = server.token("alice", Role::Requester).await;
    let worker = server.token("worker", Role::Provider).await;
    let credit = |token: Option<String>, body: Value| {
        let server = &server;
        async move { server.call("POST", routes::ADMIN_CREDIT, token.as_deref(), Some(body)).await }
    };
    let good = json!({"account": "alice", "amount": 1000, "key": "grant-1"});
    for (who, token, status) in [
        ("nobody", None, StatusCode::UNAUTHORIZED),
        ("a requester", Some(alice.clone()), StatusCode::FORBIDDEN),
        ("a provider", Some(worker.clone()), StatusCode::FORBIDDEN),
    ] {
        let (got, body) = credit(token, good.clone()).await;
        assert_eq!(got, status, "a credit by {who}: {body}");
    }
    // Bad amounts, keys and accounts: typed refusals.
    for (body, status) in [
        (json!({"account": "alice", "amount": 0, "key": "k"}), StatusCode::BAD_REQUEST),
        (json!({"account": "alice", "amount": -5, "key": "k"}), StatusCode::BAD_REQUEST),
        (json!({"account": "alice", "amount": 1.5, "key": "k"}), StatusCode::BAD_REQUEST),
        (json!({"account": "alice", "amount": MAX_AMOUNT + 1, "key": "k"}), StatusCode::BAD_REQUEST),
        (json!({"account": "alice", "amount": u64::MAX, "key": "k"}), StatusCode::BAD_REQUEST),
        (json!({"account": "alice", "amount": 5, "key": ""}), StatusCode::BAD_REQUEST),
        (json!({"account": "alice", "amount": 5, "key": "a key"}), StatusCode::BAD_REQUEST),
        (json!({"account": "alice", "amount": 5, "key": "k".repeat(201)}), StatusCode::BAD_REQUEST),
        (json!({"account": "nobody", "amount": 5, "key": "k"}), StatusCode::NOT_FOUND),
        (json!({"account": "alice", "amount": 5, "key": "k", "to": "bob"}), StatusCode::BAD_REQUEST),
    ] {
        let (got, reply) = credit(Some(root.clone()), body.clone()).await;
        assert_eq!(got, status, "{body}: {reply}");
        assert!(!code(&reply).is_server_fault(), "{body}: {reply}");
    }
    assert_eq!(balance(&server, &alice).await.available, 0, "no refused credit moved anything");
    assert_eq!(server.state.db.check_ledger().await.unwrap().entries, 0);

    // A credit, sent again: moved once, and answered with the same entry.
    let (status, first) = credit(Some(root.clone()), good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let first: Entry = serde_json::from_value(first).unwrap();
    assert_eq!(
        (first.amount, first.reason, first.from.pocket, first.from.account.clone()),
        (1000, Reason::Credit, Pocket::Mint, None)
    );
    let (_, again) = credit(Some(root.clone()), good.clone()).await;
    assert_eq!(serde_json::from_value::<Entry>(again).unwrap(), first);
    assert_eq!(balance(&server, &alice).await.available, 1000);
    // The same key for another amount or account is a conflict.
    for body in [
        json!({"account": "alice", "amount": 999, "key": "grant-1"}),
        json!({"account": "worker", "amount": 1000, "key": "grant-1"}),
    ] {
        let (status, reply) = credit(Some(root.clone()), body).await;
        assert_eq!((status, code(&reply)), (StatusCode::CONFLICT, ErrorCode::Conflict), "{reply}");
    }
    // Eight concurrent credits with one key move the units once, on either backend.
    let db = &server.state.db;
    let racing = (0..8).map(|_| db.credit("worker", 70, "race"));
    let entries_made: Vec<Entry> =
        futures_util::future::join_all(racing).await.into_iter().map(Result::unwrap).collect();
    assert!(entries_made.windows(2).all(|pair| pair[0] == pair[1]), "every racer is answered the one entry");
    assert_eq!(balance(&server, &worker).await.available, 70);

    // A balance never passes MAX_AMOUNT: the credit over it is refused, one up to it is not.
    let over = json!({"account": "alice", "amount": MAX_AMOUNT - 999, "key": "grant-2"});
    let (status, reply) = credit(Some(root.clone()), over).await;
    assert_eq!((status, code(&reply)), (StatusCode::BAD_REQUEST, ErrorCode::BadRequest), "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("over the most an account may hold"), "{reply}");
    let (status, _) =
        credit(Some(root.clone()), json!({"account": "alice", "amount": MAX_AMOUNT - 1000, "key": "grant-3"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(balance(&server, &alice).await.available, MAX_AMOUNT);

    // Each account sees its own movements, a page at a time.
    let page = entries(&server, &alice, "?limit=1").await;
    assert_eq!((page.entries.len(), page.next), (1, Some(first.id)));
    let rest = entries(&server, &alice, &format!("?after={}", first.id)).await;
    assert_eq!((rest.entries.len(), rest.next), (1, None));
    assert_eq!(rest.entries[0].key, "credit:grant-3", "an admin's key, apart from the server's");
    let theirs = entries(&server, &worker, "").await;
    assert_eq!(theirs.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["credit:race"]);

    let report = server.state.db.check_ledger().await.unwrap();
    assert_eq!((report.entries, report.issued, report.problems.len()), (3, MAX_AMOUNT + 70, 0), "{report:?}");
}

#[tokio::test]
async fn a_topic_truth_pays_its_workers_from_the_requesters_balance() {
    let mut server = Server::start().await;
    server.state = server.state.clone().with_accounting(Accounting::On);
    let alice = server.token("alice", Role::Requester).await;
    let (w1, w2) = (server.token("w1", Role::Provider).await, server.token("w2", Role::Provider).await);
    let spec = json!({"name": "price", "cadence_ms": 3_600_000, "deadline_ms": 3_600_000, "workers": 2,
                      "aggregation": "mean", "reward_per_round": 1000});
    let (status, topic) = server.call("POST", routes::TOPICS, Some(&alice), Some(spec)).await;
    assert_eq!(status, StatusCode::OK, "{topic}");
    let topic = ravproto::topics::TopicId(topic["id"].as_u64().unwrap());
    // Two answers (exact, and off by 100%) close round 1.
    for (token, value) in [(&w1, 10.0), (&w2, 20.0)] {
        let path = routes::topic_answers(topic, 1);
        let mut answered = false;
        for _ in 0..400 {
            let (status, _) = server.call("POST", &path, Some(token), Some(json!({"value": value}))).await;
            if status == StatusCode::OK {
                answered = true;
                break;
            }
            // Round 1 opens as the scheduler handles the new topic, a moment after the reply.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(answered, "round 1 takes the answer of {value}");
    }
    let wait = format!("{}?timeout_ms=30000", routes::topic_round_wait(topic, 1));
    let (_, closed) = server.call("GET", &wait, Some(&alice), None).await;
    assert_eq!(closed["rounds"][0]["status"], "closed", "{closed}");

    // Short of funds: refused, and neither the truth nor any movement stored.
    let truth = routes::topic_truth(topic, 1);
    let (status, reply) = server.call("POST", &truth, Some(&alice), Some(json!({"value": 10.0}))).await;
    assert_eq!((status, code(&reply)), (StatusCode::PAYMENT_REQUIRED, ErrorCode::InsufficientFunds), "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("1000 units"), "{reply}");
    let (_, round) = server.call("GET", &routes::topic_rounds(topic), Some(&alice), None).await;
    assert_eq!(round["rounds"][0]["truth"], Value::Null, "{round}");
    assert_eq!(server.state.db.check_ledger().await.unwrap().entries, 0);

    // Funded: the truth pays each worker its share, exactly the reward in all.
    server.state.db.credit("alice", 1500, "grant").await.unwrap();
    let (status, scored) = server.call("POST", &truth, Some(&alice), Some(json!({"value": 10.0}))).await;
    assert_eq!(status, StatusCode::OK, "{scored}");
    let (b1, b2) = (balance(&server, &w1).await.available, balance(&server, &w2).await.available);
    // Weights 1 and 1/2: shares 666.67 and 333.33, whole units by largest remainder.
    assert_eq!((b1, b2), (667, 333));
    assert_eq!(balance(&server, &alice).await.available, 500);
    let paid = entries(&server, &w1, "").await.entries;
    assert_eq!(paid.len(), 1);
    assert_eq!(
        (paid[0].reason, paid[0].from.account.as_deref(), paid[0].amount),
        (Reason::TopicReward, Some("alice"), 667)
    );
    // A second truth is refused and pays nothing.
    let (status, _) = server.call("POST", &truth, Some(&alice), Some(json!({"value": 11.0}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(balance(&server, &alice).await.available, 500);
    let report = server.state.db.check_ledger().await.unwrap();
    assert_eq!((report.entries, report.issued, report.problems), (3, 1500, Vec::<String>::new()));
}

#[tokio::test]
async fn verification_settings_are_checked_a_training_graph_is_not_replicated_and_a_verified_graph_escrows_its_price_per_replica()
 {
    let mut server = Server::start().await;
    server.state = server.state.clone().with_accounting(Accounting::On);
    let alice = server.token("alice", Role::Requester).await;
    let rules = json!({"columns": {"age": {}}, "min_clients": 1, "privacy": "plain"});
    for (meta, says) in [
        (json!({"name": "v", "requirements": {"verify": {"replicas": 1}}}), "2 to 5 replicas"),
        (json!({"name": "v", "requirements": {"verify": {"replicas": 9}}}), "2 to 5 replicas"),
        (json!({"name": "v", "requirements": {"verify": {"spot_check": 1.5}}}), "above 0 and at most 1"),
        (
            json!({"name": "f", "approach": "federated", "rules": rules, "requirements": {"verify": {"replicas": 2}}}),
            "verify applies to distributed graphs",
        ),
    ] {
        let (status, reply) = server.call("POST", routes::GRAPHS, Some(&alice), Some(meta.clone())).await;
        assert_eq!((status, code(&reply)), (StatusCode::BAD_REQUEST, ErrorCode::BadRequest), "{meta}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains(says), "{meta}: {reply}");
    }
    // A graph that trains keeps its state in one provider: it cannot be replicated, whether
    // it is run at once or executed after its upload.
    let mut training = crate::http::hello_chunk();
    training["ops"][2]["operation"] = json!({"operator": "square_loss"});
    let verified = json!({"name": "t", "requirements": {"verify": {"replicas": 2}}});
    let run = json!({"meta": verified, "ops": training["ops"]});
    let (status, reply) = server.call("POST", routes::RUN_GRAPH, Some(&alice), Some(run)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("a graph that trains cannot be verified"), "{reply}");
    let (_, created) = server.call("POST", routes::GRAPHS, Some(&alice), Some(verified)).await;
    let graph = ravproto::GraphId(created["graph_id"].as_u64().unwrap());
    let (status, _) = server.call("POST", &routes::graph_ops(graph), Some(&alice), Some(training)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = server.call("POST", &routes::graph_execute(graph), Some(&alice), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("a graph that trains cannot be verified"), "{reply}");
    assert_eq!(balance(&server, &alice).await.escrowed, 0, "nothing escrowed for a refused graph");

    // One add (price 1), computed by three replicas: 3 units escrowed.
    let meta = json!({"name": "v", "requirements": {"verify": {"replicas": 3}}});
    let (status, created) = server.call("POST", routes::GRAPHS, Some(&alice), Some(meta)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let graph = ravproto::GraphId(created["graph_id"].as_u64().unwrap());
    let (status, _) =
        server.call("POST", &routes::graph_ops(graph), Some(&alice), Some(crate::http::hello_chunk())).await;
    assert_eq!(status, StatusCode::OK);
    server.state.db.credit("alice", 2, "grant-1").await.unwrap();
    let (status, reply) = server.call("POST", &routes::graph_execute(graph), Some(&alice), None).await;
    assert_eq!((status, code(&reply)), (StatusCode::PAYMENT_REQUIRED, ErrorCode::InsufficientFunds), "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("costs 3 units"), "{reply}");
    server.state.db.credit("alice", 8, "grant-2").await.unwrap();
    let (status, reply) = server.call("POST", &routes::graph_execute(graph), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let now = balance(&server, &alice).await;
    assert_eq!((now.available, now.escrowed), (7, 3));
}

/// `ravsock account credit|show` and `ravsock ledger check` on one SQLite file.
fn ravsock(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ravsock"))
        .args(args)
        .env("RAVSOCK_DATA_DIR", dir)
        .env_remove("RAVSOCK_DATABASE_URL")
        .env_remove("RAVENVERSE_DATABASE_URI")
        .env_remove("RDF_DATABASE_URI")
        .current_dir(dir)
        .output()
        .expect("ravsock runs")
}

#[test]
fn the_ledger_commands_credit_once_per_key_and_check_the_whole_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let text = |out: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    assert!(ravsock(dir.path(), &["token", "create", "--name", "alice", "--role", "requester"]).status.success());
    for _ in 0..2 {
        let out = ravsock(dir.path(), &["account", "credit", "--name", "alice", "--amount", "250", "--key", "grant-1"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("available now 250"), "{}", text(&out));
    }
    let out = ravsock(dir.path(), &["account", "credit", "--name", "alice", "--amount", "0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("an amount must be at least 1 unit"), "{}", text(&out));
    let out = ravsock(dir.path(), &["account", "credit", "--name", "bob", "--amount", "5"]);
    assert!(!out.status.success() && text(&out).contains("no account is named `bob`"), "{}", text(&out));
    let out = ravsock(dir.path(), &["account", "show", "--name", "alice"]);
    assert!(out.status.success() && text(&out).contains("alice: available 250, staked 0"), "{}", text(&out));
    assert!(text(&out).contains("mint -> alice:available (credit, credit to alice)"), "{}", text(&out));
    let out = ravsock(dir.path(), &["ledger", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ledger ok: 1 entries, 1 accounts, 250 units issued"), "{}", text(&out));

    // A balance changed behind the ledger's back is found and named.
    let url = format!("sqlite://{}", dir.path().join("ravsock.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE ledger_balances SET amount = 999 WHERE pocket = 'available'").execute(&pool).await.unwrap();
        pool.close().await;
    });
    let out = ravsock(dir.path(), &["ledger", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("holds 999 in `available`, but its entries add up to 250"), "{}", text(&out));
    assert!(text(&out).contains("the ledger fails 2 of its checks"), "{}", text(&out));
}

//! Topics end to end (Allora's rounds): a requester opens a topic on the real `ravsock`
//! binary; a worker node (`ravpy::node`, as `ravpy run --config` runs it) with three entries
//! (any graph, a federated CSV, the topic) answers its rounds from a model server started here
//! that fails its first requests and sometimes answers too slowly. Its retries show in its
//! status while its other entries work; ravsock is SIGKILLed and restarted in the middle, and
//! the node reconnects by itself; the rounds are numbered without a gap, none counted twice;
//! the ground truth splits a round's reward; closing the topic ends the entry. And the rules
//! of answering, through the HTTP API: only an open round, once, by a provider.

use crate::kill::{Fixture, connect, fixture};
use crate::worker::{row, start, status_until};
use ravop::ops::FederatedParams;
use ravop::{Aggregation, Graph, Privacy, RoundStatus, Rules, TopicSpec};
use ravproto::messages::ErrorCode;
use ravpy::node::status::EntryState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A model server on a free port: its first two requests fail (503), every fifth is slower
/// than the worker waits, and the others answer `{"value": n}` for the n-th request.
async fn model_server() -> (String, Arc<AtomicU64>) {
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let app = axum::Router::new().route(
        "/inference",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= 2 {
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "warming up".to_string());
                }
                if n.is_multiple_of(5) {
                    tokio::time::sleep(Duration::from_millis(800)).await;
                }
                (axum::http::StatusCode::OK, format!("{{\"value\": {n}}}"))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/inference", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, requests)
}

fn spec(workers: u32) -> TopicSpec {
    TopicSpec {
        name: "price".into(),
        cadence_ms: 700,
        deadline_ms: 600,
        workers,
        aggregation: Aggregation::Median,
        reward_per_round: 100,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_answers_a_topics_rounds_through_failures_and_a_kill_of_ravsock() {
    let Fixture { dir, database_url, requester, provider, port } = fixture().await;
    let url = format!("http://127.0.0.1:{port}");
    let (inference_url, requests) = model_server().await;

    let server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;
    let census = Rules::new(1).column("age", Some(0.0), Some(150.0)).privacy(Privacy::Plain).graph("census");
    census.federated_mean(FederatedParams { column: Some("age".into()) }).persist("mean_age");
    let mut query = client.federated(&census).await.unwrap();
    // One worker answers: a round closes as soon as it has.
    let topic = client.open_topic(&spec(1)).await.unwrap();
    assert!(topic.open);

    std::fs::write(dir.path().join("ages.csv"), "age\n20\n40\n").unwrap();
    let file = dir.path().join("worker.toml");
    std::fs::write(
        &file,
        format!(
            r#"
server = "{url}"
token_env = "WORKER_TOKEN"

[retry]
first_delay = "50ms"
max_delay = "200ms"

[[participate]]
name = "any"

[[federated]]
name = "census"
graph = {census}
file = "ages.csv"

[[topics]]
name = "price"
topic = {topic}
inference_url = "{inference_url}"
fetch_retries = 5
fetch_timeout = "300ms"
"#,
            census = query.graph_id().0,
            topic = topic.id.0,
        ),
    )
    .unwrap();
    let loaded =
        ravpy::node::config::load(&file, |name| (name == "WORKER_TOKEN").then(|| provider.clone())).expect("valid");
    let status_file = loaded.status_file();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(ravpy::node::run(loaded, async {
        let _ = stopped.await;
    }));

    // The model server's failures show as retries, and rounds are answered anyway; the other
    // entries work meanwhile.
    let early = status_until(&status_file, "answered rounds after failed fetches", |s| {
        row(s, "price").rounds_answered >= 3 && row(s, "price").fetch_retries >= 2
    })
    .await;
    assert_eq!(row(&early, "price").state, EntryState::Running, "{early:#?}");
    let mean = query.fetch("mean_age", |_| {}).await.expect("the node contributed");
    assert_eq!(mean.as_tensor().unwrap().to_f64_array().iter().copied().collect::<Vec<_>>(), vec![30.0]);
    let graph = Graph::new("beside the topic");
    (graph.t(vec![1.0, 2.0]) * 3.0).persist("y");
    client.run(&graph, |_| {}).await.expect("computed by the node's participate entry");

    // SIGKILL and a new process on the same database: the node reconnects and answers again.
    drop(server);
    let before_kill = row(&early, "price").rounds_answered;
    let _server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;
    let answered = before_kill + 3;
    status_until(&status_file, "rounds answered after the restart", |s| row(s, "price").rounds_answered >= answered)
        .await;

    // Closing the topic ends the entry; the others keep running.
    let closed = client.close_topic(topic.id).await.unwrap();
    assert!(!closed.open);
    let done = status_until(&status_file, "the topic entry done", |s| row(s, "price").state == EntryState::Done).await;
    assert!(row(&done, "price").detail.contains("closed"), "{done:#?}");
    assert_eq!(row(&done, "any").state, EntryState::Running, "{done:#?}");
    let _ = stop.send(());
    node.await.unwrap().expect("the node stops cleanly");
    let (last, _) = ravpy::node::status::read(&status_file).unwrap();
    let price = row(&last, "price");

    // Every round from 1 to the last is there, closed, once; each answered one holds the
    // worker's one answer and its value; the worker counted exactly the answers stored.
    let rounds = client.rounds(topic.id, 1..=1_000).await.unwrap();
    let numbers: Vec<u64> = rounds.iter().map(|r| r.number).collect();
    assert_eq!(numbers, (1..=closed.rounds).collect::<Vec<_>>(), "no round lost or repeated");
    assert!(rounds.iter().all(|r| r.status == RoundStatus::Closed), "{rounds:#?}");
    let answered: Vec<_> = rounds.iter().filter(|r| !r.answers.is_empty()).collect();
    assert!(answered.iter().all(|r| r.answers.len() == 1 && r.answers[0].worker == "worker"), "{rounds:#?}");
    assert!(answered.iter().all(|r| r.value == Some(r.answers[0].value)), "{rounds:#?}");
    assert_eq!(price.rounds_answered, answered.len() as u64, "{price:#?} {rounds:#?}");
    // Values come from distinct requests: no answer was fetched twice for one round.
    let mut values: Vec<u64> = answered.iter().map(|r| r.answers[0].value as u64).collect();
    values.dedup();
    assert_eq!(values.len(), answered.len());
    assert!(requests.load(Ordering::SeqCst) >= values.len() as u64 + 2);

    // The ground truth of an answered round: the only worker takes the whole reward.
    let first = answered[0];
    let scored = client.post_truth(topic.id, first.number, first.answers[0].value + 1.0).await.unwrap();
    assert_eq!(scored.truth, Some(first.answers[0].value + 1.0));
    assert_eq!(scored.scores.len(), 1);
    assert_eq!((scored.scores[0].reward, scored.scores[0].error), (100, 1.0));
    let again = client.post_truth(topic.id, first.number, 0.0).await.expect_err("a round's truth is posted once");
    assert!(again.to_string().contains("truth was posted already"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_taken_once_from_providers_and_only_while_a_round_is_open() {
    let Fixture { dir, database_url, requester, provider, port } = fixture().await;
    let url = format!("http://127.0.0.1:{port}");
    let _server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;
    // Two answers close a round; with one, it stays open until its deadline.
    let topic = client.open_topic(&TopicSpec { cadence_ms: 60_000, deadline_ms: 60_000, ..spec(2) }).await.unwrap();
    let refused = client.open_topic(&TopicSpec { deadline_ms: 2_000, cadence_ms: 1_000, ..spec(1) }).await;
    assert!(refused.unwrap_err().to_string().contains("deadline_ms"), "a spec is checked");

    let http = ravclient::Http::new(&url, &provider, &ravclient::Trust::system()).unwrap();
    let answer = |round: u64, value: f64| {
        let http = http.clone();
        async move {
            let path = ravproto::routes::topic_answers(topic.id, round);
            http.post::<ravproto::topics::AnswerReceipt, _>(&path, &ravproto::topics::AnswerRequest { value }).await
        }
    };
    // Round 1 opened with the topic: the first answer is stored, the same again is fine
    // (a retry), another value is refused, and a round not open is refused.
    let mut stored = None;
    for _ in 0..200 {
        match answer(1, 5.0).await {
            Ok(receipt) => {
                stored = Some(receipt);
                break;
            }
            // The round opens as the scheduler handles the topic: a moment after the reply.
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    assert_eq!(stored.expect("round 1 takes an answer").round, 1);
    answer(1, 5.0).await.expect("the same answer again is accepted");
    let conflict = answer(1, 6.0).await.unwrap_err();
    assert!(matches!(conflict, ravclient::Error::Server { code: ErrorCode::Conflict, .. }), "{conflict}");
    let late = answer(2, 1.0).await.unwrap_err();
    assert!(matches!(late, ravclient::Error::Server { code: ErrorCode::Conflict, .. }), "{late}");
    // A requester does not answer, and a worker does not read rounds.
    let as_requester = ravclient::Http::new(&url, &requester, &ravclient::Trust::system()).unwrap();
    let path = ravproto::routes::topic_answers(topic.id, 1);
    let forbidden = as_requester
        .post::<ravproto::topics::AnswerReceipt, _>(&path, &ravproto::topics::AnswerRequest { value: 1.0 })
        .await
        .unwrap_err();
    assert!(matches!(forbidden, ravclient::Error::Server { code: ErrorCode::Forbidden, .. }), "{forbidden}");
    let rounds = http.get::<ravproto::topics::RoundList>(&ravproto::routes::topic_rounds(topic.id)).await.unwrap_err();
    assert!(matches!(rounds, ravclient::Error::Server { code: ErrorCode::Forbidden, .. }), "{rounds}");

    // While open, nobody sees the answers; closed (by closing the topic), the round has its
    // one answer as its median.
    let open = client.rounds(topic.id, 1..=1).await.unwrap();
    assert_eq!((open[0].status, open[0].answers.len()), (RoundStatus::Open, 0));
    client.close_topic(topic.id).await.unwrap();
    let round = client.wait_round(topic.id, 1).await.unwrap();
    assert_eq!((round.status, round.value, round.answers.len()), (RoundStatus::Closed, Some(5.0), 1));
    // Following the rounds gives round 1, then ends: the closed topic opens no more. A topic
    // that is not there is an error, not an end.
    let mut follow = client.follow_rounds(topic.id, 1);
    assert_eq!(follow.next().await.unwrap().map(|r| r.number), Some(1));
    assert!(follow.next().await.unwrap().is_none(), "the follower ends with the topic");
    let missing = client.follow_rounds(ravop::TopicId(999), 1).next().await.unwrap_err();
    assert!(matches!(missing, ravop::Error::Server { code: ErrorCode::NotFound, .. }), "{missing}");
    let after = answer(1, 5.0).await.expect("a stored answer posted again is still answered as stored");
    assert_eq!(after.round, 1);
    let closed = answer(2, 5.0).await.unwrap_err();
    assert!(matches!(closed, ravclient::Error::Server { code: ErrorCode::Conflict, .. }), "{closed}");

    // Each open topic is a timer in the scheduler: a requester has at most MAX_OPEN_TOPICS
    // open; one more is refused until one closes.
    let long = TopicSpec { cadence_ms: 3_600_000, deadline_ms: 1_000, ..spec(1) };
    let mut opened = Vec::new();
    for _ in 0..ravproto::topics::MAX_OPEN_TOPICS {
        opened.push(client.open_topic(&long).await.unwrap().id);
    }
    let over = client.open_topic(&long).await.unwrap_err();
    assert!(matches!(over, ravop::Error::Server { code: ErrorCode::Conflict, .. }), "{over}");
    assert!(over.to_string().contains("close one first"), "{over}");
    client.close_topic(opened[0]).await.unwrap();
    client.open_topic(&long).await.expect("room again once one closed");
}

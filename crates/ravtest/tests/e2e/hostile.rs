//! Hostile and buggy peers: what one party sends cannot stall or poison the grid for the
//! others, and every refusal is typed and said back to the sender.

use crate::stack::Stack;
use futures_util::FutureExt;
use ravop::{Graph, LocalExecutor};
use ravproto::messages::{ErrorBody, ErrorCode};
use ravproto::ops::{RandomParams, ReduceParams};
use ravproto::provider::{EVENT_JOIN, EVENT_OP_FAILED, EVENT_REFUSED, EVENT_RESULT, NAMESPACE, ProviderAuth};
use ravsock::api::malformed::MAX_MALFORMED;
use rust_socketio::Payload;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a raw connection hears: refusals of its events, and its closing.
#[derive(Debug)]
pub(crate) enum Heard {
    Open,
    Refused(ErrorBody),
    Closed,
}

/// A provider connection of `token` that only listens.
pub(crate) async fn raw_provider(
    stack: &Stack,
    token: &str,
) -> (rust_socketio::asynchronous::Client, mpsc::UnboundedReceiver<Heard>) {
    let auth = ProviderAuth { token: token.to_string(), protocol_version: ravproto::PROTOCOL_VERSION };
    raw_socket(stack, NAMESPACE, serde_json::to_value(auth).unwrap()).await
}

/// A connection to `namespace` with `auth` that only listens.
pub(crate) async fn raw_socket(
    stack: &Stack,
    namespace: &str,
    auth: serde_json::Value,
) -> (rust_socketio::asynchronous::Client, mpsc::UnboundedReceiver<Heard>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let hear = |tx: &mpsc::UnboundedSender<Heard>, what: fn(Payload) -> Option<Heard>| {
        let tx = tx.clone();
        move |payload: Payload, _| {
            let tx = tx.clone();
            async move {
                if let Some(heard) = what(payload) {
                    let _ = tx.send(heard);
                }
            }
            .boxed()
        }
    };
    let client = ravclient::socket::builder(&stack.url, &stack.trust)
        .expect("the stack's URL is trusted")
        .namespace(namespace)
        .transport_type(rust_socketio::TransportType::Websocket)
        .reconnect(false)
        .auth(auth)
        .on("open", hear(&tx, |_| Some(Heard::Open)))
        .on("close", hear(&tx, |_| Some(Heard::Closed)))
        .on(
            EVENT_REFUSED,
            hear(&tx, |payload| match payload {
                Payload::Text(values) => serde_json::from_value(values.into_iter().next()?).ok().map(Heard::Refused),
                _ => None,
            }),
        )
        .connect()
        .await
        .unwrap();
    (client, rx)
}

pub(crate) async fn next(heard: &mut mpsc::UnboundedReceiver<Heard>, awaited: &str) -> Heard {
    // Bounded: a dropped event would otherwise leave the test waiting for ever.
    tokio::time::timeout(Duration::from_secs(20), heard.recv())
        .await
        .unwrap_or_else(|_| panic!("no {awaited} within 20 s"))
        .expect("the connection's events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_provider_events_are_refused_then_the_sender_is_cut_off() {
    let stack = Stack::start(30_000).await;
    let (client, mut heard) = raw_provider(&stack, &stack.provider_token).await;
    assert!(matches!(next(&mut heard, "open").await, Heard::Open));

    // Each kind of garbage is answered with a typed refusal naming the event.
    let garbage = [
        (EVENT_JOIN, serde_json::json!({"benchmark": "fast"})),
        (EVENT_RESULT, serde_json::json!({"frame": 12})),
        (EVENT_RESULT, serde_json::json!({"frame": "bm90IGEgZnJhbWU="})),
        (EVENT_OP_FAILED, serde_json::json!([1, 2, 3])),
        ("give_me_money", serde_json::json!({})),
    ];
    for (event, payload) in &garbage {
        client.emit(*event, payload.clone()).await.unwrap();
        match next(&mut heard, &format!("refusal of `{event}`")).await {
            Heard::Refused(body) => {
                assert_eq!(body.code, ErrorCode::BadRequest);
                assert!(body.message.contains(&format!("malformed `{event}` event")), "{}", body.message);
            }
            other => panic!("expected a refusal of `{event}`, heard {other:?}"),
        }
    }

    // A sender that keeps on is disconnected at the limit.
    for _ in garbage.len() as u32..MAX_MALFORMED {
        client.emit("give_me_money", serde_json::json!({})).await.unwrap();
    }
    loop {
        match next(&mut heard, "close").await {
            Heard::Refused(_) => continue,
            Heard::Closed => break,
            Heard::Open => panic!("opened twice"),
        }
    }

    // The grid still serves everyone else.
    let provider = stack.provider_with(&stack.provider_token, 1.0);
    let client = stack.client().await;
    let graph = Graph::new("after the garbage");
    let a = graph.t(vec![1.0, 2.0]);
    (&a + &a).persist("b");
    let (_, results) = client.compute(&graph).await.expect("the graph runs");
    assert_eq!(results.array::<f64>("b").unwrap().into_raw_vec_and_offset().0, vec![2.0, 4.0]);
    provider.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_pill_op_kills_no_provider_and_the_next_graph_runs() {
    let stack = Stack::start(30_000).await;
    // Both report 8 GiB of RAM: a budget of 4 GiB an op.
    let mut providers = [stack.provider(2.0), stack.provider(1.0)];
    for provider in &mut providers {
        provider.joined().await;
    }
    let client = stack.client().await;
    // The issue's op: 2^31 elements, a 16 GiB allocation that aborted every provider given it.
    // Its size follows from its params: ravsock refuses it at upload (over --max-op-bytes, 8 GiB).
    let pill = Graph::new("poison pill");
    pill.random(RandomParams { shape: vec![1 << 31], seed: Some(1), ..Default::default() }).persist("r");
    let error = client.compute(&pill).await.expect_err("refused at upload").to_string();
    for part in ["`random`", "17179869184 bytes", "--max-op-bytes"] {
        assert!(error.contains(part), "`{part}` not in: {error}");
    }
    // Half of it passes the server's limit, but no provider here may hold it: each refuses it
    // before allocating, and the graph fails naming the op and the largest budget.
    let pill = Graph::new("poison pill within the server's limit");
    pill.random(RandomParams { shape: vec![1 << 30], seed: Some(1), ..Default::default() }).persist("r");
    let error = client.compute(&pill).await.expect_err("nobody can hold it").to_string();
    for part in ["`random`", "8589934592 bytes", "no connected provider has that much", "4294967296 bytes"] {
        assert!(error.contains(part), "`{part}` not in: {error}");
    }

    // Nobody died: the same two providers run the next graph.
    let graph = Graph::new("after the pill");
    let a = graph.t(vec![1.0, 2.0]);
    (&a * &a).persist("b");
    let (_, results) = client.compute(&graph).await.expect("the next graph runs");
    assert_eq!(results.array::<f64>("b").unwrap().into_raw_vec_and_offset().0, vec![1.0, 4.0]);
    for provider in providers {
        provider.stop().await.expect("the provider is alive and leaves cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_op_over_one_providers_memory_goes_to_a_provider_with_more() {
    let stack = Stack::start(30_000).await;
    let client = stack.client().await;
    let mut big = stack.provider(1.0);
    big.joined().await;
    crate::stack::known_to_the_server(&client, &mut big).await;
    // The fast provider takes work first, but may hold only 1 MiB an op.
    let mut small = stack.provider_with_memory(100.0, 1 << 20);
    small.joined().await;
    crate::stack::known_to_the_server(&client, &mut small).await;

    let graph = Graph::new("8 MiB of random numbers");
    let r = graph.random(RandomParams { shape: vec![1 << 20], seed: Some(5), ..Default::default() });
    r.sum(ReduceParams::all()).persist("total");
    let (_, results) = client.compute(&graph).await.expect("the big provider computes it");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.array::<f64>("total").unwrap(), local.array::<f64>("total").unwrap());
    // The warm-ups are one op each; the random numbers and their sum, two.
    let computed_two = |mut provider: crate::stack::Provider| async move {
        provider.stop_in_place().await.expect("the provider leaves cleanly");
        let mut two = 0;
        while let Ok(event) = provider.events.try_recv() {
            two += u32::from(matches!(event, ravpy::ProviderEvent::Computed { ops: 2, .. }));
        }
        two
    };
    assert_eq!(computed_two(small).await, 0, "the small provider computed none of it");
    assert_eq!(computed_two(big).await, 1, "the big provider computed it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finished_graph_keeps_only_its_persisted_blobs() {
    let stack = Stack::start(30_000).await;
    let mut provider = stack.provider(1.0);
    provider.joined().await;
    let client = stack.client().await;
    // 80 kB vectors (past the test stack's 64 KiB inline limit) through three subgraphs: the
    // values between them and the input go through the blob store, as does the result.
    let graph = Graph::new("blobs");
    let mut v = graph.t(vec![0.25; 10_000]);
    for _ in 0..40 {
        v = &v + 1.0;
    }
    v.persist("v");
    let (_, results) = client.compute(&graph).await.expect("computed");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.get("v"), local.get("v"));
    // The dispatch task handles one command at a time: once the next graph is computed, the
    // first one's end, and its clean-up, are done.
    let next = Graph::new("next");
    (&next.t(vec![1.0]) + 1.0).persist("x");
    client.compute(&next).await.expect("computed");
    let blobs: Vec<_> = std::fs::read_dir(stack.data_dir().join("blobs")).unwrap().collect();
    assert_eq!(blobs.len(), 1, "only the persisted vector is kept: {blobs:?}");
    provider.stop().await.unwrap();
}

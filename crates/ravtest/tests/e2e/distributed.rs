//! Graphs through ravsock and providers equal the local executor's results, and the failure
//! cases (a provider that disappears or never answers, a restarted server, wrong tokens,
//! another requester's graph) behave, and a requester can follow a graph through pushed events.

use crate::stack::{INLINE_LIMIT, Stack, silent_provider};
use futures_util::FutureExt;
use ndarray::{Array, ArrayD, IxDyn};
use ravop::ops::{JoinParams, ReduceParams, StatParams, TransposeParams};
use ravop::{Client, Error, Graph, GraphEvent, GraphStatus, LocalExecutor, TensorValue};
use ravproto::messages::ErrorCode;
use rust_socketio::Payload;
use rust_socketio::asynchronous::ClientBuilder;
use tokio::sync::mpsc;

/// Runs `graph` on the grid and locally; every persisted result must agree, fetched one by
/// one after `Client::run` and as `Client::compute` returns them.
async fn assert_same_as_local(client: &Client, graph: &Graph) {
    let local = LocalExecutor::default().run(graph).expect("local run");
    let id = client.run(graph, |_| {}).await.expect("distributed run");
    let (computed_id, computed) = client.compute(graph).await.expect("distributed compute");
    assert_ne!(id, computed_id, "each run is a graph of its own");
    assert_eq!(computed.names().collect::<Vec<_>>(), local.names().collect::<Vec<_>>());
    for name in local.names() {
        let remote = client.fetch(id, name).await.expect("fetch");
        let expected = local.get(name).unwrap();
        assert!(close(&remote, expected), "`{name}` differs: {remote:?} vs {expected:?}");
        let remote = computed.get(name).unwrap();
        assert!(close(remote, expected), "computed `{name}` differs: {remote:?} vs {expected:?}");
    }
}

fn close(a: &TensorValue, b: &TensorValue) -> bool {
    match (a, b) {
        (TensorValue::Tensor(x), TensorValue::Tensor(y)) => {
            x.dtype() == y.dtype()
                && x.shape() == y.shape()
                && x.to_f64_array()
                    .iter()
                    .zip(y.to_f64_array().iter())
                    .all(|(p, q)| (p.is_nan() && q.is_nan()) || p == q || (p - q).abs() <= 1e-12 * (1.0 + q.abs()))
        }
        (TensorValue::List(x), TensorValue::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q)),
        _ => false,
    }
}

/// `n` independent small computations, and one sum over a few of them.
fn wide(n: usize) -> Graph {
    let graph = Graph::new("wide");
    let base = graph.t(vec![1.0, 2.0, 3.0]);
    let terms: Vec<_> = (0..n).map(|i| (&base * (i as f64)).exp().sum(ReduceParams::all())).collect();
    for (i, term) in terms.iter().enumerate().step_by(7) {
        term.persist(format!("term{i}"));
    }
    (&terms[0] + &terms[n - 1]).persist("total");
    graph
}

fn deep(n: usize) -> Graph {
    let graph = Graph::new("deep");
    let mut x = graph.t(vec![0.5, -0.25]);
    for i in 0..n {
        x = if i % 2 == 0 { &x * 1.01 + 0.1 } else { (&x - 0.05).abs() };
    }
    x.persist("end");
    graph
}

fn mixed() -> Graph {
    let graph = Graph::new("mixed");
    let m = graph.t(Array::from_shape_fn((6, 6), |(i, j)| (i * 6 + j) as f64 / 10.0 + if i == j { 3.0 } else { 0.0 }));
    let inverse = m.inv();
    inverse.matmul(&m).persist("identity");
    m.transpose(TransposeParams::default()).index("[1:, ::2]").persist("picked");
    m.std(StatParams { axis: Some(0.into()), ..StatParams::default() }).persist("std");
    m.greater(&graph.scalar(2.0)).persist("mask");
    graph.t(vec![3, 1, 2, 3, 3]).unique(Default::default()).persist("unique");
    graph
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graphs_on_two_providers_equal_the_local_executor() {
    let stack = Stack::start(30_000).await;
    let mut fast = stack.provider(100.0);
    let mut slow = stack.provider(10.0);
    fast.joined().await;
    slow.joined().await;
    let client = stack.client().await;
    assert_same_as_local(&client, &wide(400)).await;
    assert_same_as_local(&client, &deep(100)).await;
    assert_same_as_local(&client, &mixed()).await;
    // Small inputs (one request), a result too big to travel inline (fetched through ravftp).
    let outer = Graph::new("outer");
    let column = outer.t(Array::from_shape_fn((600, 1), |(i, _)| i as f64));
    let row = outer.t(Array::from_shape_fn((1, 600), |(_, j)| j as f64 / 7.0));
    (&column * &row).persist("outer");
    (&column * 2.0).persist("small");
    assert_same_as_local(&client, &outer).await;
    // Big tensors (4 MB) go through ravftp: the input up, to the providers and their outputs
    // back, and the result down; small ones stay inline.
    let big = Graph::new("big");
    let x = big.t(ArrayD::from_shape_fn(IxDyn(&[512, 1024]), |i| (i[0] * 1024 + i[1]) as f64));
    (&x * 2.0).sum(ReduceParams::axis(1)).persist("rows");
    let plus_one = &x + 1.0;
    plus_one.persist("plus_one");
    (&plus_one * &x).persist("product");
    assert_same_as_local(&client, &big).await;
    let blobs = std::fs::read_dir(stack.data_dir().join("blobs")).unwrap().count();
    assert!(blobs >= 3, "the input, `plus_one` and `product` are stored as files, found {blobs}");
    let (fast, slow) = (fast.stop().await.unwrap(), slow.stop().await.unwrap());
    assert!(fast.subgraphs > 0 && slow.subgraphs > 0, "both providers worked: {fast:?} {slow:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_past_a_frames_inline_budget_travel_through_ravftp() {
    // Each value fits the inline limit, but 20 of them do not fit one frame (8 values at the
    // limit): the provider uploads the outputs past the budget, and ravsock writes the inline
    // inputs past it into the provider's home. Before, such a frame could grow past socket.io's
    // 64 MiB message limit and cost the provider its connection, attempt after attempt.
    let stack = Stack::start(30_000).await;
    let mut worker = stack.provider(1.0);
    worker.joined().await;
    let client = stack.client().await;
    let graph = Graph::new("many values");
    let len = (INLINE_LIMIT as usize - 64) / 8;
    let parts: Vec<_> = (0..20).map(|k| graph.t(Array::from_shape_fn(len, |i| (i * 20 + k) as f64))).collect();
    for (k, part) in parts.iter().enumerate() {
        (part * 2.0).persist(format!("double{k}"));
    }
    let refs: Vec<_> = parts.iter().collect();
    graph.concat(&refs, JoinParams::default()).sum(ReduceParams::all()).persist("total");
    assert_same_as_local(&client, &graph).await;
    // Only the budget puts a value under the inline limit into a file.
    let small_files = std::fs::read_dir(stack.data_dir().join("blobs"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().metadata().unwrap().len() <= INLINE_LIMIT)
        .count();
    assert!(small_files > 0, "outputs past a frame's budget were stored as files");
    assert!(worker.stop().await.unwrap().subgraphs > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kernel_errors_fail_the_graph_with_the_op_and_reason() {
    let stack = Stack::start(30_000).await;
    let provider = stack.provider(1.0);
    let client = stack.client().await;
    let graph = Graph::new("singular");
    graph.t(ndarray::array![[1.0, 2.0], [2.0, 4.0]]).inv().persist("inverse");
    let error = client.run(&graph, |_| {}).await.unwrap_err();
    match error {
        Error::GraphFailed { failure: Some(failure), .. } => {
            assert_eq!(failure.operator, "inv");
            assert!(failure.reason.contains("singular matrix"), "{}", failure.reason);
        }
        other => panic!("expected a failed graph, got {other}"),
    }
    provider.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_of_a_provider_that_disconnects_is_reassigned() {
    let stack = Stack::start(30_000).await;
    let (silent, mut assigned) = silent_provider(&stack, &stack.provider_token).await;
    let client = stack.client().await;
    let graph = deep(40);
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    assigned.recv().await.expect("the silent provider got work");
    // It dies holding the assignment; a real provider arrives and finishes the graph.
    silent.disconnect().await.unwrap();
    let worker = stack.provider(1.0);
    client.wait(id, |_| {}).await.expect("graph completes");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert!(close(&client.fetch(id, "end").await.unwrap(), local.get("end").unwrap()));
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_that_never_answers_loses_its_work_at_the_deadline() {
    // Deadlines of 1.5 s plus 10 ms per op: the silent provider's hand-out expires quickly,
    // while the real provider has ample time even on a loaded 2-core CI machine.
    let stack = Stack::start(1_500).await;
    let (_silent, mut assigned) = silent_provider(&stack, &stack.provider_token).await;
    let client = stack.client().await;
    let graph = wide(10);
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    assigned.recv().await.expect("the silent provider got work");
    let worker = stack.provider(1.0);
    client.wait(id, |_| {}).await.expect("graph completes after the deadline");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert!(close(&client.fetch(id, "total").await.unwrap(), local.get("total").unwrap()));
    assert!(worker.stop().await.unwrap().subgraphs > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_server_resumes_unfinished_graphs() {
    let mut stack = Stack::start(30_000).await;
    let (silent, mut assigned) = silent_provider(&stack, &stack.provider_token).await;
    let graph = deep(60);
    let id = {
        let client = stack.client().await;
        let id = client.submit(&graph).await.unwrap();
        client.execute(id).await.unwrap();
        id
    };
    assigned.recv().await.expect("work was handed out before the restart");
    stack.restart(30_000).await;
    drop(silent);
    let worker = stack.provider(1.0);
    let client = stack.client().await;
    client.wait(id, |_| {}).await.expect("the resumed graph completes");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert!(close(&client.fetch(id, "end").await.unwrap(), local.get("end").unwrap()));
    worker.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_tokens_and_other_peoples_graphs_are_refused() {
    let stack = Stack::start(30_000).await;
    let refused = stack.provider_with("rav_wrong", 1.0).task.await.unwrap();
    assert!(
        matches!(refused, Err(ravpy::Error::Refused { code: ErrorCode::Unauthorized, ref message }) if message.contains("invalid token")),
        "{refused:?}"
    );
    let as_provider = stack.provider_with(&stack.requester, 1.0).task.await.unwrap();
    assert!(
        matches!(as_provider, Err(ravpy::Error::Refused { code: ErrorCode::Forbidden, .. })),
        "a requester token cannot provide: {as_provider:?}"
    );
    assert!(matches!(
        Client::connect(&stack.url, "rav_wrong").await,
        Err(Error::Server { code: ErrorCode::Unauthorized, .. })
    ));

    let provider = stack.provider(1.0);
    let alice = stack.client().await;
    let id = alice.run(&wide(3), |_| {}).await.unwrap();
    let bob = Client::connect(&stack.url, &stack.other_requester).await.unwrap();
    assert!(matches!(bob.fetch(id, "total").await, Err(Error::Server { code: ErrorCode::NotFound, .. })));
    assert!(matches!(bob.progress(id).await, Err(Error::Server { code: ErrorCode::NotFound, .. })));
    assert!(bob.list_graphs().await.unwrap().is_empty());
    provider.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ftp_sessions_are_confined_to_their_home() {
    use ravproto::messages::FtpCredentials;
    let stack = Stack::start(30_000).await;
    let mut provider = stack.provider(1.0);
    provider.joined().await;
    let http = reqwest_credentials(&stack, &stack.requester).await;
    let mut alice = ravftp::FtpClient::connect("127.0.0.1", &http, None).await.expect("requester logs in");
    alice.put("mine.ravv", b"alice's bytes").await.unwrap();
    std::fs::write(stack.data_dir().join("blobs").join("999.ravv"), b"stored value").unwrap();
    for path in
        ["../provider-1/in-1-1.ravv", "../../blobs/999.ravv", "/../blobs/999.ravv", "/etc/hostname", "../../ravsock.db"]
    {
        assert!(alice.get_path(path).await.is_err(), "{path} must be refused");
    }
    assert_eq!(alice.get("mine.ravv", 13).await.unwrap(), b"alice's bytes");
    alice.quit().await;
    // Bob's credentials do not open Alice's home, and her old password dies with a new one.
    let bob = reqwest_credentials(&stack, &stack.other_requester).await;
    let as_alice = FtpCredentials { user: http.user.clone(), ..bob.clone() };
    assert!(ravftp::FtpClient::connect("127.0.0.1", &as_alice, None).await.is_err());
    let renewed = reqwest_credentials(&stack, &stack.requester).await;
    assert!(ravftp::FtpClient::connect("127.0.0.1", &http, None).await.is_err(), "the old password stopped working");
    assert!(ravftp::FtpClient::connect("127.0.0.1", &renewed, None).await.is_ok());
    provider.stop().await.unwrap();
}

pub(crate) async fn reqwest_credentials(stack: &Stack, token: &str) -> ravproto::messages::FtpCredentials {
    let url = format!("{}/v1/ftp/credentials", stack.url);
    let response = crate::stack::http().post(url).bearer_auth(token).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn providers_list_the_open_graphs_with_their_requirements() {
    use ravproto::messages::{Approach, GraphMeta, Requirements};
    let stack = Stack::start(30_000).await;
    let client = stack.client().await;
    // No provider here has a GPU, so this graph stays open.
    let graph = wide(5);
    graph.set_meta(GraphMeta {
        name: "needs-gpu".into(),
        requirements: Requirements { gpu_required: true, ..Requirements::default() },
        ..GraphMeta::default()
    });
    let id = client.submit(&graph).await.unwrap();
    let pending = client.submit(&wide(2)).await.unwrap(); // never executed: not open
    client.execute(id).await.unwrap();
    let open = ravpy::list_graphs(&stack.url, &stack.provider_token, &stack.trust, None).await.unwrap();
    assert_eq!(open.iter().map(|g| g.graph_id).collect::<Vec<_>>(), vec![id], "{open:?}");
    assert!(open[0].requirements.gpu_required && open[0].ops > 0 && open[0].percent < 100.0);
    let table = ravpy::view::table(&open);
    assert!(table.contains("needs-gpu") && table.contains("gpu"), "{table}");
    assert!(!table.contains(&format!("\n{:>6} ", pending.0)));
    let federated =
        ravpy::list_graphs(&stack.url, &stack.provider_token, &stack.trust, Some(Approach::Federated)).await.unwrap();
    assert!(federated.is_empty());
    assert!(matches!(
        ravpy::list_graphs(&stack.url, "rav_wrong", &stack.trust, None).await,
        Err(ravpy::Error::Refused { code: ErrorCode::Unauthorized, .. })
    ));
    // A requester sees its own open graphs only: another owner's names are not its business.
    let listed = |token: String| {
        let url = stack.url.clone();
        let trust = stack.trust.clone();
        async move { ravpy::list_graphs(&url, &token, &trust, None).await.unwrap() }
    };
    assert_eq!(listed(stack.requester.clone()).await.iter().map(|g| g.graph_id).collect::<Vec<_>>(), vec![id]);
    assert!(listed(stack.other_requester.clone()).await.is_empty(), "bob must not see alice's graph");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requesters_follow_their_graphs_through_pushed_events() {
    let stack = Stack::start(30_000).await;
    let client = stack.client().await;
    let graph = deep(250);
    let id = client.submit(&graph).await.unwrap();
    let mut events = client.subscribe(id).await.unwrap();
    match events.next().await {
        Some(Ok(GraphEvent::Progress(progress))) => assert_eq!(progress.status, GraphStatus::Pending),
        other => panic!("expected the current state first, got {other:?}"),
    }
    // A provider takes the first subgraph and vanishes: the requester hears of the failed
    // attempt, then of the graph's end once a real provider finished it.
    let (silent, mut assigned) = silent_provider(&stack, &stack.provider_token).await;
    client.execute(id).await.unwrap();
    assigned.recv().await.expect("the silent provider got work");
    silent.disconnect().await.unwrap();
    let worker = stack.provider(1.0);
    let mut retried = None;
    let mut progress_seen = 0;
    let done = loop {
        match events.next().await.expect("the stream ends only after the graph").unwrap() {
            GraphEvent::Progress(progress) => {
                assert_eq!(progress.status, GraphStatus::Computing);
                progress_seen += 1;
            }
            GraphEvent::OpFailed(notice) => retried = Some(notice),
            GraphEvent::Done(progress) => break progress,
        }
    };
    let retried = retried.expect("the failed attempt was reported");
    assert!(retried.will_retry);
    assert!(retried.failure.reason.contains("disconnected"), "{}", retried.failure.reason);
    assert_eq!(done.status, GraphStatus::Computed);
    assert_eq!(done.percent, 100.0);
    assert!(progress_seen >= 1, "progress was pushed while computing");
    assert!(events.next().await.is_none(), "nothing after the end");
    events.close().await;

    // A finished graph answers with its end at once; someone else's graph is refused.
    let mut late = client.subscribe(id).await.unwrap();
    assert!(matches!(late.next().await, Some(Ok(GraphEvent::Done(p))) if p.status == GraphStatus::Computed));
    let bob = Client::connect(&stack.url, &stack.other_requester).await.unwrap();
    let mut prying = bob.subscribe(id).await.unwrap();
    assert!(matches!(prying.next().await, Some(Err(Error::Server { code: ErrorCode::NotFound, .. }))));
    worker.stop().await.unwrap();
}

/// A raw `/requester` connection with this auth payload; every `error_body` event and
/// connection error arrives on the channel as text.
async fn raw_requester(
    stack: &Stack,
    auth: serde_json::Value,
) -> (rust_socketio::asynchronous::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let forward = |tx: mpsc::UnboundedSender<String>, tag: &'static str| {
        move |payload: Payload, _| {
            let tx = tx.clone();
            async move {
                let text = match payload {
                    Payload::Text(values) => values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "),
                    other => format!("{other:?}"),
                };
                let _ = tx.send(format!("{tag}: {text}"));
            }
            .boxed()
        }
    };
    let client = ClientBuilder::new(stack.url.clone())
        .namespace(ravproto::requester::NAMESPACE)
        .transport_type(rust_socketio::TransportType::Websocket)
        .auth(auth)
        .on("open", forward(tx.clone(), "open"))
        .on(ravproto::requester::EVENT_ERROR, forward(tx.clone(), "error_body"))
        .on("error", forward(tx, "error"))
        .connect()
        .await
        .unwrap();
    (client, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requester_messages_get_a_clear_refusal() {
    let stack = Stack::start(30_000).await;
    let (_refused, mut said) = raw_requester(&stack, serde_json::json!({"token": stack.requester.clone()})).await;
    let refusal = said.recv().await.expect("the connection is refused");
    assert!(refusal.starts_with("error") && refusal.contains("malformed auth payload"), "{refusal}");

    let auth = serde_json::json!({"token": stack.requester.clone(), "protocol_version": ravproto::PROTOCOL_VERSION});
    let (client, mut said) = raw_requester(&stack, auth).await;
    assert!(said.recv().await.is_some_and(|event| event.starts_with("open")), "connected");
    client.emit(ravproto::requester::EVENT_SUBSCRIBE, serde_json::json!({"graph": "x"})).await.unwrap();
    // Bounded: a dropped request would otherwise leave this test waiting for ever.
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), said.recv())
        .await
        .expect("the bad subscribe is answered, not dropped")
        .expect("an answer to the bad subscribe");
    assert!(answer.starts_with("error_body") && answer.contains("bad_request"), "{answer}");
    assert!(answer.contains("malformed subscribe"), "{answer}");
}

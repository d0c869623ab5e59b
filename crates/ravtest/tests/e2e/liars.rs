//! A lying provider, built on the ravpy library (test code, not a flag of the shipped binary):
//! it computes each assignment with `ravpy::compute::run`, then answers with the result bent
//! one way (another shape, another dtype, a list, nothing at all). ravsock refuses each lie
//! with a typed `refused` event before storing anything, an honest provider computes the
//! subgraph instead, and the graph's results equal the `LocalExecutor`'s.

use crate::stack::Stack;
use futures_util::FutureExt;
use ndarray::ArrayD;
use ravexec::{MemoryBudget, Tensor, TensorValue};
use ravop::{Graph, LocalExecutor};
use ravproto::frame::{Frame, unstuff};
use ravproto::messages::{Benchmark, ErrorBody, ErrorCode};
use ravproto::provider::{
    AssignHeader, EVENT_ASSIGN, EVENT_JOIN, EVENT_REFUSED, EVENT_RESULT, JoinRequest, NAMESPACE, ProviderAuth,
    ResultMessage,
};
use ravproto::{DType, Value};
use ravsock::auth::Role;
use ravsock::db::Db;
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use std::time::Duration;
use tokio::sync::mpsc;

/// How the liar bends its answers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lie {
    /// The values flattened to one dimension.
    Shape,
    /// The values cast to another dtype.
    Dtype,
    /// An empty list instead of a tensor.
    EmptyList,
    /// The right dtype and shape, every number one more: only another provider's answer shows
    /// it (`verified.rs`).
    Numbers,
}

fn bend(value: Value, lie: Lie) -> Value {
    let TensorValue::Tensor(tensor) = TensorValue::from_wire_owned(value) else { return Value::List(vec![]) };
    match lie {
        Lie::Shape => {
            let flat: Vec<f64> = tensor.to_f64_array().iter().copied().collect();
            let len = flat.len();
            let flat = Tensor::F64(ArrayD::from_shape_vec(ndarray::IxDyn(&[len]), flat).unwrap());
            Value::Tensor(flat.cast(tensor.dtype()).into_data())
        }
        Lie::Dtype => {
            let other = if tensor.dtype() == DType::F32 { DType::F64 } else { DType::F32 };
            Value::Tensor(tensor.cast(other).into_data())
        }
        Lie::EmptyList => Value::List(vec![]),
        Lie::Numbers => {
            let more = Tensor::F64(tensor.to_f64_array().mapv(|x| x + 1.0));
            Value::Tensor(more.cast(tensor.dtype()).into_data())
        }
    }
}

/// What a liar hears: the refusals of its answers, and a unit per assignment it received.
pub(crate) type Heard = (mpsc::UnboundedReceiver<ErrorBody>, mpsc::UnboundedReceiver<()>);

/// Connects a provider of `token` that lies on every assignment; returns what it hears.
pub(crate) async fn liar(stack: &Stack, token: &str, lie: Lie) -> (Client, Heard) {
    let (refusals_tx, refusals) = mpsc::unbounded_channel();
    let (assigned_tx, assigned) = mpsc::unbounded_channel();
    let (open_tx, mut open) = mpsc::unbounded_channel();
    let auth = ProviderAuth { token: token.to_string(), protocol_version: ravproto::PROTOCOL_VERSION };
    let client = ClientBuilder::new(stack.url.clone())
        .namespace(NAMESPACE)
        .transport_type(rust_socketio::TransportType::Websocket)
        .reconnect(false)
        .auth(serde_json::to_value(auth).unwrap())
        .on("open", move |_, _| {
            let _ = open_tx.send(());
            async {}.boxed()
        })
        .on(EVENT_ASSIGN, move |payload: Payload, client: Client| {
            let _ = assigned_tx.send(());
            async move {
                let Payload::Binary(bytes) = payload else { return };
                let frame = unstuff(&bytes).and_then(|raw| Frame::<AssignHeader>::decode(&raw)).expect("an assignment");
                let sessions = ravpy::compute::Sessions::default();
                let Ok((mut result, _)) = ravpy::compute::run(frame, None, &sessions, MemoryBudget::UNLIMITED) else {
                    return;
                };
                result.values = result.values.into_iter().map(|value| bend(value, lie)).collect();
                let message = serde_json::to_value(ResultMessage::new(&result)).unwrap();
                let _ = client.emit(EVENT_RESULT, message).await;
            }
            .boxed()
        })
        .on(EVENT_REFUSED, move |payload: Payload, _| {
            let refusals_tx = refusals_tx.clone();
            async move {
                if let Payload::Text(values) = payload
                    && let Some(body) = values.into_iter().next().and_then(|v| serde_json::from_value(v).ok())
                {
                    let _ = refusals_tx.send(body);
                }
            }
            .boxed()
        })
        .connect()
        .await
        .unwrap();
    // A message sent before the namespace is open is lost.
    open.recv().await.expect("the connection opens");
    // Fastest on the grid: it gets the work first.
    let benchmark = Benchmark {
        ram_bytes: 8 << 30,
        cores: 2,
        gpu: false,
        speed_score: 1e9,
        onnx: cfg!(feature = "onnx"),
        memory_budget_bytes: None,
    };
    client
        .emit(EVENT_JOIN, serde_json::to_value(JoinRequest { benchmark, graph: None, groups: vec![] }).unwrap())
        .await
        .unwrap();
    (client, (refusals, assigned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_lie_about_a_results_shape_or_dtype_is_refused_and_an_honest_provider_answers() {
    let stack = Stack::start(30_000).await;
    let db = Db::connect(&stack.database_url).await.unwrap();
    let client = stack.client().await;
    let mut honest = stack.provider(1.0);
    honest.joined().await;
    crate::stack::known_to_the_server(&client, &mut honest).await;
    for (round, lie) in [Lie::Shape, Lie::Dtype, Lie::EmptyList].into_iter().enumerate() {
        let token = db.create_account(&format!("liar-{round}"), Role::Provider).await.unwrap();
        let (liar, (mut refusals, _)) = liar(&stack, &token, lie).await;
        // The liar is known to the server once it has been refused (its join is not
        // acknowledged): graphs run until one reaches it, each checked against the local run.
        let rounds = async {
            for attempt in 0.. {
                let graph = Graph::new(format!("{lie:?} {attempt}"));
                let a = graph.t(ndarray::arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn());
                let b = a.matmul(&a.transpose(Default::default()));
                (&b + 0.5).persist("c");
                b.persist("b");
                let (_, results) = client.compute(&graph).await.unwrap_or_else(|e| panic!("{lie:?}: {e}"));
                let local = LocalExecutor::default().run(&graph).unwrap();
                for name in ["b", "c"] {
                    assert_eq!(results.get(name).unwrap(), local.get(name).unwrap(), "{lie:?}: {name}");
                }
                if let Ok(body) = refusals.try_recv() {
                    return body;
                }
            }
            unreachable!("the rounds go on until a refusal")
        };
        let body = tokio::time::timeout(Duration::from_secs(30), rounds)
            .await
            .unwrap_or_else(|_| panic!("{lie:?}: the liar was never refused"));
        assert_eq!(body.code, ErrorCode::BadRequest);
        let expected = match lie {
            Lie::Shape | Lie::Dtype => "the op makes f64",
            Lie::EmptyList => "is a list; the op makes f64",
            Lie::Numbers => unreachable!("a numeric lie passes these checks (verified.rs)"),
        };
        assert!(
            body.message.starts_with("results refused: ") && body.message.contains(expected),
            "{lie:?}: {}",
            body.message
        );
        liar.disconnect().await.unwrap();
    }
    honest.stop().await.unwrap();
}

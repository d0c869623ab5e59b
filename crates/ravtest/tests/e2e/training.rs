//! Training through ravsock: a two-layer MLP trained over batches and epochs on two providers
//! gives exactly the local executor's loss curve (the weights stay with one provider between
//! subgraphs, and its kernels are the local executor's), and keeps it when that provider
//! leaves and the server restarts: the next provider resumes from the stored checkpoint.

use crate::stack::Stack;
use ndarray::{Array1, Array2};
use ravop::{Graph, LocalExecutor, Op};
use serde_json::json;

const EPOCHS: usize = 4;
const BATCHES: usize = 3;
const ROWS: usize = 12;

fn params<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid params")
}

/// The MLP training graph; persists every step's loss as `loss-{epoch}-{batch}`.
fn mlp() -> Graph {
    let graph = Graph::new("train-mlp");
    let optimizer = json!({"name": "adam", "lr": 0.05, "eps": 1e-8});
    let (mut first, mut second): (Option<Op>, Option<Op>) = (None, None);
    for epoch in 0..EPOCHS {
        for batch in 0..BATCHES {
            let x = Array2::from_shape_fn((ROWS, 2), |(i, j)| {
                let k = (batch * ROWS + i) as f64;
                ((k * 0.37 + j as f64 * 1.3).sin()) * 2.0
            });
            let labels = Array1::from_iter(x.rows().into_iter().map(|r| if r[0] * r[1] > 0.0 { 1.0 } else { 0.0 }));
            let (x, y) = (graph.t(x.into_dyn()), graph.t(labels.into_dyn()));
            let hidden = x.forward_pass_dense(params(json!({"n_units": 8, "optimizer": optimizer,
                "previous_forward_pass": first.as_ref().map(|op| op.id().0)})));
            let activated = hidden.forward_pass_activation(params(json!({"act_data": {"name": "tanh"}})));
            let logits = activated.forward_pass_dense(params(json!({"n_units": 2, "optimizer": optimizer,
                "previous_forward_pass": second.as_ref().map(|op| op.id().0)})));
            let loss = y.cross_entropy_loss(&logits, Default::default());
            loss.persist(format!("loss-{epoch}-{batch}"));
            loss.start_backward_marker(Default::default());
            first = Some(hidden);
            second = Some(logits);
        }
    }
    graph
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_mlp_trained_on_the_grid_follows_the_local_loss_curve() {
    let graph = mlp();
    let local = LocalExecutor::default().run(&graph).expect("local training");
    let stack = Stack::start(30_000).await;
    let mut one = stack.provider(100.0);
    let mut two = stack.provider(100.0);
    one.joined().await;
    two.joined().await;
    let client = stack.client().await;
    let id = client.run(&graph, |_| {}).await.expect("training on the grid");
    let mut curve = Vec::new();
    for epoch in 0..EPOCHS {
        for batch in 0..BATCHES {
            let name = format!("loss-{epoch}-{batch}");
            let remote = client.fetch(id, &name).await.expect("fetch a loss").as_tensor().unwrap().to_f64_array().sum();
            let expected = local.array::<f64>(&name).unwrap().sum();
            assert_eq!(remote, expected, "{name}: grid {remote} vs local {expected}");
            curve.push(remote);
        }
    }
    let first_epoch: f64 = curve[..BATCHES].iter().sum();
    let last_epoch: f64 = curve[curve.len() - BATCHES..].iter().sum();
    assert!(last_epoch < first_epoch, "the loss went down: {curve:?}");
    let (one, two) = (one.stop().await.unwrap(), two.stop().await.unwrap());
    assert!(one.subgraphs == 0 || two.subgraphs == 0, "one provider held the weights: {one:?} {two:?}");
}

/// The losses of every step, fetched from the grid, checked bit for bit against the local run.
async fn check_curve(client: &ravop::Client, id: ravop::GraphId, local: &ravop::Results) {
    for epoch in 0..EPOCHS {
        for batch in 0..BATCHES {
            let name = format!("loss-{epoch}-{batch}");
            let remote = client.fetch(id, &name).await.expect("fetch a loss").as_tensor().unwrap().to_f64_array().sum();
            let expected = local.array::<f64>(&name).unwrap().sum();
            assert_eq!(remote, expected, "{name}: grid {remote} vs local {expected}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn training_resumes_from_the_checkpoint_when_the_holder_is_gone_and_the_server_restarts() {
    let graph = mlp();
    let local = LocalExecutor::default().run(&graph).expect("local training");
    let mut stack = Stack::start(30_000).await;
    // The provider holding the weights trains three steps, then leaves with them.
    let mut holder = stack.provider_leaving_after(100.0, 3);
    holder.joined().await;
    let id = {
        let client = stack.client().await;
        let id = client.submit(&graph).await.expect("submit");
        client.execute(id).await.expect("execute");
        id
    };
    let held = holder.task.await.expect("provider task").expect("the holder leaves cleanly");
    let steps = (EPOCHS * BATCHES) as u64;
    assert!(held.subgraphs >= 3 && held.subgraphs < steps, "the holder left mid-training: {held:?}");
    // The server restarts too: only the stored checkpoint is left of the training state.
    stack.restart(30_000).await;
    let successor = stack.provider(1.0);
    let client = stack.client().await;
    client.wait(id, |_| {}).await.expect("training completes on the successor");
    check_curve(&client, id, &local).await;
    let took_over = successor.stop().await.unwrap();
    assert_eq!(took_over.subgraphs, steps - held.subgraphs, "the successor trained the remaining steps only");
}

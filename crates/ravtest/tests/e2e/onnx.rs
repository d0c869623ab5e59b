//! ONNX models on the grid (feature `onnx`): batches run through the committed tiny MLP on a
//! provider give exactly the local executor's outputs, and a provider that cannot run ONNX
//! models is never handed the graph (and sees the requirement in `list-graphs`).

use crate::stack::Stack;
use ndarray::Array2;
use ravop::{Graph, LocalExecutor};

const TINY_MLP: &[u8] = include_bytes!("../../../../examples/data/tiny_mlp.onnx");
const BATCHES: usize = 6;

/// Six batches of 16 rows through the model, with the predicted class of each row.
fn inference() -> Graph {
    let graph = Graph::new("onnx-batches");
    let model = graph.model(TINY_MLP.to_vec());
    for batch in 0..BATCHES {
        let x = Array2::from_shape_fn((16, 4), |(i, j)| (((batch * 16 + i) * 4 + j) as f64 * 0.61).sin() * 2.0);
        let probabilities = graph.t(x.into_dyn()).infer(&model);
        probabilities.persist(format!("probabilities-{batch}"));
        probabilities
            .argmax(ravproto::ops::ArgParams { axis: Some(1), keepdims: false })
            .persist(format!("class-{batch}"));
    }
    graph
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn onnx_batches_run_on_providers_that_have_onnx_and_match_the_local_run() {
    let graph = inference();
    let local = LocalExecutor::default().run(&graph).expect("local inference");
    let stack = Stack::start(30_000).await;
    let mut without = stack.provider_without_onnx(1000.0);
    without.joined().await;
    let client = stack.client().await;
    let id = client.submit(&graph).await.expect("submit");
    client.execute(id).await.expect("execute");
    // Providers see the requirement before they join.
    let open = ravpy::list_graphs(&stack.url, &stack.provider_token, &stack.trust, None).await.expect("list graphs");
    let listed = open.iter().find(|g| g.graph_id == id).expect("the graph is open");
    assert!(listed.requirements.onnx_required, "{listed:?}");
    assert!(ravpy::view::table(&open).contains("onnx"), "{}", ravpy::view::table(&open));
    // The graph waits for a provider that runs ONNX models; the faster one without is skipped.
    let mut with = stack.provider(1.0);
    with.joined().await;
    client.wait(id, |_| {}).await.expect("inference completes");
    for batch in 0..BATCHES {
        for name in [format!("probabilities-{batch}"), format!("class-{batch}")] {
            let remote = client.fetch(id, &name).await.expect("fetch").as_tensor().cloned().expect("a tensor");
            assert_eq!(&remote, local.tensor(&name).unwrap(), "{name}");
        }
    }
    let (without, with) = (without.stop().await.unwrap(), with.stop().await.unwrap());
    assert_eq!(without.subgraphs, 0, "a provider without ONNX got work: {without:?}");
    assert!(with.subgraphs > 0, "{with:?}");
}

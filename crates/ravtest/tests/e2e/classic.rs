//! Classic ML on the grid: models fitted by one subgraph are used by later ones (the model
//! value travels through ravsock like any other), and every result equals the local executor's.

use crate::stack::Stack;
use ndarray::{Array1, Array2};
use ravop::ops::{KMeansParams, KnnParams};
use ravop::{FittedModel, Graph, LocalExecutor};

/// Fits k-NN, naive Bayes, linear regression and k-means, then (more than a window of ops
/// later, so in other subgraphs) predicts and scores with them.
fn models() -> Graph {
    let graph = Graph::new("classic");
    let x = Array2::from_shape_fn((60, 3), |(i, j)| ((i * 7 + j * 3) as f64 * 0.37).sin() * 3.0 + (i % 3) as f64 * 2.0);
    let labels = Array1::from_iter((0..60).map(|i| (i % 3) as f64));
    let target = Array1::from_iter(x.rows().into_iter().map(|r| r[0] * 1.5 - r[2] + 0.25));
    let (x, labels, target) = (graph.t(x.into_dyn()), graph.t(labels.into_dyn()), graph.t(target.into_dyn()));
    let knn = x.knn_classifier(&labels, KnnParams { k: 3 });
    let nb = x.naive_bayes(&labels);
    let linear = x.linear_regression(&target);
    let kmeans = x.kmeans(KMeansParams { n_clusters: 3, random_state: 5 });
    kmeans.persist("kmeans");
    // A window's worth of unrelated ops between the fits and their use.
    let mut filler = x.neg();
    for _ in 0..20 {
        filler = filler.neg();
    }
    filler.persist("filler");
    knn.score(&x, &labels).persist("knn_accuracy");
    nb.predict(&x).persist("nb_labels");
    linear.score(&x, &target).persist("linear_r2");
    kmeans.predict(&x).persist("clusters");
    graph
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn models_fitted_on_the_grid_predict_like_local_ones() {
    let graph = models();
    let local = LocalExecutor::default().run(&graph).expect("local run");
    let stack = Stack::start(30_000).await;
    let mut one = stack.provider(100.0);
    let mut two = stack.provider(50.0);
    one.joined().await;
    two.joined().await;
    let client = stack.client().await;
    let id = client.run(&graph, |_| {}).await.expect("the graph computes on the grid");
    for name in ["knn_accuracy", "nb_labels", "linear_r2", "clusters", "kmeans"] {
        let remote = client.fetch(id, name).await.expect("fetch");
        assert_eq!(&remote, local.get(name).unwrap(), "{name}");
    }
    let r2 = local.array::<f64>("linear_r2").unwrap().sum();
    assert!((r2 - 1.0).abs() < 1e-9, "an exact linear target is fitted exactly: R² {r2}");
    let model = FittedModel::from_value(&client.fetch(id, "kmeans").await.unwrap().to_wire()).unwrap();
    assert_eq!(model.name(), "kmeans");
    let (one, two) = (one.stop().await.unwrap(), two.stop().await.unwrap());
    assert!(one.subgraphs + two.subgraphs >= 2, "fits and uses ran as separate subgraphs: {one:?} {two:?}");
}

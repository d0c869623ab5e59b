//! Graph-building snapshots and local execution.

use crate::ops::{JoinParams, ReduceParams, StatParams};
use crate::{Error, Graph, LocalExecutor};
use expect_test::expect;
use ndarray::array;

#[test]
fn hello_graph_dump_and_result() {
    let graph = Graph::new("hello");
    let a = graph.t(vec![1.0, 2.0, 3.0]);
    let b = graph.t(vec![5.0, 22.0, 7.0]);
    (&a + &b).persist("c");
    expect![[r#"
        op#0 = lin() f64[3]
        op#1 = lin() f64[3]
        op#2 = add(op#0, op#1) {"key":null} persist=c
    "#]]
    .assert_eq(&graph.dump());
    let results = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.array::<f64>("c").unwrap(), array![6.0, 24.0, 10.0].into_dyn());
}

#[test]
fn operators_scalars_and_methods_compose() {
    let graph = Graph::new("mixed");
    let x = graph.t(array![[1.0, 2.0], [3.0, 4.0]]);
    let y = (&x * 2.0 - 1.0) / &x;
    let centred = &x - x.mean(ReduceParams::axis(0).keepdims());
    let total = y.sum(ReduceParams::all()).persist("total");
    centred.std(StatParams { axis: Some(0.into()), ..StatParams::default() }).persist("std");
    (-&total).persist("negated");
    let stacked = graph.stack(&[&x, &x.transpose(Default::default())], JoinParams { axis: 0 });
    stacked.index("[1, :, ::-1]").persist("picked");
    x.greater(&graph.scalar(2.0)).persist("mask");
    expect![[r#"
        op#0 = lin() f64[2, 2]
        op#1 = lin() f64[]
        op#2 = mul(op#0, op#1)
        op#3 = lin() f64[]
        op#4 = sub(op#2, op#3)
        op#5 = div(op#4, op#0)
        op#6 = mean(op#0) {"axis":0,"keepdims":true}
        op#7 = sub(op#0, op#6)
        op#8 = sum(op#5) {"axis":null,"keepdims":false} persist=total
        op#9 = std(op#7) {"axis":0,"keepdims":false,"ddof":0.0} persist=std
        op#10 = neg(op#8) persist=negated
        op#11 = transpose(op#0) {"axes":null}
        op#12 = stack(op#0, op#11) {"axis":0}
        op#13 = index(op#12) {"indices":[{"int":1},{"slice":{"start":null,"stop":null,"step":null}},{"slice":{"start":null,"stop":null,"step":-1}}]} persist=picked
        op#14 = lin() f64[]
        op#15 = greater(op#0, op#14) persist=mask
    "#]]
    .assert_eq(&graph.dump());
    let results = LocalExecutor::default().run(&graph).unwrap();
    // (2x - 1) / x for 1..4 is 1, 1.5, 5/3, 1.75.
    let total = results.array::<f64>("total").unwrap()[[]];
    assert!((total - (1.0 + 1.5 + 5.0 / 3.0 + 1.75)).abs() < 1e-12);
    assert_eq!(results.array::<f64>("negated").unwrap()[[]], -total);
    assert_eq!(results.array::<f64>("std").unwrap(), array![1.0, 1.0].into_dyn());
    assert_eq!(results.array::<f64>("picked").unwrap(), array![[3.0, 1.0], [4.0, 2.0]].into_dyn());
    assert_eq!(results.array::<bool>("mask").unwrap(), array![[false, false], [true, true]].into_dyn());
    assert_eq!(results.names().collect::<Vec<_>>(), vec!["mask", "negated", "picked", "std", "total"]);
}

#[test]
fn build_mistakes_are_reported_before_running() {
    let graph = Graph::new("bad index");
    let a = graph.t(vec![1.0, 2.0]);
    a.index("[__import__('os')]").persist("x");
    let err = LocalExecutor::default().run(&graph).unwrap_err();
    expect![[r#"op#1 (`index`): cannot parse index "[__import__('os')]" at byte 1: unknown name (only None, newaxis, True, False, Ellipsis)"#]]
        .assert_eq(&err.to_string());

    let first = Graph::new("first");
    let second = Graph::new("second");
    let a = first.t(vec![1.0]);
    let b = second.t(vec![2.0]);
    let _ = &a + &b;
    assert_eq!(first.validate().unwrap_err().to_string(), "op#1 (`add`): input op#0 belongs to another graph");

    let graph = Graph::new("names");
    let a = graph.t(vec![1.0]);
    a.persist("x");
    a.neg().persist("x");
    assert!(matches!(graph.validate(), Err(Error::Build { .. })));
}

#[test]
fn kernel_errors_name_the_op() {
    let graph = Graph::new("singular");
    graph.t(array![[1.0, 2.0], [2.0, 4.0]]).inv().persist("inverse");
    let err = LocalExecutor::default().run(&graph).unwrap_err();
    assert_eq!(err.to_string(), "op#1 failed: op `inv`: singular matrix");

    let graph = Graph::new("shapes");
    let a = graph.t(vec![1.0, 2.0, 3.0]);
    let b = graph.t(vec![1.0, 2.0]);
    (a + b).persist("sum");
    let err = LocalExecutor::default().run(&graph).unwrap_err();
    assert_eq!(err.to_string(), "op#2 failed: op `add`: shapes [3] and [2] cannot be broadcast together");
}

#[test]
fn missing_results_are_errors() {
    let graph = Graph::new("split");
    graph
        .t(vec![1, 2, 3, 4])
        .split(crate::ops::SplitParams { num_or_size_splits: crate::ops::SplitSpec::Sections(2), axis: 0 })
        .persist("parts");
    let results = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.tensor("parts").unwrap_err(), Error::NotATensor("parts".into()));
    assert_eq!(results.get("nope").unwrap_err(), Error::UnknownResult("nope".into()));
}

#[test]
fn records_carry_local_ids_values_and_persist_names() {
    let graph = Graph::new("records");
    let a = graph.scalar(2i64);
    a.square().persist("sq");
    let json = serde_json::to_string(&graph.to_records()).unwrap();
    expect![[r#"[{"local_id":0,"operation":{"operator":"lin","params":{"dtype":"i64","shape":[]}},"inputs":[],"persist":null,"value":{"tensor":{"dtype":"i64","shape":[],"data":[2]}}},{"local_id":1,"operation":{"operator":"square","params":{}},"inputs":[{"local":0}],"persist":"sq","value":null}]"#]]
        .assert_eq(&json);
}

#[test]
fn integer_literals_work_as_scalars_and_tensors() {
    let graph = Graph::new("ints");
    let a = graph.t(vec![1, 2, 3]);
    (&a + 2).persist("plus");
    (a * graph.scalar(3)).persist("times");
    let results = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.tensor("plus").unwrap().dtype(), crate::DType::I64);
    assert_eq!(results.array::<i64>("plus").unwrap(), array![3, 4, 5].into_dyn());
    assert_eq!(results.array::<i64>("times").unwrap(), array![3, 6, 9].into_dyn());
}

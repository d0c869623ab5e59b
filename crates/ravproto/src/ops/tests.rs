//! Catalogue invariants: counts, names, arity, and the JSON form of typed params.

use super::*;
use expect_test::{Expect, expect};

fn check_json(json: &str, expect: Expect) {
    let parsed: Result<Operation, _> = serde_json::from_str(json);
    let shown = match parsed {
        Ok(op) => serde_json::to_string(&op).expect("serializes"),
        Err(e) => format!("error: {e}"),
    };
    expect.assert_eq(&shown);
}

#[test]
fn catalogue_has_all_145_original_keys_plus_predict_and_score() {
    assert_eq!(OpKind::ALL.len(), 147);
    let mut shorts: Vec<_> = OpKind::ALL.iter().map(|k| k.short_name()).collect();
    shorts.sort_unstable();
    shorts.dedup();
    assert_eq!(shorts.len(), 147, "short names are unique");
    let mut wires: Vec<_> = OpKind::ALL.iter().map(|k| k.wire_name()).collect();
    wires.sort_unstable();
    wires.dedup();
    assert_eq!(wires.len(), 147, "wire names are unique");
}

#[test]
fn group_sizes_match_the_reference() {
    let count = |g: Group| OpKind::ALL.iter().filter(|k| k.group() == g).count();
    let sizes = [
        (Group::Input, 2),
        (Group::Arithmetic, 15),
        (Group::LinalgShape, 46),
        (Group::Logic, 10),
        (Group::Statistics, 8),
        (Group::ClassicMl, 14),
        (Group::DeepLearning, 38),
        (Group::WholeModel, 3),
        (Group::Losses, 8),
        (Group::Federated, 3),
    ];
    for (group, size) in sizes {
        assert_eq!(count(group), size, "{group:?}");
    }
}

#[test]
fn names_resolve_both_ways() {
    for &kind in OpKind::ALL {
        assert_eq!(OpKind::from_name(kind.short_name()), Some(kind));
        assert_eq!(OpKind::from_name(kind.wire_name()), Some(kind));
    }
    assert_eq!(OpKind::from_name("matrix_sum"), Some(OpKind::Sum));
    assert_eq!(OpKind::from_name("no_such_op"), None);
}

#[test]
fn every_kind_with_default_params_round_trips() {
    // Kinds whose params have no required field build from `{}` and survive a round trip.
    let mut with_required = Vec::new();
    for &kind in OpKind::ALL {
        match Operation::from_json_params(kind, serde_json::Value::Null) {
            Ok(op) => {
                assert_eq!(op.kind(), kind);
                let json = serde_json::to_string(&op).expect("serializes");
                let back: Operation = serde_json::from_str(&json).expect("parses back");
                assert_eq!(back, op);
            }
            Err(_) => with_required.push(kind.short_name()),
        }
    }
    expect![[r#"
        [
            "lin",
            "reshape",
            "split",
            "slice",
            "pad",
            "repeat",
            "index",
            "set_value",
            "cnn_index",
            "cnn_index_2",
            "cnn_add_at",
            "foreach",
            "knn_classifier",
            "knn_regressor",
            "kmeans",
            "forward_pass_dense",
            "forward_pass_layernorm",
            "forward_pass_conv2d",
            "forward_pass_maxpool2d",
            "forward_pass_embedding",
            "forward_pass_reshape",
            "forward_pass_power",
        ]
    "#]]
    .assert_debug_eq(&with_required);
}

#[test]
fn operation_json_forms() {
    check_json(r#"{"operator":"sub"}"#, expect![[r#"{"operator":"sub","params":{}}"#]]);
    check_json(
        r#"{"operator":"matrix_sum","params":{"axis":[0,1],"keepdims":true}}"#,
        expect![[r#"{"operator":"sum","params":{"axis":[0,1],"keepdims":true}}"#]],
    );
    check_json(
        r#"{"operator":"index","params":{"indices":"[1:, ::2, -1]"}}"#,
        expect![[
            r#"{"operator":"index","params":{"indices":[{"slice":{"start":1,"stop":null,"step":null}},{"slice":{"start":null,"stop":null,"step":2}},{"int":-1}]}}"#
        ]],
    );
    check_json(
        r#"{"operator":"foreach","params":{"operation":{"operator":"sum","params":{"axis":0}}}}"#,
        expect![[
            r#"{"operator":"foreach","params":{"operation":{"operator":"sum","params":{"axis":0,"keepdims":false}}}}"#
        ]],
    );
    check_json(
        r#"{"operator":"clip","params":{"lower_limit":0,"upper_limit":2.5}}"#,
        expect![[r#"{"operator":"clip","params":{"lower_limit":0,"upper_limit":2.5}}"#]],
    );
    check_json(
        r#"{"operator":"forward_pass_dense","params":{"n_units":4,"optimizer":{"name":"adam","lr":0.001,"eps":1e-8},"previous_forward_pass":7}}"#,
        expect![[
            r#"{"operator":"forward_pass_dense","params":{"n_units":4,"initial_w":null,"initial_w0":null,"optimizer":{"name":"adam","lr":0.001,"betas":[0.9,0.999],"eps":1e-8,"weight_decay":0.0,"amsgrad":false},"previous_forward_pass":7,"training":true}}"#
        ]],
    );
}

#[test]
fn bad_operations_name_the_problem() {
    check_json(r#"{"operator":"frobnicate"}"#, expect!["error: unknown operator `frobnicate` at line 1 column 25"]);
    check_json(
        r#"{"operator":"sum","params":{"axes":1}}"#,
        expect!["error: bad params for `sum`: unknown field `axes`, expected `axis` or `keepdims`"],
    );
    check_json(
        r#"{"operator":"reshape","params":{}}"#,
        expect!["error: bad params for `reshape`: missing field `shape`"],
    );
    check_json(
        r#"{"operator":"index","params":{"indices":"[__import__('os')]"}}"#,
        expect![[
            r#"error: bad params for `index`: cannot parse index "[__import__('os')]" at byte 1: unknown name (only None, newaxis, True, False, Ellipsis)"#
        ]],
    );
}

#[test]
fn param_refs_are_extra_dependencies() {
    let op: Operation =
        serde_json::from_str(r#"{"operator":"forward_pass","params":{"model":3,"previous_forward_pass":9}}"#).unwrap();
    assert_eq!(op.param_refs(), vec![OpId(9), OpId(3)]);
    // Only the model's value reaches the kernel.
    assert_eq!(op.value_refs(), vec![OpId(3)]);
    let add: Operation = serde_json::from_str(r#"{"operator":"add"}"#).unwrap();
    assert!(add.param_refs().is_empty() && add.value_refs().is_empty());
    let dense: Operation =
        serde_json::from_str(r#"{"operator":"forward_pass_dense","params":{"n_units":2,"previous_forward_pass":4}}"#)
            .unwrap();
    assert_eq!((dense.param_refs(), dense.value_refs()), (vec![OpId(4)], vec![]));
    // Stored with the server's ids: the references are rewritten in place, typed.
    let mut stored = op.clone();
    stored.map_param_refs(|local| Some(OpId(local.0 + 100))).unwrap();
    assert_eq!(stored.param_refs(), vec![OpId(109), OpId(103)]);
    assert_eq!(stored.value_refs(), vec![OpId(103)]);
    assert_eq!(op.clone().map_param_refs(|local| (local.0 == 9).then_some(local)), Err(OpId(3)));
}

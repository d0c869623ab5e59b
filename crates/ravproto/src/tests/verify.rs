//! Verification settings on the wire, and when two answers agree.

use super::check;
use crate::messages::Requirements;
use crate::tensor::{TensorData, Value};
use crate::verify::{Verify, agree, max_answers};
use expect_test::expect;

fn f32s(values: &[f32]) -> Value {
    Value::Tensor(TensorData::from_f32(vec![values.len()], values).unwrap())
}

fn f64s(values: &[f64]) -> Value {
    Value::Tensor(TensorData::from_f64(vec![values.len()], values).unwrap())
}

#[test]
fn verify_is_on_the_wire_only_when_asked() {
    check(
        &Requirements { verify: Verify::Replicas(2), ..Requirements::default() },
        expect![[r#"{"min_ram_bytes":null,"gpu_required":false,"min_speed_score":null,"verify":{"replicas":2}}"#]],
    );
    check(
        &Requirements { verify: Verify::SpotCheck(0.25), ..Requirements::default() },
        expect![[r#"{"min_ram_bytes":null,"gpu_required":false,"min_speed_score":null,"verify":{"spot_check":0.25}}"#]],
    );
    let none: Requirements = serde_json::from_str(r#"{"verify":"none"}"#).unwrap();
    assert_eq!(none, Requirements::default());
}

#[test]
fn settings_out_of_range_are_named() {
    assert_eq!(Verify::Replicas(2).problem(), None);
    assert_eq!(Verify::SpotCheck(1.0).problem(), None);
    for bad in [Verify::Replicas(0), Verify::Replicas(1), Verify::Replicas(6)] {
        assert!(bad.problem().unwrap().contains("2 to 5 replicas"), "{bad:?}");
    }
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        assert!(Verify::SpotCheck(bad).problem().unwrap().contains("above 0 and at most 1"), "{bad}");
    }
}

#[test]
fn quorum_cost_and_sampling() {
    assert_eq!(Verify::None.quorum(false, true), 1);
    assert_eq!(Verify::Replicas(3).quorum(true, false), 3);
    assert_eq!(Verify::Replicas(3).first_handouts(), 3);
    assert_eq!(Verify::SpotCheck(0.1).quorum(true, false), 1, "a trusted answer not sampled stands");
    assert_eq!(Verify::SpotCheck(0.1).quorum(true, true), 2);
    assert_eq!(Verify::SpotCheck(0.1).quorum(false, false), 2, "an untrusted answer is always checked");
    assert_eq!([Verify::None, Verify::Replicas(3), Verify::SpotCheck(0.1)].map(|v| v.cost_factor()), [1, 3, 2]);
    assert_eq!(max_answers(2), 4);
    assert_eq!(
        [Verify::None, Verify::Replicas(2), Verify::SpotCheck(0.1)].map(|v| v.to_string()),
        ["none", "replicas(2)", "spot_check(0.1)"]
    );
    // The sampled fraction is close to the one asked, and the same every time.
    let check = Verify::SpotCheck(0.2);
    let picked = (0..10_000).filter(|i| check.samples(7, *i)).count();
    assert!((1_800..2_200).contains(&picked), "{picked} of 10000 sampled at 0.2");
    assert!((0..100).all(|i| check.samples(7, i) == check.samples(7, i)));
    assert!((0..100).all(|i| Verify::SpotCheck(1.0).samples(3, i)));
}

#[test]
fn answers_agree_within_their_dtypes_tolerance() {
    assert!(agree(&f32s(&[1.0, 1e6, 0.0]), &f32s(&[1.00005, 1e6 + 50.0, 5e-6])), "last bits of f32");
    assert!(!agree(&f32s(&[1.0]), &f32s(&[1.001])), "a lie in the third digit");
    assert!(agree(&f64s(&[1.0, f64::NAN, f64::INFINITY]), &f64s(&[1.0 + 1e-12, f64::NAN, f64::INFINITY])));
    assert!(!agree(&f64s(&[1.0]), &f64s(&[1.0 + 1e-6])));
    assert!(!agree(&f64s(&[f64::NAN]), &f64s(&[0.0])));
    assert!(!agree(&f64s(&[f64::INFINITY]), &f64s(&[f64::NEG_INFINITY])));
    assert!(!agree(&f32s(&[1.0]), &f64s(&[1.0])), "dtypes differ");
    assert!(!agree(&f32s(&[1.0, 2.0]), &Value::Tensor(TensorData::from_f32(vec![2, 1], &[1.0, 2.0]).unwrap())));
    let ints = |v: &[i64]| Value::Tensor(TensorData::from_i64(vec![v.len()], v).unwrap());
    assert!(agree(&ints(&[1, 2]), &ints(&[1, 2])));
    assert!(!agree(&ints(&[1, 2]), &ints(&[1, 3])), "integers bit for bit");
    assert!(agree(&Value::List(vec![ints(&[1]), f32s(&[2.0])]), &Value::List(vec![ints(&[1]), f32s(&[2.0])])));
    assert!(!agree(&Value::List(vec![ints(&[1])]), &Value::List(vec![])));
    assert!(!agree(&Value::List(vec![ints(&[1])]), &ints(&[1])));
}

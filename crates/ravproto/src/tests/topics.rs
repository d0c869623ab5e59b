//! Topics: the spec, rounds and socket events frozen as JSON; the aggregations; the scoring's
//! split of a reward in whole units.

use super::check;
use crate::topics::*;
use expect_test::expect;

fn spec() -> TopicSpec {
    TopicSpec {
        name: "eth-price-5m".into(),
        cadence_ms: 60_000,
        deadline_ms: 20_000,
        workers: 3,
        aggregation: Aggregation::Median,
        reward_per_round: 100,
    }
}

fn answer(worker: &str, value: f64) -> Answer {
    Answer { worker: worker.into(), value, at_ms: 1_800_000_000_000 }
}

#[test]
fn messages() {
    check(
        &spec(),
        expect![[
            r#"{"name":"eth-price-5m","cadence_ms":60000,"deadline_ms":20000,"workers":3,"aggregation":"median","reward_per_round":100}"#
        ]],
    );
    check(
        &Topic { id: TopicId(4), owner: "alice".into(), spec: spec(), open: true, rounds: 12 },
        expect![[
            r#"{"id":4,"owner":"alice","spec":{"name":"eth-price-5m","cadence_ms":60000,"deadline_ms":20000,"workers":3,"aggregation":"median","reward_per_round":100},"open":true,"rounds":12}"#
        ]],
    );
    check(&TopicSubscribe { topic: TopicId(4) }, expect![[r#"{"topic":4}"#]]);
    check(
        &RoundOpen { topic: TopicId(4), round: 13, closes_in_ms: 19_990 },
        expect![[r#"{"topic":4,"round":13,"closes_in_ms":19990}"#]],
    );
    check(
        &TopicEnded { topic: TopicId(4), code: TopicEndCode::Closed, reason: "closed by its requester".into() },
        expect![[r#"{"topic":4,"code":"closed","reason":"closed by its requester"}"#]],
    );
    check(&AnswerRequest { value: 3012.5 }, expect![[r#"{"value":3012.5}"#]]);
    check(&AnswerReceipt { topic: TopicId(4), round: 13 }, expect![[r#"{"topic":4,"round":13}"#]]);
    check(&TruthRequest { value: 3000.0 }, expect![[r#"{"value":3000.0}"#]]);
    let answers = vec![answer("w1", 3000.0), answer("w2", 3300.0)];
    check(
        &Round {
            topic: TopicId(4),
            number: 13,
            status: RoundStatus::Closed,
            opened_at_ms: 1_800_000_000_000,
            closes_at_ms: 1_800_000_020_000,
            scores: score(&answers, 3000.0, 100),
            answers,
            value: Some(3150.0),
            truth: Some(3000.0),
        },
        expect![[
            r#"{"topic":4,"number":13,"status":"closed","opened_at_ms":1800000000000,"closes_at_ms":1800000020000,"answers":[{"worker":"w1","value":3000.0,"at_ms":1800000000000},{"worker":"w2","value":3300.0,"at_ms":1800000000000}],"value":3150.0,"truth":3000.0,"scores":[{"worker":"w1","error":0.0,"weight":1.0,"reward":52},{"worker":"w2","error":300.0,"weight":0.9090909090909091,"reward":48}]}"#
        ]],
    );
    // The reward may be left out (a topic that pays nothing); a misspelt key is refused.
    let free: TopicSpec =
        serde_json::from_str(r#"{"name":"t","cadence_ms":1000,"deadline_ms":500,"workers":1,"aggregation":"mean"}"#)
            .unwrap();
    assert_eq!(free.reward_per_round, 0);
    let refused = serde_json::from_str::<TopicSpec>(
        r#"{"name":"t","cadence":1000,"deadline_ms":500,"workers":1,"aggregation":"mean"}"#,
    );
    assert!(refused.unwrap_err().to_string().contains("unknown field `cadence`"));
}

#[test]
fn a_spec_is_checked() {
    assert_eq!(spec().check(), Ok(()));
    let broken = [
        TopicSpec { name: String::new(), ..spec() },
        TopicSpec { name: "x".repeat(MAX_NAME_BYTES + 1), ..spec() },
        TopicSpec { cadence_ms: MIN_CADENCE_MS - 1, deadline_ms: 1, ..spec() },
        TopicSpec { deadline_ms: 0, ..spec() },
        TopicSpec { deadline_ms: 60_001, ..spec() },
        TopicSpec { workers: 0, ..spec() },
        TopicSpec { workers: MAX_WORKERS + 1, ..spec() },
    ];
    for spec in broken {
        assert!(spec.check().is_err(), "{spec:?}");
    }
}

#[test]
fn aggregations() {
    assert_eq!(Aggregation::Median.of(&[]), None);
    assert_eq!(Aggregation::Median.of(&[5.0, 1.0, 1000.0]), Some(5.0));
    assert_eq!(Aggregation::Median.of(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(Aggregation::Mean.of(&[1.0, 2.0, 6.0]), Some(3.0));
}

#[test]
fn scoring_splits_the_reward_exactly_by_accuracy() {
    // Exact: weight 1; off by 10%: 1/1.1; off by 100%: 1/2.
    let answers = [answer("exact", 200.0), answer("close", 220.0), answer("far", 400.0)];
    let scores = score(&answers, 200.0, 1_000);
    let weights: Vec<f64> = scores.iter().map(|s| s.weight).collect();
    assert_eq!(weights[0], 1.0);
    assert!((weights[1] - 1.0 / 1.1).abs() < 1e-12);
    assert_eq!(weights[2], 0.5);
    assert_eq!(scores[2].error, 200.0);
    let rewards: Vec<u64> = scores.iter().map(|s| s.reward).collect();
    // 1000 × (1, 0.909, 0.5) / 2.409: 415.09, 377.36, 207.55 → floors 415, 377, 207 and the
    // one unit left to the largest remainder (207.55).
    assert_eq!(rewards, vec![415, 377, 208]);
    // Whole units always add up to the reward, however it divides.
    for reward in [0, 1, 2, 7, 99, 1_000_003] {
        let answers: Vec<Answer> = (0..7).map(|i| answer(&format!("w{i}"), 10.0 + f64::from(i))).collect();
        let total: u64 = score(&answers, 10.0, reward).iter().map(|s| s.reward).sum();
        assert_eq!(total, reward);
    }
    // Equal answers split evenly, the odd unit to the earlier answer.
    let rewards: Vec<u64> = score(&[answer("a", 1.0), answer("b", 1.0)], 1.0, 3).iter().map(|s| s.reward).collect();
    assert_eq!(rewards, vec![2, 1]);
    // A truth of zero: an exact answer takes (nearly) everything.
    let rewards: Vec<u64> = score(&[answer("a", 0.0), answer("b", 1.0)], 0.0, 10).iter().map(|s| s.reward).collect();
    assert_eq!(rewards, vec![10, 0]);
    assert!(score(&[], 1.0, 10).is_empty());
}

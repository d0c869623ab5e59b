//! The ledger's bodies frozen as JSON: balances, an entry from the mint and one between
//! accounts, a page, a credit (unknown fields refused), and the 402 of a short balance.

use super::check;
use crate::ledger::*;
use crate::messages::ErrorCode;
use expect_test::expect;

#[test]
fn names_round_trip() {
    check(&Pocket::OF_ACCOUNTS, expect![[r#"["available","staked","escrowed","slashed"]"#]]);
    check(
        &Reason::ALL,
        expect![[
            r#"["credit","topic_reward","graph_escrow","subgraph_payment","graph_refund","stake","slash","stake_return"]"#
        ]],
    );
    for pocket in Pocket::OF_ACCOUNTS.into_iter().chain([Pocket::Mint]) {
        assert_eq!(Pocket::from_name(pocket.name()), Some(pocket));
        assert_eq!(serde_json::to_value(pocket).unwrap(), pocket.name());
    }
    for reason in Reason::ALL {
        assert_eq!(Reason::from_name(reason.name()), Some(reason));
        assert_eq!(serde_json::to_value(reason).unwrap(), reason.name());
    }
    assert_eq!(Pocket::from_name("wallet"), None);
    assert_eq!(MAX_AMOUNT, 4_611_686_018_427_387_903, "the migrations' CHECKs spell this number");
    assert_eq!(ErrorCode::InsufficientFunds.http_status(), 402);
    // Every catalogue op has a price, cheap ops the least.
    assert!(crate::OpKind::ALL.iter().all(|&kind| (1..=10).contains(&op_price(kind))));
    assert_eq!(op_price(crate::OpKind::from_name("add").unwrap()), 1);
    assert_eq!(op_price(crate::OpKind::from_name("matmul").unwrap()), 2);
    assert!(!ErrorCode::InsufficientFunds.is_server_fault());
}

#[test]
fn a_slash_keeps_half_of_a_stake_and_at_least_a_unit() {
    assert_eq!([0, 1, 3, 40, 101].map(slash_amount), [0, 1, 1, 20, 50]);
    assert_eq!(slash_amount(MAX_AMOUNT), MAX_AMOUNT / 2, "no overflow near the maximum");
}

#[test]
fn a_stake_is_a_requirement_only_when_asked() {
    use crate::messages::Requirements;
    check(&Requirements::default(), expect![[r#"{"min_ram_bytes":null,"gpu_required":false,"min_speed_score":null}"#]]);
    check(
        &Requirements { min_stake: 40, ..Requirements::default() },
        expect![[r#"{"min_ram_bytes":null,"gpu_required":false,"min_speed_score":null,"min_stake":40}"#]],
    );
}

#[test]
fn ledger_messages() {
    check(
        &Balance { account: "alice".into(), available: 500, staked: 0, escrowed: 20, slashed: 0 },
        expect![[r#"{"account":"alice","available":500,"staked":0,"escrowed":20,"slashed":0}"#]],
    );
    let minted = Entry {
        id: 1,
        from: Book { account: None, pocket: Pocket::Mint },
        to: Book { account: Some("alice".into()), pocket: Pocket::Available },
        amount: 1500,
        reason: Reason::Credit,
        reference: "credit to alice".into(),
        key: "grant-1".into(),
        at: 1_800_000_000,
    };
    let paid = Entry {
        id: 2,
        from: Book { account: Some("alice".into()), pocket: Pocket::Available },
        to: Book { account: Some("w1".into()), pocket: Pocket::Available },
        amount: 667,
        reason: Reason::TopicReward,
        reference: "topic#1 round 1".into(),
        key: "topic:1:round:1:worker:3".into(),
        at: 1_800_000_060,
    };
    assert_eq!((minted.from.to_string(), paid.to.to_string()), ("mint".into(), "w1:available".into()));
    check(
        &EntryPage { entries: vec![minted, paid], next: Some(2) },
        expect![[
            r#"{"entries":[{"id":1,"from":{"pocket":"mint"},"to":{"account":"alice","pocket":"available"},"amount":1500,"reason":"credit","reference":"credit to alice","key":"grant-1","at":1800000000},{"id":2,"from":{"account":"alice","pocket":"available"},"to":{"account":"w1","pocket":"available"},"amount":667,"reason":"topic_reward","reference":"topic#1 round 1","key":"topic:1:round:1:worker:3","at":1800000060}],"next":2}"#
        ]],
    );
    check(
        &CreditRequest { account: "alice".into(), amount: 1500, key: "grant-1".into() },
        expect![[r#"{"account":"alice","amount":1500,"key":"grant-1"}"#]],
    );
    let refused = serde_json::from_str::<CreditRequest>(r#"{"account":"a","amount":1,"key":"k","to":"b"}"#);
    assert!(refused.unwrap_err().to_string().contains("unknown field `to`"));
    assert!(serde_json::from_str::<CreditRequest>(r#"{"account":"a","amount":-1,"key":"k"}"#).is_err());
}

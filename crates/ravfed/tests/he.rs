//! Encrypted sums with tfhe (feature `he`, run in release): what providers encrypt, ravsock
//! adds and the requester decrypts equals the plain sum, beyond the point where carries must be
//! propagated, and malformed input is refused.
#![cfg(feature = "he")]

use ravfed::FedError;
use ravfed::he::{Aggregator, KeySet, check_submission, encrypt, public_key_of};
use ravfed::stats::add_plain;
use ravproto::federated::{ColumnRequest, ColumnSums};

fn columns() -> Vec<ColumnRequest> {
    vec![ColumnRequest { column: "age".into(), squares: true }, ColumnRequest { column: "fund".into(), squares: false }]
}

fn sums(seed: i64) -> Vec<ColumnSums> {
    vec![
        ColumnSums {
            count: 10 + seed as u64,
            sum: 400_000 + seed * 1_234,
            sum_sq: Some(17_000_000_000 + seed as u128),
        },
        // Negative sums wrap modulo 2^64 and must come back negative.
        ColumnSums { count: 3, sum: -5_000_000 * seed - 7, sum_sq: None },
    ]
}

#[test]
fn encrypted_sums_equal_plain_sums() {
    let keys = KeySet::generate();
    let evaluation = keys.evaluation_keys().unwrap();
    let public = public_key_of(&evaluation).unwrap();
    assert!(public.len() < 100_000, "the public key is small ({} bytes)", public.len());
    let mut aggregator = Aggregator::new(&evaluation, &columns()).unwrap();
    let mut plain = Vec::new();
    // Seven providers: more than a block's carry space holds, so some additions propagate.
    for seed in 0..7 {
        let submission = encrypt(&public, &columns(), &sums(seed)).unwrap();
        assert!(submission.len() < 64 << 10, "a submission is a few KB ({} bytes)", submission.len());
        check_submission(&public, &columns(), &submission).unwrap();
        aggregator.add(&submission).unwrap();
        add_plain(&mut plain, &columns(), &sums(seed)).unwrap();
    }
    assert_eq!(aggregator.added(), 7);
    let aggregate = aggregator.finish().unwrap();
    assert_eq!(keys.decrypt(&columns(), &aggregate).unwrap(), plain);
    // The wrong shape of request cannot decrypt it.
    let fewer = &columns()[..1];
    assert!(matches!(keys.decrypt(fewer, &aggregate), Err(FedError::Mismatch(_))));
}

#[test]
fn malformed_submissions_and_keys_are_refused() {
    let keys = KeySet::generate();
    let evaluation = keys.evaluation_keys().unwrap();
    let public = public_key_of(&evaluation).unwrap();
    let error = check_submission(&public, &columns(), b"not a ciphertext").unwrap_err();
    assert!(error.to_string().starts_with("encryption: submission: "), "{error}");
    // A list of the wrong length (one column instead of two) fails the conformance check.
    let short = encrypt(&public, &columns()[..1], &sums(1)[..1]).unwrap();
    assert!(check_submission(&public, &columns(), &short).is_err());
    // Statistics that do not match the request are refused before encrypting.
    let error = encrypt(&public, &columns(), &sums(1)[..1]).unwrap_err();
    assert_eq!(error.to_string(), "statistics do not match the graph: 1 columns sent, 2 asked for");
    assert!(public_key_of(b"\x05\0\0\0\0\0\0\0abc").is_err());
    assert!(Aggregator::new(&public, &columns()).is_err());
}

//! Snapshot tests freezing the JSON of every message type, and tensor encoding round trips,
//! by subject: [`tensor`] (values and their encodings), [`requester`] and [`provider`] (each
//! side's messages), [`accounts`] (the admin routes' bodies), [`index`] (the subscript grammar), [`ledger`] (balances and movements), [`topics`] (rounds and their scoring), [`verify`] (agreement and
//! its settings).

use expect_test::Expect;

mod accounts;
mod index;
mod ledger;
mod provider;
mod requester;
mod tensor;
mod topics;
mod verify;

pub(super) fn check<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &T,
    expect: Expect,
) {
    let json = serde_json::to_string(value).expect("serializes");
    expect.assert_eq(&json);
    let back: T = serde_json::from_str(&json).expect("parses back");
    assert_eq!(&back, value);
}

//! The subscript grammar (`"[1:, ::2, -1]"`): a requester's string is parsed, never evaluated.
//! What parses prints back to a subscript that parses to the same expression.
//!
//! Shared by the fuzz target and the corpus replay test (`crates/ravtest/tests/corpus`).

use ravproto::index::IndexExpr;

/// Panics where the property above does not hold for `data`.
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = text.parse::<IndexExpr>() {
        let printed = expr.to_string();
        let again: IndexExpr = printed.parse().unwrap_or_else(|e| panic!("{printed:?} does not parse: {e}"));
        assert_eq!(again, expr, "{text:?} printed as {printed:?}");
    }
    // The JSON form takes the string or the typed list.
    let _ = serde_json::from_str::<IndexExpr>(text);
}

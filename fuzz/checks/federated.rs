//! Federated plain submissions, as ravsock reads them: a requester's rules and the columns it
//! asks about, then providers' payloads. A payload `ravfed::stats::check_plain` accepts must
//! never make the aggregate overflow, however the accepted ones (up to the rules' most
//! providers) add up: an overflow at close would brick the query for every honest provider.
//!
//! Shared by the fuzz target and the corpus replay test (`crates/ravtest/tests/corpus`).

use ravfed::Statistics;
use ravfed::stats::{add_plain, check_plain};
use ravproto::federated::{ColumnRequest, FederatedPayload, FederatedRules};

/// One fuzz case, as JSON.
#[derive(serde::Deserialize)]
struct Case {
    rules: FederatedRules,
    columns: Vec<ColumnRequest>,
    submissions: Vec<FederatedPayload>,
}

/// Panics where the property above does not hold for `data`.
pub(crate) fn check(data: &[u8]) {
    let Ok(case) = serde_json::from_slice::<Case>(data) else { return };
    if case.rules.check().is_err() || case.columns.iter().any(|c| !case.rules.columns.contains_key(&c.column)) {
        return;
    }
    let most = case.rules.effective_max_clients() as usize;
    let mut total = Vec::new();
    let mut accepted = 0;
    for payload in &case.submissions {
        let FederatedPayload::Plain(sums) = payload else { continue };
        if accepted == most || check_plain(&case.columns, &case.rules, sums).is_err() {
            continue;
        }
        accepted += 1;
        if let Err(e) = add_plain(&mut total, &case.columns, sums) {
            panic!("submission {accepted} was accepted, then could not be added: {e}");
        }
    }
    for sums in &total {
        let stats = Statistics::from_sums(sums);
        let _ = stats.standard_deviation();
    }
}

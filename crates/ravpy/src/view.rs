//! What the `ravpy` binary shows on the terminal: a live status line while participating, and
//! the table of `list-graphs`, and the statement of `earnings`.

use crate::ProviderEvent;
use ravproto::messages::OpenGraph;
use std::fmt::Write;
use tokio::sync::mpsc;

/// Draws a live line (subgraphs and ops done, rate, last subgraph) from provider events until
/// the channel closes. Hidden when stderr is not a terminal.
pub async fn live(mut events: mpsc::UnboundedReceiver<ProviderEvent>) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar.set_message("connecting");
    let started = std::time::Instant::now();
    let (mut subgraphs, mut ops, mut failures) = (0u64, 0u64, 0u64);
    while let Some(event) = events.recv().await {
        let last = match event {
            ProviderEvent::Joined => "joined; waiting for work".to_string(),
            ProviderEvent::Computed { assignment, ops: n, millis } => {
                subgraphs += 1;
                ops += n;
                format!("last: subgraph #{assignment}, {n} ops in {millis:.1} ms")
            }
            ProviderEvent::Failed { assignment, reason } => {
                failures += 1;
                format!("last: subgraph #{assignment} failed: {reason}")
            }
            ProviderEvent::Sliced { bundle, slices, millis } => {
                format!("last: bundle #{bundle}, {slices} job slices in {millis:.1} ms")
            }
            ProviderEvent::JobEnded { job } => format!("last: job {job} ended"),
            ProviderEvent::Dropped { reason } => format!("dropped ({reason}); connecting again"),
        };
        let rate = ops as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{subgraphs} subgraphs, {ops} ops ({rate:.0} ops/s), {failures} failed | {last}"));
    }
    bar.finish_and_clear();
}

/// The `list-jobs` table: `mine` are the groups this provider joins (marked with `*`).
pub fn jobs_table(jobs: &[ravproto::jobs::Job], mine: &[String]) -> String {
    if jobs.is_empty() {
        return "no jobs are running right now\n".into();
    }
    let mut out = format!(
        "{:<8} {:<24} {:>9} {:>9} {:>7}  {:<20} {}\n",
        "job", "name", "slices", "done", "offer", "groups", "needs"
    );
    for job in jobs {
        let name = job.public.as_ref().map_or("(private)", |p| p.name.as_str());
        let groups = match job.groups.is_empty() {
            true => "public".to_string(),
            false => job
                .groups
                .iter()
                .map(|g| if mine.contains(g) { format!("{g}*") } else { g.clone() })
                .collect::<Vec<_>>()
                .join(","),
        };
        let needs = job.requirements.needs();
        let needs = if needs.is_empty() { "none".to_string() } else { needs.join(", ") };
        let done = job.counts.computed + job.counts.failed;
        out.push_str(&format!(
            "{:<8} {:<24} {:>9} {:>9} {:>7}  {:<20} {}\n",
            job.id.0,
            name.chars().take(24).collect::<String>(),
            job.counts.total,
            done,
            job.slice_payment_offer,
            groups,
            needs
        ));
    }
    out
}

/// The `list-graphs` table.
pub fn table(graphs: &[OpenGraph]) -> String {
    if graphs.is_empty() {
        return "no graphs are open to providers right now\n".into();
    }
    let mut out = format!(
        "{:>6}  {:<24} {:<12} {:>8} {:>6} {:>10}  requirements\n",
        "id", "name", "approach", "ops", "done", "pays"
    );
    for graph in graphs {
        let mut needs = graph.requirements.needs();
        if let Some(rules) = &graph.rules {
            needs.push(describe_rules(rules));
        }
        let approach = serde_json::to_value(graph.approach).ok().and_then(|v| v.as_str().map(str::to_string));
        let _ = writeln!(
            out,
            "{:>6}  {:<24} {:<12} {:>8} {:>5.1}% {:>10}  {}",
            graph.graph_id.0,
            graph.name.chars().take(24).collect::<String>(),
            approach.unwrap_or_default(),
            graph.ops,
            graph.percent,
            graph.pays.map_or_else(|| "-".to_string(), |units| units.to_string()),
            if needs.is_empty() { "none".to_string() } else { needs.join(", ") }
        );
    }
    out
}

/// The rules of a federated graph in words: privacy, providers, and each column's bounds.
pub fn describe_rules(rules: &ravproto::federated::FederatedRules) -> String {
    let privacy = match rules.privacy {
        ravproto::federated::Privacy::Encrypted => "encrypted",
        ravproto::federated::Privacy::Plain => "PLAIN (the server sees each provider's sums)",
    };
    let columns: Vec<String> = rules
        .columns
        .iter()
        .map(|(name, rule)| {
            let bound = |b: Option<f64>| b.map_or_else(|| "..".to_string(), |b| b.to_string());
            let mut text = match (rule.min, rule.max) {
                (None, None) => name.clone(),
                (min, max) => format!("{name} in [{}, {}]", bound(min), bound(max)),
            };
            if rule.optional {
                text.push_str(" (optional)");
            }
            text
        })
        .collect();
    format!(
        "{privacy}, {} to {} providers, columns: {}",
        rules.min_clients,
        rules.effective_max_clients(),
        columns.join(", ")
    )
}

/// `ravpy earnings`: the balances, then every movement of this account, oldest first, with
/// what it was for.
pub fn earnings(balance: &ravproto::ledger::Balance, entries: &[ravproto::ledger::Entry]) -> String {
    let mut text = format!(
        "{}: available {}, staked {}, escrowed {}, slashed {}\n",
        balance.account, balance.available, balance.staked, balance.escrowed, balance.slashed
    );
    if entries.is_empty() {
        text.push_str("no movements yet\n");
    }
    for entry in entries {
        let _ = writeln!(
            text,
            "{:>8} {:>12} {} -> {} ({}, {})",
            entry.id,
            entry.amount,
            entry.from,
            entry.to,
            entry.reason.name(),
            entry.reference
        );
    }
    text
}

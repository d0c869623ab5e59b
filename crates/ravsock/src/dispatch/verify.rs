//! A verified graph's answers (`ravproto::verify`): each is held in memory until a group of
//! answers that agree reaches the subgraph's quorum; then the group's value is stored, the
//! group's accounts are paid, and each account outside it is slashed (when the graph asks a
//! stake) and its record of clean answers starts again. An answer that does not settle the
//! subgraph tells the scheduler how many answers it now needs; answers that cannot agree
//! within [`max_answers`] fail the graph, naming the op and the accounts.
//!
//! Held answers are not durable: after a restart the subgraph is handed out afresh, and nobody
//! is paid for an answer that was never stored.

use super::task::Dispatcher;
use crate::scheduler::{Account, AssignmentId, Event};
use ravproto::ledger::slash_amount;
use ravproto::messages::OpFailure;
use ravproto::provider::SUBGRAPH;
use ravproto::verify::{agree, max_answers};
use ravproto::{GraphId, OpId, ProviderId, Value};

/// One subgraph's held answers.
#[derive(Debug)]
pub(super) struct Replicas {
    /// Agreeing answers that settle it, fixed at its first answer.
    quorum: u32,
    /// The answers so far.
    answers: Vec<Answer>,
}

/// One provider's answer to a subgraph: its outputs, sorted by op.
#[derive(Debug)]
struct Answer {
    account: Account,
    values: Vec<(OpId, Value)>,
}

/// What comparing an answer decided.
pub(super) enum Verdict {
    /// Enough answers agree: store these values and pay these accounts.
    Agreed { values: Vec<(OpId, Value)>, paid: Vec<Account> },
    /// Not settled: the event for the scheduler (`None`: ignore the answer).
    Pending(Option<Event>),
}

impl Dispatcher {
    /// Holds `values`, `provider`'s answer to `assignment` (`ops` of `graph`), and compares it
    /// with the subgraph's other answers.
    pub(super) async fn verify_answer(
        &mut self,
        provider: ProviderId,
        assignment: AssignmentId,
        graph: GraphId,
        ops: &[OpId],
        values: Vec<(OpId, Value)>,
    ) -> Verdict {
        let (Some(account), Some(&first)) = (self.scheduler.account_of(provider), ops.first()) else {
            return Verdict::Pending(None);
        };
        let trusted = self.scheduler.trusted(account);
        let Some(run) = self.runs.get_mut(graph) else { return Verdict::Pending(None) };
        let verify = run.verify;
        let stake = run.stake;
        let replicas = run.replicas.entry(first).or_insert_with(|| Replicas {
            quorum: verify.quorum(trusted, verify.samples(graph.0, first.0)),
            answers: Vec::new(),
        });
        // One account's word counts once, whatever the scheduler does.
        replicas.answers.retain(|answer| answer.account != account);
        replicas.answers.push(Answer { account, values });
        let quorum = replicas.quorum;
        let group = largest_group(&replicas.answers);
        if group.len() >= quorum as usize {
            let Some(mut replicas) = run.replicas.remove(&first) else { return Verdict::Pending(None) };
            // The answer just in is the group's when it completed it: its value is stored.
            let chosen = *group.iter().find(|i| **i == replicas.answers.len() - 1).unwrap_or(&group[0]);
            let values = std::mem::take(&mut replicas.answers[chosen].values);
            let right: Vec<Account> = group.iter().map(|i| replicas.answers[*i].account).collect();
            let wrong: Vec<Account> = (0..replicas.answers.len())
                .filter(|i| !group.contains(i))
                .map(|i| replicas.answers[i].account)
                .collect();
            for account in &wrong {
                self.metrics.failed("wrong_result");
                tracing::warn!(%graph, subgraph = %first, account, "a provider's result disagreed with the quorum");
                if stake > 0 {
                    self.slash(*account, graph, slash_amount(stake), "its result disagreed with the quorum").await;
                }
            }
            // Paid: the quorum's worth, as escrowed (agreement within a tolerance is not
            // transitive, so a group may hold one more).
            let paid = right.iter().copied().take(quorum as usize).collect();
            // A trusted answer taken alone (a spot check that did not sample it) was compared
            // with nothing: it adds nothing to the account's record.
            if replicas.answers.len() > 1 {
                self.followups.push(Event::Judged { right, wrong });
            }
            return Verdict::Agreed { values, paid };
        }
        let answers = replicas.answers.len() as u32;
        let wanted = answers + (quorum - group.len() as u32);
        if wanted <= max_answers(quorum) {
            return Verdict::Pending(Some(Event::ReplicaHeld { provider, assignment, answers_wanted: wanted }));
        }
        let accounts: Vec<String> = replicas.answers.iter().map(|a| a.account.to_string()).collect();
        let reason = format!(
            "the results of this subgraph disagree: {answers} answers by accounts {} and no {quorum} of them agree",
            accounts.join(", ")
        );
        run.replicas.remove(&first);
        let failure = OpFailure { op_id: first, operator: SUBGRAPH.into(), reason };
        Verdict::Pending(Some(Event::Disputed { provider, assignment, failure }))
    }
}

/// The indices of the largest group of answers that agree with one answer (the earliest such
/// answer's group on a tie).
fn largest_group(answers: &[Answer]) -> Vec<usize> {
    let same = |a: &Answer, b: &Answer| {
        a.values.len() == b.values.len()
            && a.values.iter().zip(&b.values).all(|((x, vx), (y, vy))| x == y && agree(vx, vy))
    };
    (0..answers.len())
        .map(|i| (0..answers.len()).filter(|j| same(&answers[i], &answers[*j])).collect::<Vec<usize>>())
        .fold(Vec::new(), |best, group| if group.len() > best.len() { group } else { best })
}

//! Topics' rounds, as timers of the one scheduler: each open topic has a time for its next
//! round and at most one open round with a deadline; [`super::Scheduler::next_deadline`]
//! includes both, so the dispatch task wakes for them as it does for assignments, and a
//! [`super::Event::Tick`] opens and closes rounds. Sans-IO like the rest: the task stores a
//! round before it announces it, and stores an answer before it reports it here.

use super::{Action, Millis};
use ravproto::topics::TopicId;
use std::collections::BTreeMap;

/// A topic's timing, from its spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A round opens this long after the one before.
    pub cadence_ms: Millis,
    /// A round takes answers this long.
    pub deadline_ms: Millis,
    /// Answers that close a round early.
    pub workers: u32,
}

/// A round taking answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenRound {
    /// Its number.
    pub number: u64,
    /// When it closes.
    pub closes_at: Millis,
    /// Answers stored so far.
    pub answers: u32,
}

/// Why an answer is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The scheduler runs no such topic (never opened, or closed).
    NoTopic,
    /// The round is not the open one: closed already, or not opened yet.
    NotOpen,
}

struct TopicState {
    timing: Timing,
    next_round: u64,
    next_open_at: Millis,
    open: Option<OpenRound>,
}

/// Every running topic.
#[derive(Default)]
pub(super) struct Topics {
    topics: BTreeMap<TopicId, TopicState>,
}

impl Topics {
    /// Runs a topic: round `next_round` opens at `next_open_at`, after `open` closes.
    pub(super) fn start(
        &mut self,
        topic: TopicId,
        timing: Timing,
        next_round: u64,
        next_open_at: Millis,
        open: Option<OpenRound>,
    ) {
        self.topics.insert(topic, TopicState { timing, next_round, next_open_at, open });
    }

    /// Stops a topic; its open round closes now.
    pub(super) fn stop(&mut self, topic: TopicId, actions: &mut Vec<Action>) {
        if let Some(round) = self.topics.remove(&topic).and_then(|t| t.open) {
            actions.push(Action::CloseRound { topic, round: round.number });
        }
    }

    /// Whether `round` of `topic` takes an answer at `now`.
    pub(super) fn accepts(&self, topic: TopicId, round: u64, now: Millis) -> Result<(), Refusal> {
        let state = self.topics.get(&topic).ok_or(Refusal::NoTopic)?;
        match state.open {
            Some(open) if open.number == round && open.closes_at > now => Ok(()),
            _ => Err(Refusal::NotOpen),
        }
    }

    /// An answer to `round` was stored: the round closes once it has as many as it needs.
    pub(super) fn answered(&mut self, topic: TopicId, round: u64, actions: &mut Vec<Action>) {
        let Some(state) = self.topics.get_mut(&topic) else { return };
        let Some(open) = state.open.as_mut().filter(|open| open.number == round) else { return };
        open.answers += 1;
        if open.answers >= state.timing.workers {
            state.open = None;
            actions.push(Action::CloseRound { topic, round });
        }
    }

    /// Closes the rounds past their deadline, then opens the rounds that are due.
    pub(super) fn tick(&mut self, now: Millis, actions: &mut Vec<Action>) {
        for (&topic, state) in &mut self.topics {
            if let Some(open) = state.open.filter(|open| open.closes_at <= now) {
                state.open = None;
                actions.push(Action::CloseRound { topic, round: open.number });
            }
            if state.open.is_none() && state.next_open_at <= now {
                let round = state.next_round;
                let closes_at = now + state.timing.deadline_ms;
                state.open = Some(OpenRound { number: round, closes_at, answers: 0 });
                state.next_round += 1;
                state.next_open_at = now + state.timing.cadence_ms;
                actions.push(Action::OpenRound { topic, round, deadline_ms: state.timing.deadline_ms });
            }
        }
    }

    /// The next time a round opens or closes.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.topics.values().map(|state| state.open.map_or(state.next_open_at, |open| open.closes_at)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: TopicId = TopicId(1);

    fn running(workers: u32) -> Topics {
        let mut topics = Topics::default();
        topics.start(TOPIC, Timing { cadence_ms: 1_000, deadline_ms: 400, workers }, 1, 0, None);
        topics
    }

    fn tick(topics: &mut Topics, now: Millis) -> Vec<Action> {
        let mut actions = Vec::new();
        topics.tick(now, &mut actions);
        actions
    }

    #[test]
    fn rounds_open_on_cadence_and_close_at_their_deadline() {
        let mut topics = running(3);
        assert_eq!(topics.next_deadline(), Some(0));
        assert_eq!(tick(&mut topics, 0), vec![Action::OpenRound { topic: TOPIC, round: 1, deadline_ms: 400 }]);
        assert_eq!(topics.next_deadline(), Some(400));
        assert_eq!(topics.accepts(TOPIC, 1, 399), Ok(()));
        assert_eq!(topics.accepts(TOPIC, 2, 399), Err(Refusal::NotOpen));
        assert!(tick(&mut topics, 399).is_empty());
        assert_eq!(tick(&mut topics, 400), vec![Action::CloseRound { topic: TOPIC, round: 1 }]);
        // Late: refused once the deadline passed, even before the tick that closes it.
        assert_eq!(topics.accepts(TOPIC, 1, 400), Err(Refusal::NotOpen));
        assert_eq!(topics.next_deadline(), Some(1_000));
        assert_eq!(tick(&mut topics, 1_003), vec![Action::OpenRound { topic: TOPIC, round: 2, deadline_ms: 400 }]);
        assert_eq!(topics.accepts(TopicId(9), 1, 0), Err(Refusal::NoTopic));
    }

    #[test]
    fn a_round_closes_when_every_worker_answered() {
        let mut topics = running(2);
        tick(&mut topics, 0);
        let mut actions = Vec::new();
        topics.answered(TOPIC, 1, &mut actions);
        assert!(actions.is_empty());
        topics.answered(TOPIC, 1, &mut actions);
        assert_eq!(actions, vec![Action::CloseRound { topic: TOPIC, round: 1 }]);
        // Closed early, the next round still opens on cadence; the old deadline does nothing.
        assert_eq!(topics.next_deadline(), Some(1_000));
        assert!(tick(&mut topics, 400).is_empty());
    }

    #[test]
    fn a_resumed_round_keeps_its_answers_and_a_stopped_topic_closes_its_round() {
        let mut topics = Topics::default();
        let open = OpenRound { number: 7, closes_at: 50, answers: 1 };
        topics.start(TOPIC, Timing { cadence_ms: 1_000, deadline_ms: 400, workers: 2 }, 8, 600, Some(open));
        let mut actions = Vec::new();
        topics.answered(TOPIC, 7, &mut actions);
        assert_eq!(actions, vec![Action::CloseRound { topic: TOPIC, round: 7 }]);
        // Overdue when resumed: the next round opens at the first tick.
        let mut topics = Topics::default();
        topics.start(TOPIC, Timing { cadence_ms: 1_000, deadline_ms: 400, workers: 2 }, 8, 0, Some(open));
        assert_eq!(
            tick(&mut topics, 60),
            vec![
                Action::CloseRound { topic: TOPIC, round: 7 },
                Action::OpenRound { topic: TOPIC, round: 8, deadline_ms: 400 }
            ]
        );
        let mut actions = Vec::new();
        topics.stop(TOPIC, &mut actions);
        assert_eq!(actions, vec![Action::CloseRound { topic: TOPIC, round: 8 }]);
        assert_eq!(topics.next_deadline(), None);
    }
}

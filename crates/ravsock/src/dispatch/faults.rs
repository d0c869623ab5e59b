//! Faults injected into the dispatch task by tests (feature `fault-injection`, never in a
//! shipped build): the next command it handles panics, as a bug would, so a test can see the
//! supervisor start it again and the graph complete.

use super::Command;
use std::sync::atomic::{AtomicBool, Ordering};

static PANIC_NEXT: AtomicBool = AtomicBool::new(false);

/// The dispatch task panics on the next result a provider sends (once). Process-wide: each
/// test runs in its own process under nextest.
pub fn panic_on_next_result() {
    PANIC_NEXT.store(true, Ordering::SeqCst);
}

pub(super) fn maybe_panic(command: &Command) {
    if matches!(command, Command::Results { .. }) && PANIC_NEXT.swap(false, Ordering::SeqCst) {
        panic!("injected by dispatch::faults::panic_on_next_result");
    }
}

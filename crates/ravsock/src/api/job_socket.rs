//! Jobs' events pushed over `/requester` (`ravproto::requester::EVENT_JOB_SUBSCRIBE`): a
//! subscription follows one of the requester's jobs from a cursor, and each page of events the
//! long poll would answer is pushed as it is stored, until the job's `complete`. It is the
//! long poll run by the server ([`Jobs::events`], woken by the dispatch task's broadcast of
//! stored outcomes), so the two read the same durable pages in the same order: a requester
//! that reconnects subscribes again from the last page's `next` and neither misses nor repeats
//! an event.

use super::malformed;
use super::socket::SocketState;
use crate::db::Account;
use crate::error::Error;
use crate::service::jobs::Jobs;
use ravproto::jobs::JobEvent;
use ravproto::requester::{EVENT_ERROR, EVENT_JOB_EVENTS, EVENT_JOB_SUBSCRIBE, JobEvents, JobSubscribe};
use socketioxide::extract::{Extension, SocketRef, State, TryData};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Jobs one connection may follow at once: each is a task and a broadcast receiver, so a
/// requester subscribing in a loop is refused rather than served without bound.
pub(crate) const MAX_FOLLOWED_JOBS: usize = 64;

/// The jobs a connection follows now (kept in its extensions).
#[derive(Clone, Default)]
struct Following(Arc<AtomicUsize>);

/// Starts following a job for this socket, or refuses with a typed error.
pub(super) async fn subscribe(
    socket: SocketRef,
    TryData(request): TryData<JobSubscribe>,
    State(state): State<SocketState>,
    Extension(account): Extension<Account>,
) {
    let request = match request {
        Ok(request) => request,
        Err(error) => return malformed::refuse(&socket, &state.malformed, EVENT_ERROR, EVENT_JOB_SUBSCRIBE, &error),
    };
    let following = match socket.extensions.get::<Following>() {
        Some(following) => following,
        None => {
            let following = Following::default();
            socket.extensions.insert(following.clone());
            following
        }
    };
    if following.0.fetch_add(1, Ordering::SeqCst) >= MAX_FOLLOWED_JOBS {
        following.0.fetch_sub(1, Ordering::SeqCst);
        let error = Error::Conflict(format!(
            "this connection already follows {MAX_FOLLOWED_JOBS} jobs; follow more on another connection"
        ));
        let _ = socket.emit(EVENT_ERROR, &Error::body(&error));
        return;
    }
    let jobs = state.jobs.clone();
    tokio::spawn(async move {
        follow(&socket, &jobs, &account, request).await;
        following.0.fetch_sub(1, Ordering::SeqCst);
    });
}

/// Pushes the job's pages from the subscription's cursor until the job completes, the socket
/// goes, or the job cannot be read (then the refusal is sent, as for a graph's subscription).
async fn follow(socket: &SocketRef, jobs: &Jobs, account: &Account, request: JobSubscribe) {
    let mut after = request.after;
    while socket.connected() {
        let page = match jobs.events(account, request.job.0, after, None).await {
            Ok(page) => page,
            Err(error) => {
                let _ = socket.emit(EVENT_ERROR, &Error::body(&error));
                return;
            }
        };
        let complete = page.events.iter().any(|event| matches!(event, JobEvent::Complete { .. }));
        // A wait that ended with nothing new is not pushed: the next page carries the counts.
        if page.next != after || complete {
            let pushed = JobEvents { job: request.job, events: page.events, next: page.next };
            if let Err(error) = socket.emit(EVENT_JOB_EVENTS, &pushed) {
                tracing::debug!(job = %request.job, cause = %error, "a job's events could not be pushed");
                return;
            }
        }
        after = page.next;
        if complete {
            return;
        }
    }
}

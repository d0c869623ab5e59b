//! The HTTP routes of ravsock's API, in one place for the server and its clients.
//!
//! Each route is a pattern in axum's syntax (`/v1/graphs/{id}`), which ravsock registers, and
//! a function that builds the path of one resource from typed ids, which the clients call, so
//! neither side spells a path by hand. Query strings (`?execute=true`, `?timeout_ms=`) are added
//! by the caller.

use crate::ids::GraphId;
use crate::jobs::JobId;
use crate::topics::TopicId;

/// Declares each route's pattern constant and its path builder; the builder fills the
/// pattern's `{…}` placeholders, in order, with its arguments.
macro_rules! routes {
    ($( $(#[$doc:meta])* $pattern:ident, $path:ident($($arg:ident: $ty:ty),*) = $text:literal; )*) => {
        $(
            $(#[$doc])*
            pub const $pattern: &str = $text;

            #[doc = concat!("The path of [`", stringify!($pattern), "`].")]
            pub fn $path($($arg: $ty),*) -> String {
                fill($text, &[$(&Segment::from($arg)),*])
            }
        )*

        /// Every route's pattern and the names of its builder's arguments: ravsock registers
        /// no route but these (its tidy test checks), so a test that goes through this list
        /// reaches every route the server has.
        pub const ALL: &[(&str, &[&str])] = &[$(($text, &[$(stringify!($arg)),*])),*];
    };
}

routes! {
    /// `POST`: create a graph (a [`crate::messages::GraphMeta`]); `GET`: the caller's graphs.
    GRAPHS, graphs() = "/v1/graphs";
    /// `POST`: create, store and run a whole small graph in one request.
    RUN_GRAPH, run_graph() = "/v1/graphs/run";
    /// `GET`: a graph's progress.
    GRAPH, graph(graph: GraphId) = "/v1/graphs/{id}";
    /// `POST`: a chunk of a graph's ops (`?execute=true` on the last one starts it).
    GRAPH_OPS, graph_ops(graph: GraphId) = "/v1/graphs/{id}/ops";
    /// `POST`: start a graph.
    GRAPH_EXECUTE, graph_execute(graph: GraphId) = "/v1/graphs/{id}/execute";
    /// `POST`: cancel a graph.
    GRAPH_CANCEL, graph_cancel(graph: GraphId) = "/v1/graphs/{id}/cancel";
    /// `GET`: long poll for a graph's next change (`?timeout_ms=`).
    GRAPH_WAIT, graph_wait(graph: GraphId) = "/v1/graphs/{id}/wait";
    /// `GET`: a persisted result, inline.
    GRAPH_RESULT, graph_result(graph: GraphId, name: &str) = "/v1/graphs/{id}/results/{name}";
    /// `GET`: a persisted result placed in the caller's ravftp home.
    GRAPH_RESULT_FILE, graph_result_file(graph: GraphId, name: &str) = "/v1/graphs/{id}/results/{name}/file";
    /// `POST`: new ravftp credentials for a requester.
    FTP_CREDENTIALS, ftp_credentials() = "/v1/ftp/credentials";
    /// `GET`: graphs open to providers (`?approach=`).
    OPEN_GRAPHS, open_graphs() = "/v1/open-graphs";
    /// `GET`: a federated query's spec.
    FEDERATED, federated(graph: GraphId) = "/v1/federated/{id}";
    /// `GET`: long poll for a federated query's contributors (`?contributors_above=&timeout_ms=`).
    FEDERATED_WAIT, federated_wait(graph: GraphId) = "/v1/federated/{id}/wait";
    /// `PUT`: an encrypted query's evaluation keys.
    FEDERATED_KEYS, federated_keys(graph: GraphId) = "/v1/federated/{id}/keys";
    /// `GET`: an encrypted query's public key.
    FEDERATED_PUBLIC_KEY, federated_public_key(graph: GraphId) = "/v1/federated/{id}/public-key";
    /// `POST`: a provider's statistics.
    FEDERATED_SUBMISSIONS, federated_submissions(graph: GraphId) = "/v1/federated/{id}/submissions";
    /// `POST`: close a federated query and get its aggregate.
    FEDERATED_CLOSE, federated_close(graph: GraphId) = "/v1/federated/{id}/close";
    /// `POST`: open a topic (a [`crate::topics::TopicSpec`]); `GET`: the topics the caller may see.
    TOPICS, topics() = "/v1/topics";
    /// `GET`: a topic.
    TOPIC, topic(topic: TopicId) = "/v1/topics/{id}";
    /// `POST`: close a topic (no more rounds; an open round closes now).
    TOPIC_CLOSE, topic_close(topic: TopicId) = "/v1/topics/{id}/close";
    /// `GET`: a topic's rounds (`?from=&to=`, both inclusive).
    TOPIC_ROUNDS, topic_rounds(topic: TopicId) = "/v1/topics/{id}/rounds";
    /// `GET`: long poll until a round is closed (`?timeout_ms=`), then the round.
    TOPIC_ROUND_WAIT, topic_round_wait(topic: TopicId, round: u64) = "/v1/topics/{id}/rounds/{round}/wait";
    /// `POST` (a provider): an answer to an open round (a [`crate::topics::AnswerRequest`]).
    TOPIC_ANSWERS, topic_answers(topic: TopicId, round: u64) = "/v1/topics/{id}/rounds/{round}/answers";
    /// `POST` (the topic's requester): a closed round's ground truth (a
    /// [`crate::topics::TruthRequest`]); answers with the scored round.
    TOPIC_TRUTH, topic_truth(topic: TopicId, round: u64) = "/v1/topics/{id}/rounds/{round}/truth";
    /// `POST`: a new job (a [`crate::jobs::JobSpec`]); `GET`: the jobs the caller may see (a
    /// provider: the open ones it may compute).
    JOBS, jobs() = "/v1/jobs";
    /// `GET`: a job's state and counts.
    JOB, job(job: JobId) = "/v1/jobs/{id}";
    /// `POST`: more slices for an open job (a [`crate::jobs::AddSlices`]).
    JOB_SLICES, job_slices(job: JobId) = "/v1/jobs/{id}/slices";
    /// `POST`: close a job: it takes no more slices and completes when they are computed.
    JOB_CLOSE, job_close(job: JobId) = "/v1/jobs/{id}/close";
    /// `POST`: cancel a job: its slices out are withdrawn, nothing more is computed.
    JOB_CANCEL, job_cancel(job: JobId) = "/v1/jobs/{id}/cancel";
    /// `GET`: the outcomes of a range of slices (`?from=&to=`, `to` exclusive).
    JOB_RESULTS, job_results(job: JobId) = "/v1/jobs/{id}/results";
    /// `GET`: place a slice's stored result ([`crate::jobs::Outcome::Stored`]) in the
    /// requester's ravftp home (as [`crate::files::job_result`]; again on each call); answers
    /// the [`crate::jobs::SliceFile`] to download.
    JOB_RESULT_FILE, job_result_file(job: JobId, slice: u64) = "/v1/jobs/{id}/results/{slice}/file";
    /// `GET`: long poll for the events of slices finished after the first `?after=`
    /// (`&timeout_ms=`), a [`crate::jobs::EventPage`].
    JOB_EVENTS, job_events(job: JobId) = "/v1/jobs/{id}/events";
    /// `GET`: the caller's balances (a [`crate::ledger::Balance`]).
    ACCOUNT, account() = "/v1/account";
    /// `GET`: the caller's movements, oldest first (`?after=&limit=`; a
    /// [`crate::ledger::EntryPage`]).
    ACCOUNT_ENTRIES, account_entries() = "/v1/account/entries";
    /// `POST` (admin): issue units to an account (a [`crate::ledger::CreditRequest`]); answers
    /// the entry.
    ADMIN_CREDIT, admin_credit() = "/v1/admin/credit";
    /// `GET` (admin): every account's token, without secrets; `POST` (admin): a new account
    /// and its token (a [`crate::accounts::CreateTokenRequest`]).
    ADMIN_TOKENS, admin_tokens() = "/v1/admin/tokens";
    /// `POST` (admin): revoke an account's token; its open sockets are closed.
    ADMIN_TOKEN_REVOKE, admin_token_revoke(name: &str) = "/v1/admin/tokens/{name}/revoke";
    /// `GET`, no token: 200 while the process serves (liveness).
    HEALTHZ, healthz() = "/healthz";
    /// `GET`, no token: a [`crate::messages::Readiness`], 200 when the server can take work
    /// (its database and data directory accept writes, its scheduler runs), 503 otherwise.
    READYZ, readyz() = "/readyz";
    /// `GET`, an admin token: the server's metrics in the Prometheus (OpenMetrics) text format.
    METRICS, metrics() = "/metrics";
    /// `GET`: the dashboard's page (with a session; otherwise a redirect to the login page).
    DASH, dash() = "/dash";
    /// `GET`, no session: the login page; `POST` (a form with `token`): a session cookie.
    DASH_LOGIN, dash_login() = "/dash/login";
    /// `POST`: end the session.
    DASH_LOGOUT, dash_logout() = "/dash/logout";
    /// `GET`: the dashboard's script and style sheet (with a session).
    DASH_ASSET, dash_asset(name: &str) = "/dash/assets/{name}";
    /// `GET`: counts and the queue (a [`crate::dash::Overview`]).
    DASH_OVERVIEW, dash_overview() = "/dash/api/overview";
    /// `GET` (admin): provider connections (a list of [`crate::dash::ProviderRow`]).
    DASH_PROVIDERS, dash_providers() = "/dash/api/providers";
    /// `GET`: graphs, newest first (`?q=&page=&per_page=`; a [`crate::dash::GraphPage`]).
    DASH_GRAPHS, dash_graphs() = "/dash/api/graphs";
    /// `GET`: a graph and its ops (a [`crate::dash::GraphView`]).
    DASH_GRAPH, dash_graph(graph: GraphId) = "/dash/api/graphs/{id}";
    /// `GET`: one op of a graph (a [`crate::dash::OpView`]).
    DASH_OP, dash_op(graph: GraphId, op: u64) = "/dash/api/graphs/{id}/ops/{op}";
}

/// One argument of a path builder, as it appears in the path.
struct Segment(String);

impl From<GraphId> for Segment {
    fn from(graph: GraphId) -> Segment {
        Segment(graph.0.to_string())
    }
}

impl From<TopicId> for Segment {
    fn from(topic: TopicId) -> Segment {
        Segment(topic.0.to_string())
    }
}

impl From<JobId> for Segment {
    fn from(job: JobId) -> Segment {
        Segment(job.0.to_string())
    }
}

impl From<u64> for Segment {
    fn from(number: u64) -> Segment {
        Segment(number.to_string())
    }
}

impl From<&str> for Segment {
    fn from(text: &str) -> Segment {
        Segment(text.to_string())
    }
}

/// `pattern` with its placeholders replaced by `segments`, in order.
fn fill(pattern: &str, segments: &[&Segment]) -> String {
    let mut path = String::with_capacity(pattern.len() + 16);
    let mut segments = segments.iter();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |close| open + close + 1);
        path.push_str(segments.next().map_or("", |segment| segment.0.as_str()));
        rest = &rest[close..];
    }
    path.push_str(rest);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builder_fills_each_placeholder_of_its_pattern() {
        for (pattern, args) in ALL {
            assert_eq!(pattern.matches('{').count(), args.len(), "{pattern}");
            // The API is versioned; the health probes and metrics, for load balancers and
            // Prometheus, and the dashboard's pages and data, for browsers, are not.
            assert!(
                pattern.starts_with("/v1/")
                    || pattern.starts_with("/dash")
                    || [HEALTHZ, READYZ, METRICS].contains(pattern),
                "{pattern}"
            );
        }
        assert_eq!(graph(GraphId(7)), "/v1/graphs/7");
        assert_eq!(graph_result_file(GraphId(7), "c"), "/v1/graphs/7/results/c/file");
        assert_eq!(job_result_file(JobId(7), 3), "/v1/jobs/7/results/3/file");
        assert_eq!(federated_public_key(GraphId(3)), "/v1/federated/3/public-key");
        assert_eq!(graphs(), GRAPHS);
        assert_eq!(topic_answers(TopicId(2), 31), "/v1/topics/2/rounds/31/answers");
    }
}

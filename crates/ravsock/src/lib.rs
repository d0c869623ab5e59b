//! ravsock, the Raven scheduler server.
//!
//! Today this crate holds the scheduler core: [`scheduler::Scheduler`], one event-driven state
//! machine that partitions graphs into subgraphs, keeps the ready frontier, dispatches ready
//! subgraphs to idle eligible providers in parallel, and handles deadlines, failures, retries
//! and late results. It does no I/O (the "sans-IO" shape): the server feeds it events and
//! performs the actions it returns, so the policy is tested without sockets, databases or
//! clocks. The HTTP API, socket.io, the database and the embedded FTP server are still to come
//! (the distributed-path issue).

pub mod scheduler;

//! End-to-end tests of the distributed path: an in-process ravsock on port 0 with a SQLite file
//! in a temp dir, providers from `ravpy` in-process, and requesters using `ravop::Client`.
//! Every result must equal the `LocalExecutor`'s.

mod classic;
mod dash;
mod distributed;
mod federated;
mod hostile;
mod jobs;
mod liars;
mod metrics;
#[cfg(feature = "onnx")]
mod onnx;
mod stack;
mod stakes;
mod storage;
#[cfg(feature = "fault-injection")]
mod supervised;
mod tls;
mod tokens;
mod training;
mod verified;

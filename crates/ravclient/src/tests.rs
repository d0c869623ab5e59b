//! The retry pauses under paused time, and refusals read back from socket.io payloads.

use crate::retry::{RETRY_FIRST, RETRY_MAX, Retry};
use ravproto::messages::{ErrorBody, ErrorCode};
use rust_socketio::Payload;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn retries_pause_longer_each_time_and_stop_when_the_window_has_passed() {
    let window = Duration::from_secs(5);
    let mut retry = Retry::new(window);
    let start = tokio::time::Instant::now();
    let mut pauses = Vec::new();
    let mut last = start;
    while retry.pause("connection refused").await {
        pauses.push(last.elapsed());
        last = tokio::time::Instant::now();
    }
    // tokio's timer fires on whole milliseconds, so the last pause may end up to 1 ms late.
    let tried = start.elapsed();
    assert!(
        tried >= window && tried <= window + Duration::from_millis(1),
        "tries for the window, no longer: {tried:?} {pauses:?}"
    );
    // The timer's whole milliseconds again: a pause may end up to 1 ms after its 25% bound.
    let ms = Duration::from_millis(1);
    assert!(pauses[0] >= RETRY_FIRST.mul_f64(0.75) && pauses[0] <= RETRY_FIRST.mul_f64(1.25) + ms, "{pauses:?}");
    // Doubling with at most 25% either way: each pause is longer than the one before until
    // the longest pause is reached.
    let growing = pauses.iter().take_while(|p| **p < RETRY_MAX.mul_f64(0.75)).count();
    assert!(pauses[..growing].windows(2).all(|w| w[1] > w[0]), "{pauses:?}");
    assert!(pauses.iter().all(|p| *p <= RETRY_MAX.mul_f64(1.25) + ms), "{pauses:?}");
    assert!(retry.describe("refused".into()).starts_with("refused (no answer for 5.0 s"), "the window is named");
    assert!(!Retry::new(Duration::ZERO).pause("refused").await, "a zero window never retries");
}

#[test]
fn a_refused_connection_is_read_by_its_code() {
    let refusal = ErrorBody { code: ErrorCode::VersionMismatch, message: "protocol version mismatch".into(), op: None };
    // As rust_socketio hands socketioxide's CONNECT_ERROR packet to the `error` callback.
    let data = serde_json::json!({ "message": refusal.to_connect_error() });
    let payload = Payload::from(format!("Received an ConnectError frame: {data}"));
    assert_eq!(crate::socket::refusal(&payload), Some(refusal));
    // A dropped connection is no refusal: the client reconnects.
    assert_eq!(crate::socket::refusal(&Payload::from("Connection reset by peer".to_string())), None);
}

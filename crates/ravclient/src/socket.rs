//! socket.io payloads as the Rust client (rust_socketio) delivers them to its callbacks.
//!
//! Events arrive as a list of JSON arguments; the refusal of a connection arrives in the
//! client's `error` callback as text holding the server's CONNECT_ERROR data, which ravsock
//! fills with a typed [`ErrorBody`] (see [`ErrorBody::from_connect_error`]).

use ravproto::messages::ErrorBody;
use rust_socketio::Payload;

/// The first argument of an event, as `T`; `None` for a binary payload or another shape.
pub fn first_json<T: serde::de::DeserializeOwned>(payload: Payload) -> Option<T> {
    match payload {
        Payload::Text(values) => values.into_iter().next().and_then(|v| serde_json::from_value(v).ok()),
        _ => None,
    }
}

/// A payload as text, for errors and logs (a binary payload only by its length).
pub fn describe(payload: &Payload) -> String {
    match payload {
        Payload::Text(values) => values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "),
        Payload::Binary(bytes) => format!("<{} bytes>", bytes.len()),
        #[allow(deprecated)]
        Payload::String(text) => text.clone(),
    }
}

/// The server's refusal in the payload of the client's `error` callback, if it is one (other
/// errors are dropped connections, after which the client reconnects).
pub fn refusal(payload: &Payload) -> Option<ErrorBody> {
    match payload {
        // Each argument on its own: a string argument is the client's message with the data.
        Payload::Text(values) => values.iter().find_map(|value| match value {
            serde_json::Value::String(text) => ErrorBody::from_connect_error(text),
            other => ErrorBody::from_connect_error(&other.to_string()),
        }),
        other => ErrorBody::from_connect_error(&describe(other)),
    }
}

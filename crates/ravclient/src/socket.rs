//! socket.io payloads as the Rust client (rust_socketio) delivers them to its callbacks.
//!
//! Events arrive as a list of JSON arguments; the refusal of a connection arrives in the
//! client's `error` callback as text holding the server's CONNECT_ERROR data, which ravsock
//! fills with a typed [`ErrorBody`] (see [`ErrorBody::from_connect_error`]).

use crate::{Error, Result, Trust};
use ravproto::messages::ErrorBody;
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

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

/// A socket.io client builder for `url` that trusts what `trust` does; refused as
/// [`Trust::check`] refuses.
pub fn builder(url: &str, trust: &Trust) -> Result<ClientBuilder> {
    trust.check(url)?;
    let builder = ClientBuilder::new(url.to_string());
    Ok(match trust.socket_tls()? {
        Some(tls) => builder.tls_config(tls),
        None => builder,
    })
}

/// A builder for a long-lived connection to `namespace`: `auth` is sent at each connect, the
/// connection is opened again (after 250 ms, doubling to 5 s) whenever it drops, and it
/// handshakes on websocket directly: with the polling handshake, messages exchanged while the
/// client upgraded to websocket were seen to get lost.
pub fn reconnecting(url: &str, trust: &Trust, namespace: &str, auth: serde_json::Value) -> Result<ClientBuilder> {
    Ok(builder(url, trust)?
        .namespace(namespace)
        .auth(auth)
        .reconnect(true)
        .reconnect_on_disconnect(true)
        .reconnect_delay(250, 5_000)
        .transport_type(rust_socketio::TransportType::Websocket))
}

/// The future a socket.io callback returns.
pub type Callback = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A socket.io callback that turns each payload into a message with `make` and sends it on
/// `tx`: callbacks run on the client's task, so the work is done where the receiver is. A
/// payload `make` does not read (`None`), or a message whose receiver is gone, is dropped.
pub fn forward<M: Send + 'static>(
    tx: &mpsc::UnboundedSender<M>,
    make: fn(Payload) -> Option<M>,
) -> impl FnMut(Payload, Client) -> Callback + Send + Sync + 'static {
    let tx = tx.clone();
    move |payload, _client| {
        let tx = tx.clone();
        Box::pin(async move {
            if let Some(message) = make(payload) {
                let _ = tx.send(message);
            }
        })
    }
}

/// Why the socket.io client could not connect to `server`. A server certificate the client
/// does not trust is an [`Error::Trust`] that says what to do: the socket.io client's
/// native-tls reports it only as OpenSSL's text, so that text is what is recognised here.
pub fn connect_error(server: &str, error: &rust_socketio::Error) -> Error {
    let text = crate::error::with_causes(error);
    if text.contains("certificate verify failed") {
        crate::error::untrusted(server, &text)
    } else {
        Error::Transport(format!("cannot open the socket.io connection: {text}"))
    }
}

//! The client side of ravsock's API, shared by the requester SDK (`ravop`) and the provider
//! (`ravpy`), so that both ride out a restart of the server the same way and read its
//! refusals the same way.
//!
//! - [`Http`]: requests to ravsock's HTTP API with the caller's token, sent again through a
//!   crash or restart of the server for up to a window ([`RECONNECT_FOR`] by default), and
//!   answered with the JSON body or the server's typed refusal ([`Error::Server`]).
//! - [`Retry`]: the pauses between tries (doubling, jittered), for the HTTP requests here and
//!   for the callers' own transfers (ravftp).
//! - [`Trust`]: the CAs a client trusts (`--ca-cert`) and its refusal to send a token in
//!   clear text to another machine (`--insecure` overrides), for HTTP, socket.io and FTPS.
//! - [`socket`]: decoding socket.io payloads, and the typed refusal of a socket.io connection.
//!
//! The server is never a dependency: what both sides share is in `ravproto`.

mod error;
mod http;
mod retry;
pub mod socket;
mod trust;

pub use error::{Error, Result};
pub use http::{Http, Repeat};
pub use retry::{RECONNECT_FOR, RETRY_FIRST, RETRY_MAX, Retry};
pub use trust::Trust;

#[cfg(test)]
mod tests;

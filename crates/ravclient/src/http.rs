//! Requests to ravsock's HTTP API that ride out a restart of the server.
//!
//! Graphs live on the server, durably: when ravsock goes away (it crashed, or is being
//! restarted) a request that did not get through is sent again, with growing pauses, until the
//! server is back or the window has passed. A request whose connection could not be opened
//! never arrived, so any request is sent again; one cut off after it was sent is sent again
//! only if repeating it changes nothing ([`Repeat::Safe`]: reads, the long-poll waits, new
//! ravftp credentials, keys stored again).

use crate::error::{Error, Result, untrusted, with_causes};
use crate::retry::{RECONNECT_FOR, Retry};
use crate::trust::{Trust, certificate_problem};
use ravproto::messages::ErrorBody;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Whether repeating a request changes nothing on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// A read, or a request whose effect is the same however often it is made.
    Safe,
    /// It creates or changes something: sent again only if it never arrived.
    Unsafe,
}

/// A connection to ravsock's HTTP API with one account's token.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    trust: Trust,
    /// The TLS configuration of ravftp's FTPS, for an `https://` server.
    ftps: Option<Arc<rustls::ClientConfig>>,
    base: String,
    token: String,
    reconnect_for: Duration,
}

impl Http {
    /// Requests to `url` (e.g. `https://ravsock.example:9999`) with `token`, tried again for
    /// [`RECONNECT_FOR`] while the server cannot be reached. Refused at once when `trust` will
    /// not talk to `url` (plain HTTP to another machine: [`Trust::check`]).
    pub fn new(url: &str, token: &str, trust: &Trust) -> Result<Http> {
        trust.check(url)?;
        let tls = trust.rustls()?;
        let secure = url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        Ok(Http {
            client: trust.http_client(&tls)?,
            trust: trust.clone(),
            ftps: secure.then_some(tls),
            base: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            reconnect_for: RECONNECT_FOR,
        })
    }

    /// Whom this connection trusts (for the socket.io connection beside it).
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The TLS configuration for the server's ravftp: FTPS exactly when the server is reached
    /// over `https://`.
    pub fn ftps(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.ftps.clone()
    }

    /// How long requests keep trying while the server cannot be reached (zero fails at the
    /// first refused connection).
    pub fn reconnect_for(self, window: Duration) -> Http {
        Http { reconnect_for: window, ..self }
    }

    /// The window of [`Http::reconnect_for`].
    pub fn window(&self) -> Duration {
        self.reconnect_for
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The account's token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Sends the request `build` makes (from the client and the full URL of `path`), again
    /// while the server cannot be reached, and returns the body of its successful answer or
    /// the server's refusal.
    pub async fn send_raw(
        &self,
        repeat: Repeat,
        path: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes> {
        let url = format!("{}{path}", self.base);
        let mut retry = Retry::new(self.reconnect_for);
        loop {
            // Whether the request may have reached the server, and why it got no answer.
            let (arrived, error) = match build(&self.client, &url).bearer_auth(&self.token).send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => return Ok(bytes),
                        Ok(bytes) => return Err(refusal(status, &bytes)),
                        Err(error) => (true, error),
                    }
                }
                Err(error) => (!error.is_connect(), error),
            };
            // A certificate the client does not trust will not become trusted by waiting.
            if let Some(why) = certificate_problem(&error) {
                return Err(untrusted(&self.base, &why));
            }
            let transient = error.is_connect() || error.is_request() || error.is_body();
            if !transient || (arrived && repeat == Repeat::Unsafe) || !retry.pause(&with_causes(&error)).await {
                return Err(Error::Transport(retry.describe(with_causes(&error))));
            }
        }
    }

    /// [`Http::send_raw`], with the answer read as JSON.
    pub async fn send<T: DeserializeOwned>(
        &self,
        repeat: Repeat,
        path: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T> {
        let bytes = self.send_raw(repeat, path, build).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Transport(format!("unexpected reply: {e}")))
    }

    /// `GET path`, read as JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(Repeat::Safe, path, |client, url| client.get(url)).await
    }

    /// Every movement into or out of the caller's ledger account, oldest first, read page by
    /// page (`GET /v1/account/entries`).
    pub async fn ledger_entries(&self) -> Result<Vec<ravproto::ledger::Entry>> {
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let path = format!("{}?after={after}", ravproto::routes::ACCOUNT_ENTRIES);
            let page: ravproto::ledger::EntryPage = self.get(&path).await?;
            entries.extend(page.entries);
            match page.next {
                Some(next) => after = next,
                None => return Ok(entries),
            }
        }
    }

    /// `GET path`, the body as it came (a key).
    pub async fn get_bytes(&self, path: &str) -> Result<bytes::Bytes> {
        self.send_raw(Repeat::Safe, path, |client, url| client.get(url)).await
    }

    /// `POST path` with a JSON body that creates or changes something ([`Repeat::Unsafe`]).
    pub async fn post<T: DeserializeOwned, B: serde::Serialize>(&self, path: &str, body: &B) -> Result<T> {
        self.post_as(Repeat::Unsafe, path, body).await
    }

    /// `POST path` with a JSON body, repeated as `repeat` allows.
    pub async fn post_as<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        repeat: Repeat,
        path: &str,
        body: &B,
    ) -> Result<T> {
        // Encoded once; each try sends the same bytes.
        let body = bytes::Bytes::from(serde_json::to_vec(body).map_err(|e| Error::Transport(e.to_string()))?);
        self.send(repeat, path, |client, url| {
            client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone())
        })
        .await
    }

    /// `PUT path` of raw bytes (keys), answered with JSON; storing the same bytes again
    /// changes nothing.
    pub async fn put_bytes<T: DeserializeOwned>(&self, path: &str, body: Vec<u8>) -> Result<T> {
        let body = bytes::Bytes::from(body);
        self.send(Repeat::Safe, path, |client, url| {
            client.put(url).header(reqwest::header::CONTENT_TYPE, "application/octet-stream").body(body.clone())
        })
        .await
    }
}

/// The server's refusal in an answer with `status`: its [`ErrorBody`], or the raw body of
/// something that is not ravsock.
fn refusal(status: reqwest::StatusCode, bytes: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => Error::refused(status.as_u16(), body),
        Err(_) => Error::Transport(format!("HTTP {status}: {}", String::from_utf8_lossy(bytes))),
    }
}

//! Extractors of the HTTP front door: axum's `Json` and `Path`, whose refusals become JSON
//! [`Error`]s instead of plain text, the authenticated [`Caller`], and [`GraphCall`] (both, with
//! the graph id of the path). Big bodies are read and parsed within a [`BodyBudget`].

use super::AppState;
use crate::db::Account;
use crate::error::{Error, Result};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;

/// `axum::Json`, but a malformed body becomes a JSON [`Error`] instead of plain text, and a
/// body over its route's [`BodyLimit`] a 413 that names the limit.
pub struct Json<T>(pub T);

/// A route's largest request body, in bytes: set with [`body_limit`], read back for the
/// refusal's message.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// The layer that limits a route's request bodies to `bytes` (axum's `DefaultBodyLimit`),
/// with the number kept for the refusal.
pub fn body_limit(bytes: usize) -> (axum::Extension<BodyLimit>, axum::extract::DefaultBodyLimit) {
    (axum::Extension(BodyLimit(bytes)), axum::extract::DefaultBodyLimit::max(bytes))
}

/// Bodies shorter than this are read without waiting for the [`BodyBudget`].
pub const SMALL_BODY_BYTES: u64 = 1 << 20;

/// How many bytes of big request bodies (over [`SMALL_BODY_BYTES`]) are read and parsed at
/// once, across all requests: each body limit bounds one request, this bounds them together
/// (a parsed op chunk takes a few times its JSON). Others wait their turn. A body is counted
/// at its declared length, or at its route's limit when it declares none (chunked); one over
/// the whole budget takes all of it. Taken in the body extractors, after the caller's token
/// is checked, so only a caller with a token can make others wait.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    total: u32,
}

/// The budget's unit: a permit per MiB.
const BUDGET_UNIT: u64 = 1 << 20;

/// A body read within the budget must arrive within this, plus [`BODY_SECS_PER_MIB`] per MiB
/// it is charged: a caller sending slowly would otherwise hold its share of the budget (all
/// of it, for a body as big as the budget) and make every other big upload wait.
pub(super) const BODY_BASE_SECS: u64 = 30;
/// Seconds allowed per MiB of a budgeted body: a sender slower than 1 MiB/s is cut off.
pub(super) const BODY_SECS_PER_MIB: u64 = 1;

impl BodyBudget {
    /// A budget of `bytes` (whole MiB, at least one).
    pub fn new(bytes: u64) -> BodyBudget {
        let total =
            u32::try_from(bytes / BUDGET_UNIT).unwrap_or(u32::MAX).clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u32);
        BodyBudget { permits: std::sync::Arc::new(tokio::sync::Semaphore::new(total as usize)), total }
    }

    /// What reading the body of `request` takes from the budget: nothing for a small one.
    fn charge(request: &Request) -> Option<(std::sync::Arc<tokio::sync::Semaphore>, u32)> {
        let budget = request.extensions().get::<BodyBudget>()?;
        let limit = request.extensions().get::<BodyLimit>().map_or(u64::MAX, |l| l.0 as u64);
        let declared = axum::body::HttpBody::size_hint(request.body()).exact().unwrap_or(limit).min(limit);
        if declared < SMALL_BODY_BYTES {
            return None;
        }
        let units = u32::try_from(declared.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX).min(budget.total);
        Some((budget.permits.clone(), units))
    }

    /// Waits until a body `charge`d as [`BodyBudget::charge`] says fits in the budget, then runs
    /// `read` (which reads and parses it) holding the permit, within the body's deadline. A
    /// small body is read at once, without a deadline of its own (it holds no budget).
    async fn read_within<T>(
        charge: Option<(std::sync::Arc<tokio::sync::Semaphore>, u32)>,
        read: impl Future<Output = T>,
    ) -> Result<T> {
        let Some((permits, units)) = charge else { return Ok(read.await) };
        let _permit = permits.acquire_many_owned(units).await.ok();
        // The deadline starts once admitted: waiting for others' bodies is not this one's.
        let secs = BODY_BASE_SECS + u64::from(units) * BODY_SECS_PER_MIB;
        tokio::time::timeout(std::time::Duration::from_secs(secs), read).await.map_err(|_| {
            Error::Timeout(format!(
                "the request body did not arrive within {secs} s; bodies over {SMALL_BODY_BYTES} bytes must come at \
                 {BODY_SECS_PER_MIB} s per MiB or faster"
            ))
        })
    }
}

/// axum's refusal of a body as an [`Error`]: over the route's [`BodyLimit`] (a 413 naming
/// it), or malformed (a 400 with axum's reason).
fn refusal(status: axum::http::StatusCode, text: String, limit: Option<BodyLimit>) -> Error {
    match (status, limit) {
        (axum::http::StatusCode::PAYLOAD_TOO_LARGE, Some(BodyLimit(bytes))) => {
            Error::TooLarge(format!("the request body is over this route's limit of {bytes} bytes"))
        }
        (axum::http::StatusCode::PAYLOAD_TOO_LARGE, None) => {
            Error::TooLarge("the request body is over this route's limit".into())
        }
        _ => Error::BadRequest(text),
    }
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Json<T>> {
        let limit = request.extensions().get::<BodyLimit>().copied();
        let charge = BodyBudget::charge(&request);
        match BodyBudget::read_within(charge, axum::Json::<T>::from_request(request, state)).await? {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(refusal(rejection.status(), rejection.body_text(), limit)),
        }
    }
}

/// A raw body (`axum::body::Bytes`), refused like [`Json`]'s when over its route's limit.
pub struct Bytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Bytes {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Bytes> {
        let limit = request.extensions().get::<BodyLimit>().copied();
        let charge = BodyBudget::charge(&request);
        match BodyBudget::read_within(charge, axum::body::Bytes::from_request(request, state)).await? {
            Ok(bytes) => Ok(Bytes(bytes)),
            Err(rejection) => Err(refusal(rejection.status(), rejection.body_text(), limit)),
        }
    }
}

/// A raw body not read yet: the handler checks the caller and the resource first, then
/// reads it ([`LaterBody::read`]), so a refused request costs no buffering of its body.
pub(super) struct LaterBody(Request);

impl<S: Send + Sync> FromRequest<S> for LaterBody {
    type Rejection = Error;

    async fn from_request(request: Request, _state: &S) -> Result<LaterBody> {
        Ok(LaterBody(request))
    }
}

impl LaterBody {
    /// The whole body, refused like [`Bytes`]'s when over the route's limit.
    pub(super) async fn read(self) -> Result<axum::body::Bytes> {
        Ok(Bytes::from_request(self.0, &()).await?.0)
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path`, but a malformed id becomes a JSON [`Error`].
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(Error::BadRequest(rejection.body_text())),
        }
    }
}

/// The authenticated caller: the account of the bearer token.
pub struct Caller(pub Account);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller> {
        let missing = || Error::Unauthorized("missing token: send `Authorization: Bearer <token>`".into());
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(missing)?;
        let token = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).ok_or_else(missing)?;
        let account = state.db.authenticate(token.trim()).await?;
        Ok(Caller(account))
    }
}

/// An authenticated caller with an admin token: the others are refused (403) before any body
/// is read, so what a requester or a provider sends to an admin route is never parsed.
pub(super) struct Admin(pub(super) Account);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin> {
        let Caller(caller) = Caller::from_request_parts(parts, state).await?;
        crate::service::access::admin(&caller)?;
        Ok(Admin(caller))
    }
}

/// What most handlers take: the state, the caller and the graph id of a `…/{id}/…` route
/// (the caller is checked first, so a bad token answers 401 whatever the path).
pub struct GraphCall {
    /// The handlers' state.
    pub state: AppState,
    /// The authenticated caller.
    pub caller: Account,
    /// The graph id in the path.
    pub id: u64,
}

impl FromRequestParts<AppState> for GraphCall {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<GraphCall> {
        let Caller(caller) = Caller::from_request_parts(parts, state).await?;
        let Path(id) = Path::<u64>::from_request_parts(parts, state).await?;
        Ok(GraphCall { state: state.clone(), caller, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::FromRequest;

    /// A request whose body sends `first` bytes and then nothing more, never ending, charged
    /// against `budget` at its route's limit of 8 MiB (its length is not declared).
    fn stalled(budget: &BodyBudget, first: usize) -> Request {
        let chunk = Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; first]));
        let stream = futures_util::stream::iter([chunk]).chain(futures_util::stream::pending());
        let mut request = Request::new(axum::body::Body::from_stream(stream));
        request.headers_mut().insert(axum::http::header::CONTENT_TYPE, "application/json".parse().unwrap());
        request.extensions_mut().insert(budget.clone());
        request.extensions_mut().insert(BodyLimit(8 << 20));
        request
    }

    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_big_body_sent_too_slowly_is_cut_off_and_gives_its_budget_back() {
        let budget = BodyBudget::new(8 << 20);
        let started = tokio::time::Instant::now();
        let refused = Json::<serde_json::Value>::from_request(stalled(&budget, 1000), &()).await.err();
        let Some(Error::Timeout(message)) = refused else { panic!("expected a timeout, got {refused:?}") };
        // 30 s and 1 s per MiB of the 8 MiB it is charged (time is paused: this takes no time).
        assert_eq!(started.elapsed().as_secs(), BODY_BASE_SECS + 8 * BODY_SECS_PER_MIB);
        assert!(message.contains("did not arrive within 38 s"), "{message}");
        assert_eq!(Error::Timeout(message).code(), ravproto::messages::ErrorCode::Timeout);
        assert_eq!(budget.permits.available_permits(), 8, "the permits came back");
        // The raw-body extractor too.
        let refused = Bytes::from_request(stalled(&budget, 10), &()).await.err();
        assert!(matches!(refused, Some(Error::Timeout(_))), "{:?}", refused.map(|e| e.to_string()));
        assert_eq!(budget.permits.available_permits(), 8);
    }
}

//! The `/topics` socket.io namespace: topic workers connect with a provider's token, subscribe
//! to topics, and are pushed each round as it opens (`ravproto::topics`). The scheduler task
//! emits to each topic's room; a subscription made while a round is open hears of that round
//! at once, so a worker that connects late or again (after a restart of either side) still
//! answers it.

use super::malformed;
use super::socket::{Refusal, SocketState, check_peer, malformed_auth};
use crate::auth::Role;
use crate::dispatch::topic_room;
use ravproto::messages::ErrorCode;
use ravproto::provider::ProviderAuth;
use ravproto::requester::EVENT_ERROR;
use ravproto::topics::{
    EVENT_ROUND_OPEN, EVENT_SUBSCRIBE, EVENT_TOPIC_ENDED, RoundOpen, TopicEndCode, TopicEnded, TopicSubscribe,
};
use socketioxide::extract::{Event as EventName, SocketRef, State, TryData};

/// Connect middleware: the protocol version must match and the token must be a provider's
/// (or an admin's). Registers the handlers before CONNECT (see `socket::register`).
pub(super) async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<ProviderAuth>,
    State(state): State<SocketState>,
) -> Result<(), Refusal> {
    let auth = auth.map_err(malformed_auth)?;
    let account = check_peer(&state, &auth.token, auth.protocol_version, "worker").await?;
    if account.role == Role::Requester {
        return Err(Refusal::new(ErrorCode::Forbidden, "requester tokens cannot answer topics"));
    }
    // The token watcher closes the sockets of a revoked or expired account by it.
    socket.extensions.insert(account);
    socket.on(EVENT_SUBSCRIBE, subscribe);
    socket.on_fallback(|socket: SocketRef, EventName(event): EventName, State(state): State<SocketState>| async move {
        malformed::refuse(&socket, &state.malformed, EVENT_ERROR, &event, &"no such event on the topics namespace");
    });
    Ok(())
}

/// Nothing to do once connected: the middleware registered the handlers.
pub(super) async fn connected() {}

/// Joins the topic's room, then tells of its open round if one is: a round that opens after
/// the join reaches the socket through the room, so none falls between the two.
async fn subscribe(socket: SocketRef, TryData(request): TryData<TopicSubscribe>, State(state): State<SocketState>) {
    let request = match request {
        Ok(request) => request,
        Err(error) => return malformed::refuse(&socket, &state.malformed, EVENT_ERROR, EVENT_SUBSCRIBE, &error),
    };
    let topic = request.topic;
    let stored = match state.db.topic(topic).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(%topic, cause = %error, "cannot read a topic for a subscription");
            let _ = socket.emit(EVENT_ERROR, &crate::error::Error::body(&error));
            return;
        }
    };
    let ended = match stored {
        Some(stored) if stored.open => None,
        Some(_) => Some((TopicEndCode::Closed, format!("{topic} is closed"))),
        None => Some((TopicEndCode::NotFound, format!("no topic {topic}"))),
    };
    if let Some((code, reason)) = ended {
        let _ = socket.emit(EVENT_TOPIC_ENDED, &TopicEnded { topic, code, reason });
        return;
    }
    socket.join(topic_room(topic));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    match state.db.last_round(topic).await {
        Ok(Some(round)) if !round.closed && u128::from(round.closes_at_ms) > now_ms => {
            let closes_in_ms = (u128::from(round.closes_at_ms) - now_ms) as u64;
            let _ = socket.emit(EVENT_ROUND_OPEN, &RoundOpen { topic, round: round.number, closes_in_ms });
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%topic, cause = %error, "cannot read a topic's open round for a subscription"),
    }
}

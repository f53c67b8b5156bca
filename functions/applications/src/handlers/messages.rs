//! `GET|POST /v1/applications/{id}/messages` (SPEC §4.3): the thread with the agency.
//! Agency messages arrive through the webhook (`application.message`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use shared::http::{ApiError, ApiJson, ApiPath, ApiQuery, Authenticated};

use super::common::{self, Citizen, CitizenWrite, Paging};
use crate::AppState;
use crate::domain::{Actor, Message};
use crate::outbound::Notice;
use crate::store;

shared::problems!(ListErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"] });
shared::problems!(PostErrors {
    400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"],
    409 => ["invalid_state"], 413 => ["payload_too_large"], 415 => ["unsupported_media_type"], 429 => ["rate_limited"],
});

/// One page of the thread, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApplicationMessagePage)]
pub struct MessagePage {
    items: Vec<Message>,
    /// The cursor of the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Oldest first, like a chat.
#[utoipa::path(get, path = "/v1/applications/{id}/messages", tag = "applications", operation_id = "list_application_messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id"), Paging),
    responses((status = 200, description = "The thread with the agency, oldest first", body = MessagePage), ListErrors))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Response, ApiError> {
    let (cursor, limit) = paging.parse()?;
    let app = common::load_own(&state, auth.user_id(), &id).await?;
    let (messages, next) = store::messages(state.kv.as_ref(), &app.application_id, cursor, limit).await?;
    Ok(axum::Json(MessagePage { items: messages, next_cursor: next }).into_response())
}

/// `{"text"}`: a message to the agency.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewApplicationMessage)]
pub struct PostRequest {
    /// 1–4,000 characters; line breaks and tabs allowed, other control characters not.
    #[schema(min_length = 1, max_length = 4000)]
    text: String,
}

/// A message from the citizen to the agency; only once the application is submitted (a draft
/// has no thread: 409 `invalid_state`).
#[utoipa::path(post, path = "/v1/applications/{id}/messages", tag = "applications", operation_id = "post_application_message", security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body = PostRequest,
    responses((status = 201, description = "The message as stored", body = Message), PostErrors))]
pub async fn post(
    State(state): State<AppState>,
    Citizen(auth): CitizenWrite,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PostRequest>,
) -> Result<Response, ApiError> {
    let text = message_text("/text", &req.text)?;
    let app = common::load_own(&state, auth.user_id(), &id).await?;
    let message = Message { message_id: state.ticker.id(), author: Actor::citizen(), text, at: state.ticker.now() };
    let event = common::event(&state, &app, app.message(&message, &common::service_title(&state, &app))?);
    let mut ops = vec![store::message_op(&app.application_id, &message)?];
    ops.extend(common::stage_notice(&app, &event.id, &Notice::Message(message.clone()), message.at)?);
    state.relay.commit(ops, &[event]).await?;
    Ok((StatusCode::CREATED, axum::Json(message)).into_response())
}

/// Message text: trimmed, 1..=4000 characters, no control or invisible characters except
/// line breaks and tabs.
pub fn message_text(field: &str, raw: &str) -> Result<String, ApiError> {
    common::required_text(field, raw, shared::domain::text::MESSAGE)
}

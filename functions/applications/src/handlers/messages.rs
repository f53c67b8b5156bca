//! `GET|POST /v1/applications/{id}/messages` (SPEC §4.3): the thread with the agency.
//! Agency messages arrive through the webhook (`application.message`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use shared::http::{ApiError, ApiJson, ApiPath, ApiQuery, Authenticated};

use super::common::{self, CitizenWrite, Paging};
use crate::errors;
use crate::store::{self, Actor, Message};
use crate::AppState;

/// Oldest first, like a chat.
pub async fn list(State(state): State<AppState>, auth: Authenticated, ApiPath(id): ApiPath<String>, ApiQuery(paging): ApiQuery<Paging>) -> Result<Response, ApiError> {
    let (cursor, limit) = paging.parse()?;
    let app = common::load_own(&state, auth.user_id(), &id).await?;
    let (messages, next) = store::messages(state.kv.as_ref(), &app.application_id, cursor, limit).await?;
    Ok(axum::Json(common::list_body(&messages, next)).into_response())
}

#[derive(Deserialize)]
pub struct PostRequest {
    text: String,
}

pub async fn post(State(state): State<AppState>, CitizenWrite(auth): CitizenWrite, ApiPath(id): ApiPath<String>, ApiJson(req): ApiJson<PostRequest>) -> Result<Response, ApiError> {
    let text = message_text("/text", &req.text)?;
    let app = common::load_own(&state, auth.user_id(), &id).await?;
    if !app.status.visible_to_agency() {
        return Err(errors::draft_has_no_thread());
    }
    let message = Message { message_id: ulid::Ulid::new().to_string(), author: Actor::citizen(), text, at: common::now() };
    let event = common::message_event(&app, &common::service_title(&state, &app), false, &message.text);
    common::commit(&state, vec![store::message_op(&app.application_id, &message)?], vec![event]).await?;
    Ok((StatusCode::CREATED, axum::Json(message)).into_response())
}

/// Message text: trimmed, 1..=4000 characters, no control or invisible characters except
/// line breaks and tabs.
pub fn message_text(field: &str, raw: &str) -> Result<String, ApiError> {
    common::required_text(field, raw, shared::domain::text::MESSAGE)
}

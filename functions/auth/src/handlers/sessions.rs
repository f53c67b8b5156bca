//! Refresh-token rotation with reuse detection, logout, and the citizen's session list (SPEC §3.7).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use shared::domain::Token;
use shared::http::{ApiError, ApiJson, ApiPath, ApiQuery, Authenticated};
use shared::persist;
use shared::ports::Condition;

use super::answers::answers;
use super::common::{self, ListErrors, Unauthenticated};
use crate::domain::LoginError;
use crate::errors;
use crate::secrets;
use crate::store::{self, RefreshRecord, Session};
use crate::{AppState, Tokens};

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    #[schema(value_type = String, max_length = 256)]
    refresh_token: Token,
}

#[derive(Serialize, ToSchema)]
pub struct Refreshed {
    tokens: Tokens,
}

answers!(RefreshErrors = JSON_BODY, &[(401, &["invalid_token", "token_reused", "session_expired"]), (423, &["account_locked"])], CONTENDED);

/// `POST /v1/auth/token/refresh`: rotates the refresh token; a used one revokes its session.
#[utoipa::path(post, path = "/v1/auth/token/refresh", operation_id = "token_refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "New tokens; the presented refresh token is spent", body = Refreshed), RefreshErrors))]
pub async fn refresh(State(state): State<AppState>, ApiJson(req): ApiJson<RefreshRequest>) -> Result<impl IntoResponse, ApiError> {
    if req.refresh_token.len() > 128 {
        return Err(errors::invalid_refresh_token());
    }
    let presented_pk = store::refresh_pk(&req.refresh_token);
    let tokens = persist::retry(|| async {
        let now = state.ticker.now();
        let record = persist::get::<RefreshRecord>(state.kv.as_ref(), &presented_pk, "REFRESH").await?.ok_or_else(errors::invalid_refresh_token)?;
        let user_pk = store::user_pk(&record.value.user_id);
        let session_sk = store::session_sk(&record.value.session_id);
        let session = persist::get::<Session>(state.kv.as_ref(), &user_pk, &session_sk).await?;
        if record.value.used {
            // A used token came back: it leaked, or the legitimate client and an attacker race.
            // Either way the session is no longer trustworthy.
            state.kv.delete(&user_pk, &session_sk, Condition::None).await?;
            tracing::warn!(user_id = %record.value.user_id, session_id = %record.value.session_id, "refresh token reuse; session revoked");
            return Err(errors::token_reused());
        }
        let Some(mut session) = session else { return Err(errors::session_expired()) };
        let account = store::account(state.kv.as_ref(), &record.value.user_id).await?.ok_or_else(errors::session_expired)?;
        crate::tokens::check_session(&state, &account.value, &session.value, now)?;
        if account.value.locked {
            return Err(LoginError::Locked.into());
        }

        let next_token = secrets::random_token(32);
        let next_pk = store::refresh_pk(&next_token);
        let absolute_end = Some(session.value.created_at.timestamp() + state.settings.session_absolute.as_secs() as i64);
        let used = RefreshRecord { used: true, ..record.value.clone() };
        let fresh = RefreshRecord { used: false, ..record.value.clone() };
        session.value.last_seen_at = now;
        session.value.refresh_pk = next_pk.clone();
        let ops = vec![
            persist::put_op(presented_pk.clone(), "REFRESH", &used, record.unchanged(), absolute_end)?,
            persist::put_op(next_pk, "REFRESH", &fresh, Condition::NotExists, absolute_end)?,
            persist::put_op(user_pk, session_sk, &session.value, session.unchanged(), absolute_end)?,
        ];
        let access_token = crate::tokens::access_token(&state, &account.value, &session.value.session_id, &session.value.amr, now)?;
        // Lost to a concurrent exchange of the same token: the next round sees it used.
        Ok::<_, ApiError>(common::commit(&state, ops, &[], Tokens::bearer(&state, access_token, next_token)).await?)
    })
    .await?;
    Ok(ApiJson(Refreshed { tokens }))
}

/// `POST /v1/auth/logout`: ends the current session and its refresh token.
#[utoipa::path(post, path = "/v1/auth/logout", operation_id = "logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Session ended"), Unauthenticated))]
pub async fn logout(State(state): State<AppState>, auth: Authenticated) -> Result<impl IntoResponse, ApiError> {
    let (_, session) = common::current(&state, &auth).await?;
    state.kv.delete(&store::user_pk(auth.user_id()), &store::session_sk(&session.value.session_id), Condition::None).await?;
    state.kv.delete(&session.value.refresh_pk, "REFRESH", Condition::None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    session_id: String,
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    ip: String,
    user_agent: String,
    current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionView>,
    next_cursor: Option<String>,
}

/// Accepted for the list convention (SPEC §2); the list is always one page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Ignored: there is never a next page.
    #[allow(dead_code)]
    cursor: Option<String>,
    /// Ignored: every live session is listed.
    #[allow(dead_code)]
    limit: Option<usize>,
}

/// Live sessions, newest first. A citizen has few sessions, so the list is one page.
#[utoipa::path(get, path = "/v1/me/sessions", operation_id = "list_sessions", tag = "auth", security(("bearer" = [])), params(Paging),
    responses((status = 200, description = "Live sessions, newest first", body = SessionList), ListErrors))]
pub async fn list(State(state): State<AppState>, auth: Authenticated, ApiQuery(_paging): ApiQuery<Paging>) -> Result<impl IntoResponse, ApiError> {
    let (account, _) = common::current(&state, &auth).await?;
    let now = state.ticker.now();
    let mut items: Vec<SessionView> = store::sessions(state.kv.as_ref(), auth.user_id())
        .await?
        .into_iter()
        .filter(|s| crate::tokens::check_session(&state, &account.value, &s.value, now).is_ok())
        .map(|s| SessionView {
            current: s.value.session_id == auth.session_id(),
            session_id: s.value.session_id,
            created_at: s.value.created_at,
            last_seen_at: s.value.last_seen_at,
            ip: s.value.client.ip,
            user_agent: s.value.client.user_agent,
        })
        .collect();
    items.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(ApiJson(SessionList { items, next_cursor: None }))
}

answers!(RevokeErrors = SESSION, &[(404, &["not_found"])]);

/// `DELETE /v1/me/sessions/{id}`: ends one of the citizen's sessions; any other id is 404.
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", operation_id = "revoke_session", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path, description = "`session_id` from the session list", max_length = 32, pattern = "^[A-Za-z0-9]+$")),
    responses((status = 204, description = "Session ended"), RevokeErrors))]
pub async fn revoke(State(state): State<AppState>, auth: Authenticated, ApiPath(id): ApiPath<String>) -> Result<impl IntoResponse, ApiError> {
    common::current(&state, &auth).await?;
    if id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found());
    }
    let user_pk = store::user_pk(auth.user_id());
    let Some(session) = persist::get::<Session>(state.kv.as_ref(), &user_pk, &store::session_sk(&id)).await? else {
        return Err(ApiError::not_found());
    };
    state.kv.delete(&user_pk, &store::session_sk(&id), Condition::None).await?;
    state.kv.delete(&session.value.refresh_pk, "REFRESH", Condition::None).await?;
    Ok(StatusCode::NO_CONTENT)
}

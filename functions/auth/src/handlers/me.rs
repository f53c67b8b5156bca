//! The citizen's own account: `GET /v1/me`, login history, password change (SPEC §3.7, §3.8).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use shared::domain::{NewPasswordText, PasswordText};
use shared::http::rate_limit::Limit;
use shared::http::{ApiError, ApiJson, ApiQuery, Authenticated};
use shared::persist;
use shared::ports::{KvError, Query as KvQuery};

use super::answers::answers;
use super::common::{self, ListErrors, Unauthenticated};
use crate::AppState;
use crate::domain::account;
use crate::errors;
use crate::secrets;
use crate::store::{self, Account, Level, LoginAttempt};

#[derive(Serialize, ToSchema)]
#[schema(as = Me)]
pub struct MeView {
    user_id: String,
    level: Level,
    #[schema(example = "+79991234567")]
    phone: Option<String>,
    email: Option<String>,
    phone_confirmed: bool,
    email_confirmed: bool,
    profile: Option<shared::identity::Profile>,
    mfa: MfaView,
    created_at: DateTime<Utc>,
}

/// Which second factors are on.
#[derive(Serialize, ToSchema)]
#[schema(as = MeMfa)]
struct MfaView {
    sms: bool,
    totp: bool,
}

impl From<&Account> for MeView {
    fn from(a: &Account) -> Self {
        Self {
            user_id: a.user_id.clone(),
            level: a.level,
            phone: a.phone.clone().map(String::from),
            email: a.email.clone().map(String::from),
            phone_confirmed: a.phone_confirmed,
            email_confirmed: a.email_confirmed,
            profile: a.profile.clone(),
            mfa: MfaView { sms: a.mfa.sms, totp: a.totp_enabled() },
            created_at: a.created_at,
        }
    }
}

/// `GET /v1/me`: the citizen's account.
#[utoipa::path(get, path = "/v1/me", operation_id = "get_me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The citizen's account", body = MeView), Unauthenticated))]
pub async fn me(State(state): State<AppState>, auth: Authenticated) -> Result<impl IntoResponse, ApiError> {
    let (account, _) = common::current(&state, &auth).await?;
    Ok(ApiJson(MeView::from(&account.value)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// `next_cursor` of the previous page.
    #[param(max_length = 64)]
    cursor: Option<String>,
    /// Entries per page, 1–100 (smaller and larger values are clamped); default 50.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = LoginHistoryPage)]
pub struct HistoryPage {
    items: Vec<LoginAttempt>,
    next_cursor: Option<String>,
}

/// Newest first, paged by the opaque cursor of SPEC §2.
#[utoipa::path(get, path = "/v1/me/login-history", operation_id = "login_history", tag = "auth", security(("bearer" = [])), params(Paging),
    responses((status = 200, description = "Login attempts, newest first", body = HistoryPage), ListErrors))]
pub async fn login_history(State(state): State<AppState>, auth: Authenticated, ApiQuery(paging): ApiQuery<Paging>) -> Result<impl IntoResponse, ApiError> {
    common::current(&state, &auth).await?;
    let limit = paging.limit.unwrap_or(50).clamp(1, 100);
    let cursor = match paging.cursor {
        Some(c) if c.len() <= 64 && c.starts_with("HIST#") => Some(c),
        Some(_) => return Err(ApiError::field("cursor", "invalid", "Некорректный курсор")),
        None => None,
    };
    let page = state.kv.query(KvQuery::partition(store::user_pk(auth.user_id())).prefix("HIST#").descending().limit(limit).after(cursor)).await?;
    let items = page.items.iter().map(|i| i.parse()).collect::<Result<Vec<LoginAttempt>, KvError>>()?;
    Ok(ApiJson(HistoryPage { items, next_cursor: page.last_key }))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, max_length = 128, format = Password)]
    current_password: PasswordText,
    /// Checked against the password policy (SPEC §3.2), the last five passwords included.
    #[schema(value_type = String, max_length = 1024, format = Password)]
    new_password: NewPasswordText,
}

answers!(ChangePasswordErrors = JSON_BODY, &[(400, &["weak_password"]), (403, &["invalid_credentials"])], SESSION, CONTENDED, RATE_LIMITED);

/// Changes the password and revokes every other session (SPEC §3.7).
#[utoipa::path(post, path = "/v1/me/password", operation_id = "change_password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204, description = "Password changed; other sessions revoked"), ChangePasswordErrors))]
pub async fn change_password(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let (account, _) = common::current(&state, &auth).await?;
    state.limiter.hit("password-change", auth.user_id(), Limit::per_hour(10)).await?;
    if !secrets::verify_password(req.current_password, account.value.password_hash.clone()).await {
        return Err(errors::wrong_current_password());
    }
    common::check_new_password(&req.new_password, &account::personal_data(Some(&account.value), None, None), Some(&account.value)).await?;
    let new_hash = secrets::hash_password(req.new_password).await.map_err(ApiError::internal)?;
    persist::retry(|| async {
        let (read, mut session) = common::current(&state, &auth).await?;
        let mut account = read.value.clone();
        let now = state.ticker.now();
        let changed = account::set_password(&mut account, new_hash.clone(), now);
        // The session that made the change stays valid.
        session.value.valid_from = now;
        let absolute_end = session.value.created_at.timestamp() + state.settings.session_absolute.as_secs() as i64;
        let ops = vec![
            common::account_op(&read, &account)?,
            persist::put_op(store::user_pk(auth.user_id()), store::session_sk(auth.session_id()), &session.value, session.unchanged(), Some(absolute_end))?,
        ];
        Ok::<_, ApiError>(common::commit(&state, ops, &[common::event(&state, Some(auth.user_id()), changed)], ()).await?)
    })
    .await?;
    crate::tokens::delete_sessions(&state, auth.user_id(), Some(auth.session_id())).await;
    Ok(StatusCode::NO_CONTENT)
}

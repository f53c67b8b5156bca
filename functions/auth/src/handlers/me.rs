//! The citizen's own account: `GET /v1/me`, login history, password change (SPEC §3.7, §3.8).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use shared::domain::{NewPasswordText, PasswordText};
use shared::events::{Event, EventPayload};
use shared::http::rate_limit::Limit;
use shared::http::{ApiError, ApiJson, ApiQuery, Authenticated};
use shared::ports::{KvError, Query as KvQuery};

use super::common::{self, MAX_RETRIES};
use crate::errors;
use crate::secrets;
use crate::store::{self, Account, LoginAttempt};
use crate::AppState;

#[derive(Serialize)]
pub struct MeView {
    user_id: String,
    level: &'static str,
    phone: Option<String>,
    email: Option<String>,
    phone_confirmed: bool,
    email_confirmed: bool,
    profile: Option<shared::identity::Profile>,
    mfa: MfaView,
    created_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct MfaView {
    sms: bool,
    totp: bool,
}

impl From<&Account> for MeView {
    fn from(a: &Account) -> Self {
        Self {
            user_id: a.user_id.clone(),
            level: a.level.as_str(),
            phone: a.phone.clone(),
            email: a.email.clone(),
            phone_confirmed: a.phone_confirmed,
            email_confirmed: a.email_confirmed,
            profile: a.profile.clone(),
            mfa: MfaView { sms: a.mfa.sms, totp: a.totp_enabled() },
            created_at: a.created_at,
        }
    }
}

pub async fn me(State(state): State<AppState>, auth: Authenticated) -> Result<impl IntoResponse, ApiError> {
    let (account, _) = common::current(&state, &auth).await?;
    Ok(ApiJson(MeView::from(&account.value)))
}

#[derive(Deserialize)]
pub struct Paging {
    cursor: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct HistoryPage {
    items: Vec<LoginAttempt>,
    next_cursor: Option<String>,
}

/// Newest first, paged by the opaque cursor of SPEC §2.
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

#[derive(Deserialize)]
pub struct ChangePasswordRequest {
    current_password: PasswordText,
    new_password: NewPasswordText,
}

/// Changes the password and revokes every other session (SPEC §3.7).
pub async fn change_password(State(state): State<AppState>, auth: Authenticated, ApiJson(req): ApiJson<ChangePasswordRequest>) -> Result<impl IntoResponse, ApiError> {
    let (account, _) = common::current(&state, &auth).await?;
    state.limiter.hit("password-change", auth.user_id(), Limit::per_hour(10)).await?;
    if !secrets::verify_password(req.current_password, account.value.password_hash.clone()).await {
        return Err(errors::wrong_current_password());
    }
    common::check_new_password(&req.new_password, &common::personal_data(Some(&account.value), None, None), Some(&account.value)).await?;
    let new_hash = secrets::hash_password(req.new_password).await.map_err(ApiError::internal)?;
    for _ in 0..MAX_RETRIES {
        let (mut account, mut session) = common::current(&state, &auth).await?;
        let now = Utc::now();
        let old = std::mem::replace(&mut account.value.password_hash, new_hash.clone());
        account.value.previous_password_hashes.insert(0, old);
        account.value.previous_password_hashes.truncate(4);
        account.value.sessions_valid_from = Some(now);
        session.value.valid_from = now;
        let absolute_end = session.value.created_at.timestamp() + state.settings.session_absolute.as_secs() as i64;
        let ops = vec![
            common::account_op(&account)?,
            store::put_op(store::user_pk(auth.user_id()), &store::session_sk(auth.session_id()), &session.value, shared::ports::Condition::VersionIs(session.version), Some(absolute_end))?,
        ];
        let event = Event::new(Some(auth.user_id().to_owned()), EventPayload::PasswordChanged { destinations: account.value.security_destinations() });
        match common::commit(&state, ops, vec![event]).await {
            Ok(()) => {
                crate::tokens::delete_sessions(&state, auth.user_id(), Some(auth.session_id())).await;
                return Ok(StatusCode::NO_CONTENT);
            }
            Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(common::busy())
}

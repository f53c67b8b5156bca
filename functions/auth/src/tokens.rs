//! Issuing access tokens and starting, rotating and ending sessions.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use shared::http::{AccessClaims, ApiError};
use shared::persist;
use shared::ports::{Condition, TxOp};

use crate::AuthState;
use crate::errors;
use crate::secrets;
use crate::store::{self, Account, RefreshRecord, Session};

/// The tokens object of SPEC §3.4.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Tokens {
    /// EdDSA-signed JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchanged once at `POST /v1/auth/token/refresh`.
    pub refresh_token: String,
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: u64,
}

impl Tokens {
    pub fn bearer(state: &AuthState, access_token: String, refresh_token: String) -> Self {
        Self { access_token, refresh_token, token_type: "Bearer", expires_in: state.settings.access_ttl.as_secs() }
    }
}

/// Who is opening the session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
}

pub fn access_token(state: &AuthState, account: &Account, session_id: &str, amr: &[String], now: DateTime<Utc>) -> Result<String, ApiError> {
    let claims = AccessClaims {
        iss: state.settings.issuer.clone(),
        sub: account.user_id.clone(),
        aud: state.settings.audience.clone(),
        exp: now.timestamp() + state.settings.access_ttl.as_secs() as i64,
        iat: now.timestamp(),
        jti: state.ticker.id(),
        sid: session_id.to_owned(),
        lvl: account.level.as_str().to_owned(),
        amr: amr.to_vec(),
    };
    let key = state.keys.current();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(ApiError::internal)
}

/// A new session with its first refresh token: the ops to commit and the tokens to return.
pub fn start_session(state: &AuthState, account: &Account, amr: Vec<String>, client: &Client, now: DateTime<Utc>) -> Result<(Vec<TxOp>, Tokens), ApiError> {
    let session_id = state.ticker.id();
    let refresh_token = secrets::random_token(32);
    let refresh_pk = store::refresh_pk(&refresh_token);
    let absolute_end = now.timestamp() + state.settings.session_absolute.as_secs() as i64;
    let session = Session {
        session_id: session_id.clone(),
        user_id: account.user_id.clone(),
        created_at: now,
        last_seen_at: now,
        client: client.clone(),
        amr: amr.clone(),
        refresh_pk: refresh_pk.clone(),
        valid_from: now,
    };
    let record = RefreshRecord { user_id: account.user_id.clone(), session_id: session_id.clone(), used: false };
    let ops = vec![
        persist::put_op(store::user_pk(&account.user_id), store::session_sk(&session_id), &session, Condition::NotExists, Some(absolute_end))?,
        persist::put_op(refresh_pk, "REFRESH", &record, Condition::NotExists, Some(absolute_end))?,
    ];
    let tokens = Tokens::bearer(state, access_token(state, account, &session_id, &amr, now)?, refresh_token);
    Ok((ops, tokens))
}

/// Removes session items after a revocation was committed (`Account::sessions_valid_from`
/// already makes them dead); best effort, so the session list stays tidy.
pub async fn delete_sessions(state: &AuthState, user_id: &str, keep: Option<&str>) {
    let sessions = match store::sessions(state.kv.as_ref(), user_id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "session clean-up skipped");
            return;
        }
    };
    for s in sessions.into_iter().filter(|s| Some(s.value.session_id.as_str()) != keep) {
        if let Err(e) = state.kv.delete(&store::user_pk(user_id), &store::session_sk(&s.value.session_id), Condition::None).await {
            tracing::warn!(error = %e, "session clean-up failed");
        }
    }
}

/// Whether `session` may still be used at `now` (SPEC §3.7 idle and absolute limits, revocations).
pub fn check_session(state: &AuthState, account: &Account, session: &Session, now: DateTime<Utc>) -> Result<(), ApiError> {
    let idle = chrono::Duration::from_std(state.settings.session_idle).unwrap_or_default();
    let absolute = chrono::Duration::from_std(state.settings.session_absolute).unwrap_or_default();
    if now - session.last_seen_at > idle || now - session.created_at > absolute {
        return Err(errors::session_expired());
    }
    if account.sessions_valid_from.is_some_and(|from| session.valid_from < from) {
        return Err(errors::session_expired());
    }
    Ok(())
}

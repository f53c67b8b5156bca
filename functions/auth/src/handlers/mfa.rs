//! Second-factor settings: TOTP enrolment with backup codes, TOTP removal, the SMS switch
//! (SPEC §3.7). Accounts at `confirmed` must keep some second factor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use totp_rs::Secret;
use utoipa::ToSchema;

use shared::domain::Token;
use shared::events::{Event, EventPayload};
use shared::http::{ApiError, ApiJson, Authenticated};
use shared::ports::KvError;

use super::common::{self, MAX_RETRIES};
use super::login::{consume_backup_code, consume_totp, totp_for, totp_step};
use crate::errors;
use crate::secrets;
use crate::store::{Account, Level, Versioned};
use crate::{AppState, AuthState};

#[derive(Serialize, ToSchema)]
pub struct TotpOffer {
    /// Base32, for typing into an authenticator by hand.
    secret: String,
    /// `otpauth://totp/…`, for a QR code.
    otpauth_uri: String,
}

shared::problems!(EnrolErrors {
    401 => ["unauthorized", "invalid_token", "session_expired"],
    409 => ["totp_already_enabled", "concurrent_update"],
});

/// Offers a new secret; it takes effect once confirmed with a code from the authenticator.
#[utoipa::path(post, path = "/v1/me/mfa/totp", operation_id = "totp_enrol", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "A new secret, pending confirmation", body = TotpOffer), EnrolErrors))]
pub async fn totp_enrol(State(state): State<AppState>, auth: Authenticated) -> Result<impl IntoResponse, ApiError> {
    let secret = Secret::Raw(secrets::random_bytes(20)).to_encoded().to_string();
    let label = {
        let (account, _) = common::current(&state, &auth).await?;
        account.value.email.clone().or(account.value.phone.clone()).unwrap_or_else(|| account.value.user_id.clone())
    };
    update_account(&state, &auth, |a| {
        // Replacing a working authenticator needs its code: disable it first.
        if a.totp_enabled() {
            return Err(errors::conflict("totp_already_enabled", "Приложение-аутентификатор уже подключено; чтобы сменить его, сначала отключите текущее"));
        }
        a.mfa.totp_pending_secret = Some(secret.clone());
        Ok(None)
    })
    .await?;
    let mut totp = totp_for(&secret).ok_or_else(|| ApiError::internal("generated TOTP secret rejected"))?;
    totp.account_name = label;
    Ok(ApiJson(TotpOffer { secret, otpauth_uri: totp.get_url() }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = TotpCodeRequest)]
pub struct CodeRequest {
    /// A code from the authenticator (disabling also takes a backup code).
    #[schema(value_type = String, max_length = 256, example = "123456")]
    code: Token,
}

#[derive(Serialize, ToSchema)]
pub struct BackupCodes {
    /// Ten codes, each usable once as the method `backup_code`; shown only now.
    backup_codes: Vec<String>,
}

shared::problems!(TotpConfirmErrors {
    400 => ["validation_failed", "otp_invalid"],
    401 => ["unauthorized", "invalid_token", "session_expired"],
    409 => ["totp_already_enabled", "totp_not_started", "concurrent_update"],
    413 => ["payload_too_large"],
    415 => ["unsupported_media_type"],
});

/// `POST /v1/me/mfa/totp/confirm`: a code from the authenticator turns TOTP on.
#[utoipa::path(post, path = "/v1/me/mfa/totp/confirm", operation_id = "totp_confirm", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, description = "TOTP on; the backup codes", body = BackupCodes), TotpConfirmErrors))]
pub async fn totp_confirm(State(state): State<AppState>, auth: Authenticated, ApiJson(req): ApiJson<CodeRequest>) -> Result<impl IntoResponse, ApiError> {
    let codes = secrets::new_backup_codes();
    let hashes: Vec<String> = codes.iter().map(|c| secrets::backup_code_hash(&state.index_key, auth.user_id(), c)).collect();
    let now = Utc::now();
    update_account(&state, &auth, |a| {
        if a.totp_enabled() {
            return Err(errors::conflict("totp_already_enabled", "Приложение-аутентификатор уже подключено"));
        }
        let pending =
            a.mfa.totp_pending_secret.clone().ok_or_else(|| errors::conflict("totp_not_started", "Сначала начните подключение приложения-аутентификатора"))?;
        let step = totp_step(&pending, &req.code, now).ok_or_else(errors::otp_invalid)?;
        a.mfa.totp_secret = Some(pending);
        a.mfa.totp_pending_secret = None;
        a.mfa.totp_last_step = Some(step);
        a.mfa.backup_code_hashes = hashes.clone();
        Ok(Some(EventPayload::MfaChanged { destinations: a.security_destinations(), method: "totp".into(), enabled: true }))
    })
    .await?;
    Ok(ApiJson(BackupCodes { backup_codes: codes }))
}

shared::problems!(TotpDisableErrors {
    400 => ["validation_failed", "otp_invalid"],
    401 => ["unauthorized", "invalid_token", "session_expired"],
    403 => ["level_requires_mfa"],
    409 => ["totp_not_enabled", "concurrent_update"],
    413 => ["payload_too_large"],
    415 => ["unsupported_media_type"],
});

/// `DELETE /v1/me/mfa/totp`: a current TOTP or backup code turns TOTP off.
#[utoipa::path(delete, path = "/v1/me/mfa/totp", operation_id = "totp_disable", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 204, description = "TOTP off; backup codes void"), TotpDisableErrors))]
pub async fn totp_disable(State(state): State<AppState>, auth: Authenticated, ApiJson(req): ApiJson<CodeRequest>) -> Result<impl IntoResponse, ApiError> {
    let (account, _) = common::current(&state, &auth).await?;
    if !account.value.totp_enabled() {
        return Err(errors::conflict("totp_not_enabled", "Приложение-аутентификатор не подключено"));
    }
    if account.value.level == Level::Confirmed && !account.value.mfa.sms {
        return Err(errors::level_requires_mfa());
    }
    let ok = consume_totp(&state, &account, &req.code, Utc::now()).await? || consume_backup_code(&state, &account, &req.code).await?;
    if !ok {
        return Err(errors::otp_invalid());
    }
    update_account(&state, &auth, |a| {
        if a.level == Level::Confirmed && !a.mfa.sms {
            return Err(errors::level_requires_mfa());
        }
        a.mfa.totp_secret = None;
        a.mfa.totp_last_step = None;
        a.mfa.backup_code_hashes.clear();
        Ok(Some(EventPayload::MfaChanged { destinations: a.security_destinations(), method: "totp".into(), enabled: false }))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct SmsSwitch {
    enabled: bool,
}

/// Which second factors are on.
#[derive(Serialize, ToSchema)]
pub struct MfaState {
    sms: bool,
    totp: bool,
}

shared::problems!(SmsSwitchErrors {
    400 => ["validation_failed"],
    401 => ["unauthorized", "invalid_token", "session_expired"],
    403 => ["level_requires_mfa"],
    409 => ["phone_not_confirmed", "concurrent_update"],
    413 => ["payload_too_large"],
    415 => ["unsupported_media_type"],
});

/// `PUT /v1/me/mfa/sms`: the SMS second factor on or off (off needs another factor at `confirmed`).
#[utoipa::path(put, path = "/v1/me/mfa/sms", operation_id = "sms_switch", tag = "auth", security(("bearer" = [])), request_body = SmsSwitch,
    responses((status = 200, description = "The second factors now on", body = MfaState), SmsSwitchErrors))]
pub async fn sms_switch(State(state): State<AppState>, auth: Authenticated, ApiJson(req): ApiJson<SmsSwitch>) -> Result<impl IntoResponse, ApiError> {
    let account = update_account(&state, &auth, |a| {
        if req.enabled == a.mfa.sms {
            return Ok(None);
        }
        if req.enabled && !(a.phone_confirmed && a.phone.is_some()) {
            return Err(errors::conflict("phone_not_confirmed", "Для входа по SMS нужен подтверждённый номер телефона"));
        }
        if !req.enabled && a.level == Level::Confirmed && !a.totp_enabled() {
            return Err(errors::level_requires_mfa());
        }
        a.mfa.sms = req.enabled;
        Ok(Some(EventPayload::MfaChanged { destinations: a.security_destinations(), method: "sms".into(), enabled: req.enabled }))
    })
    .await?;
    Ok(ApiJson(MfaState { sms: account.mfa.sms, totp: account.totp_enabled() }))
}

/// Read-modify-write of the caller's account with optimistic concurrency; `change` may veto
/// with an error or name a security event to send with the write (`None` and no change: no-op).
async fn update_account<F>(state: &AuthState, auth: &Authenticated, mut change: F) -> Result<Account, ApiError>
where
    F: FnMut(&mut Account) -> Result<Option<EventPayload>, ApiError>,
{
    for _ in 0..MAX_RETRIES {
        let (account, _) = common::current(state, auth).await?;
        let mut next = Versioned { value: account.value.clone(), version: account.version };
        let payload = change(&mut next.value)?;
        let events: Vec<Event> = payload.into_iter().map(|p| Event::new(Some(auth.user_id().to_owned()), p)).collect();
        match common::commit(state, vec![common::account_op(&next)?], events).await {
            Ok(()) => return Ok(next.value),
            Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(common::busy())
}

//! Second-factor settings: TOTP enrolment with backup codes, TOTP removal, the SMS switch
//! (SPEC §3.7). Accounts at `confirmed` must keep some second factor.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use totp_rs::Secret;
use utoipa::ToSchema;

use shared::domain::Token;
use shared::http::{ApiError, ApiJson, Authenticated};

use super::answers::answers;
use super::common;
use super::login::totp_or_backup_code;
use crate::AppState;
use crate::domain::MfaError;
use crate::domain::factors::{self, totp_for};
use crate::secrets;

#[derive(Serialize, ToSchema)]
pub struct TotpOffer {
    /// Base32, for typing into an authenticator by hand.
    secret: String,
    /// `otpauth://totp/…`, for a QR code.
    otpauth_uri: String,
}

answers!(EnrolErrors = SESSION, &[(409, &["totp_already_enabled"])], CONTENDED);

/// Offers a new secret; it takes effect once confirmed with a code from the authenticator.
#[utoipa::path(post, path = "/v1/me/mfa/totp", operation_id = "totp_enrol", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "A new secret, pending confirmation", body = TotpOffer), EnrolErrors))]
pub async fn totp_enrol(State(state): State<AppState>, auth: Authenticated) -> Result<impl IntoResponse, ApiError> {
    let secret = Secret::Raw(secrets::random_bytes(20)).to_encoded().to_string();
    let label = {
        let (account, _) = common::current(&state, &auth).await?;
        let contact = account.value.email.as_ref().map(|e| e.as_str()).or(account.value.phone.as_ref().map(|p| p.as_str()));
        contact.unwrap_or(&account.value.user_id).to_owned()
    };
    common::update_account(&state, &auth, |a| factors::start_totp(a, secret.clone()).map(|()| None)).await?;
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

answers!(TotpConfirmErrors = JSON_BODY, &[(400, &["otp_invalid"]), (409, &["totp_already_enabled", "totp_not_started"])], SESSION, CONTENDED);

/// `POST /v1/me/mfa/totp/confirm`: a code from the authenticator turns TOTP on.
#[utoipa::path(post, path = "/v1/me/mfa/totp/confirm", operation_id = "totp_confirm", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, description = "TOTP on; the backup codes", body = BackupCodes), TotpConfirmErrors))]
pub async fn totp_confirm(State(state): State<AppState>, auth: Authenticated, ApiJson(req): ApiJson<CodeRequest>) -> Result<impl IntoResponse, ApiError> {
    let codes = secrets::new_backup_codes();
    let hashes: Vec<String> = codes.iter().map(|c| secrets::backup_code_hash(&state.index_key, auth.user_id(), c)).collect();
    let now = state.ticker.now();
    common::update_account(&state, &auth, |a| factors::confirm_totp(a, &req.code, now, hashes.clone()).map(Some)).await?;
    Ok(ApiJson(BackupCodes { backup_codes: codes }))
}

answers!(TotpDisableErrors = JSON_BODY, &[(400, &["otp_invalid"]), (403, &["level_requires_mfa"]), (409, &["totp_not_enabled"])], SESSION, CONTENDED);

/// `DELETE /v1/me/mfa/totp`: a current TOTP or backup code turns TOTP off.
#[utoipa::path(delete, path = "/v1/me/mfa/totp", operation_id = "totp_disable", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 204, description = "TOTP off; backup codes void"), TotpDisableErrors))]
pub async fn totp_disable(State(state): State<AppState>, auth: Authenticated, ApiJson(req): ApiJson<CodeRequest>) -> Result<impl IntoResponse, ApiError> {
    let (account, _) = common::current(&state, &auth).await?;
    factors::may_disable_totp(&account.value)?;
    if !totp_or_backup_code(&state, &account, &req.code, state.ticker.now()).await?.0 {
        return Err(MfaError::InvalidCode.into());
    }
    common::update_account(&state, &auth, |a| factors::disable_totp(a).map(Some)).await?;
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

answers!(SmsSwitchErrors = JSON_BODY, &[(403, &["level_requires_mfa"]), (409, &["phone_not_confirmed"])], SESSION, CONTENDED);

/// `PUT /v1/me/mfa/sms`: the SMS second factor on or off (off needs another factor at `confirmed`).
#[utoipa::path(put, path = "/v1/me/mfa/sms", operation_id = "sms_switch", tag = "auth", security(("bearer" = [])), request_body = SmsSwitch,
    responses((status = 200, description = "The second factors now on", body = MfaState), SmsSwitchErrors))]
pub async fn sms_switch(State(state): State<AppState>, auth: Authenticated, ApiJson(req): ApiJson<SmsSwitch>) -> Result<impl IntoResponse, ApiError> {
    let account = common::update_account(&state, &auth, |a| factors::switch_sms(a, req.enabled)).await?;
    Ok(ApiJson(MfaState { sms: account.mfa.sms, totp: account.totp_enabled() }))
}

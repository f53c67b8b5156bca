//! Login with password, the second factor, and lockout (SPEC §3.5).
//! Three consecutive failures (wrong password or wrong second-factor code) lock the account;
//! a locked account answers 423 to every login until recovery.

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Secret, TOTP};
use utoipa::ToSchema;

use shared::domain::{LoginText, PasswordText, Token};
use shared::events::{Destination, Event, EventPayload, OtpPurpose};
use shared::http::rate_limit::Limit;
use shared::http::{ApiError, ApiJson, ClientIp, UserAgent};
use shared::ports::{Condition, KvError, TxOp};

use super::common::{self, COUNTER_RETRIES, CodeCheck};
use crate::errors;
use crate::secrets;
use crate::store::{self, Account, AttemptResult, FlowKind, Versioned};
use crate::tokens::{Client, Tokens};
use crate::{AppState, AuthState};

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// A phone, an email or a SNILS.
    #[schema(value_type = String, max_length = 320, example = "anna@example.ru")]
    login: LoginText,
    #[schema(value_type = String, max_length = 128, format = Password)]
    password: PasswordText,
}

/// Tokens at once (`mfa_required: false`), or a second-factor flow (`mfa_required: true`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Done {
        mfa_required: bool,
        tokens: Tokens,
    },
    SecondFactor {
        mfa_required: bool,
        flow_id: String,
        /// The account's second factors; for `sms` a code is already on its way.
        #[schema(value_type = Vec<MfaMethod>)]
        methods: Vec<String>,
    },
}

/// A second factor at `POST /v1/auth/login/mfa`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum MfaMethod {
    Sms,
    Totp,
    BackupCode,
}

shared::problems!(LoginErrors {
    400 => ["validation_failed"],
    401 => ["invalid_credentials"],
    409 => ["concurrent_update"],
    413 => ["payload_too_large"],
    415 => ["unsupported_media_type"],
    423 => ["account_locked"],
    429 => ["rate_limited"],
});

/// `POST /v1/auth/login`: the password step; unknown logins and wrong passwords answer alike.
#[utoipa::path(post, path = "/v1/auth/login", operation_id = "login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "Signed in, or a second factor is needed", body = LoginResponse), LoginErrors))]
pub async fn login(State(state): State<AppState>, ip: ClientIp, ua: UserAgent, ApiJson(req): ApiJson<LoginRequest>) -> Result<impl IntoResponse, ApiError> {
    state.limiter.hit("login-ip", &ip.0.to_string(), state.settings.login_per_ip).await?;
    let client = common::client(ip, &ua);
    let candidates = common::login_candidates(&req.login);
    let limit_key = common::login_limit_key(&req.login, &candidates);
    state.limiter.hit("login-account", &limit_key, state.settings.login_per_account).await?;
    let Some(account) = common::find_account(&state, &candidates).await? else {
        return Err(super::unknown::failed_login(&state, &limit_key, req.password, &client, &ua).await);
    };
    let now = Utc::now();
    let user_id = account.value.user_id.clone();
    // Count the attempt before checking the password, so parallel guesses cannot outrun
    // the lockout counter; a correct password gives the reservation back.
    match reserve_attempt(&state, account.clone()).await? {
        Reservation::Reserved => {}
        Reservation::Locked => {
            secrets::burn_password_check(req.password).await;
            common::commit(&state, vec![common::attempt_op(&user_id, &client, &ua, AttemptResult::Locked, None, now)?], Vec::new()).await?;
            return Err(errors::account_locked());
        }
    }
    if !secrets::verify_password(req.password, account.value.password_hash.clone()).await {
        return Err(record_failure(&state, &user_id, &client, &ua, AttemptResult::WrongPassword, None, Counted::Already).await);
    }
    let methods = account.value.mfa_methods();
    if methods.is_empty() {
        let tokens = succeed(&state, &user_id, vec!["pwd".into()], &client, &ua, None).await?;
        return Ok(ApiJson(LoginResponse::Done { mfa_required: false, tokens }));
    }
    release_reservation(&state, &user_id).await?;
    let sms_destination = methods.contains(&"sms").then(|| account.value.phone.clone().map(Destination::Sms)).flatten();
    // Over the hourly SMS budget the login still proceeds: TOTP works, and resend retries later.
    let send_now = match &sms_destination {
        Some(d) => common::may_send_code(&state, d).await?,
        None => false,
    };
    let (mut flow, mut event) = common::new_flow(&state, FlowKind::LoginMfa, Some(account.value.user_id.clone()), sms_destination, OtpPurpose::Login, now)?;
    if !send_now {
        flow.code_hash = None;
        event = None;
    }
    flow.methods = methods.iter().map(|m| m.to_string()).collect();
    common::commit(&state, vec![common::flow_op(&flow, Condition::NotExists)?], event.into_iter().collect()).await?;
    Ok(ApiJson(LoginResponse::SecondFactor { mfa_required: true, flow_id: flow.flow_id, methods: flow.methods }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = LoginMfaRequest)]
pub struct MfaRequest {
    #[schema(value_type = String, max_length = 256)]
    flow_id: Token,
    /// One of the `methods` the login offered.
    #[schema(value_type = String, max_length = 256, example = "sms")]
    method: Token,
    /// The SMS or TOTP code, or a backup code.
    #[schema(value_type = String, max_length = 256, example = "123456")]
    code: Token,
}

#[derive(Serialize, ToSchema)]
#[schema(as = LoginMfaDone)]
pub struct MfaDone {
    tokens: Tokens,
}

shared::problems!(MfaErrors {
    400 => ["validation_failed", "otp_invalid"],
    401 => ["invalid_credentials"],
    409 => ["concurrent_update"],
    410 => ["otp_expired"],
    413 => ["payload_too_large"],
    415 => ["unsupported_media_type"],
    423 => ["account_locked"],
    429 => ["rate_limited", "otp_attempts_exceeded"],
});

/// `POST /v1/auth/login/mfa`: the second factor; a wrong code counts towards the lockout.
#[utoipa::path(post, path = "/v1/auth/login/mfa", operation_id = "login_mfa", tag = "auth", request_body = MfaRequest,
    responses((status = 200, description = "Signed in", body = MfaDone), MfaErrors))]
pub async fn mfa(State(state): State<AppState>, ip: ClientIp, ua: UserAgent, ApiJson(req): ApiJson<MfaRequest>) -> Result<impl IntoResponse, ApiError> {
    state.limiter.hit("code-confirm-ip", &ip.0.to_string(), Limit::per_minute(30)).await?;
    let client = common::client(ip, &ua);
    let now = Utc::now();
    let mut flow = common::load_flow(&state, &req.flow_id).await?;
    let (FlowKind::LoginMfa, Some(user_id)) = (flow.value.kind, flow.value.user_id.clone()) else {
        return Err(errors::flow_not_found());
    };
    if !flow.value.methods.iter().any(|m| m.as_str() == req.method.as_str()) {
        return Err(ApiError::field("method", "unsupported_method", "Этот способ подтверждения недоступен для учётной записи"));
    }
    let account = store::account(state.kv.as_ref(), &user_id).await?.ok_or_else(errors::flow_not_found)?;
    // A password change or recovery since the password step voids it.
    let opened_at: DateTime<Utc> = ulid::Ulid::from_string(&flow.value.flow_id).map(|id| id.datetime().into()).unwrap_or(flow.value.code_issued_at);
    if account.value.sessions_valid_from.is_some_and(|from| opened_at < from) {
        return Err(errors::flow_not_found());
    }
    if account.value.locked {
        common::commit(&state, vec![common::attempt_op(&user_id, &client, &ua, AttemptResult::Locked, Some(&req.method), now)?], Vec::new()).await?;
        return Err(errors::account_locked());
    }
    let method = req.method.as_str();
    let accepted = match method {
        "sms" => match common::check_code(&state, &mut flow, &req.code, now).await? {
            CodeCheck::Valid => true,
            wrong => {
                let fail = record_failure(&state, &user_id, &client, &ua, AttemptResult::WrongCode, Some(method), Counted::No).await;
                return Err(if fail.code == "account_locked" { fail } else { common::wrong_code_error(wrong) });
            }
        },
        "totp" => {
            if now > flow.value.expires_at {
                return Err(errors::otp_expired());
            }
            consume_totp(&state, &account, &req.code, now).await?
        }
        "backup_code" => {
            if now > flow.value.expires_at {
                return Err(errors::otp_expired());
            }
            consume_backup_code(&state, &account, &req.code).await?
        }
        _ => false,
    };
    if !accepted {
        let fail = record_failure(&state, &user_id, &client, &ua, AttemptResult::WrongCode, Some(method), Counted::No).await;
        return Err(if fail.code == "account_locked" { fail } else { errors::otp_invalid() });
    }
    let consume = common::consume_flow_op(&flow.value);
    let factor = if method == "sms" { "sms" } else { "otp" };
    let tokens = succeed_with(&state, &user_id, vec!["pwd".into(), factor.into()], &client, &ua, Some(method), vec![consume]).await?;
    Ok(ApiJson(MfaDone { tokens }))
}

/// Checks a TOTP code (±1 step) and marks its step used, so the same code works once.
pub async fn consume_totp(state: &AuthState, account: &Versioned<Account>, code: &str, now: DateTime<Utc>) -> Result<bool, ApiError> {
    let Some(secret) = account.value.mfa.totp_secret.as_deref() else { return Ok(false) };
    let Some(step) = totp_step(secret, code, now) else { return Ok(false) };
    if account.value.mfa.totp_last_step.is_some_and(|last| step <= last) {
        return Ok(false);
    }
    let mut next = Versioned { value: account.value.clone(), version: account.version };
    next.value.mfa.totp_last_step = Some(step);
    match state.kv.transact(vec![common::account_op(&next)?]).await {
        Ok(()) => Ok(true),
        // Someone else changed the account meanwhile (maybe the same code): refuse this one.
        Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The time step at which `code` is valid for `secret` (RFC 6238, SHA-1, 6 digits, 30 s, ±1 step).
pub fn totp_step(secret_base32: &str, code: &str, now: DateTime<Utc>) -> Option<u64> {
    let totp = totp_for(secret_base32)?;
    let now = now.timestamp().max(0) as u64;
    let code = code.trim();
    [now.saturating_sub(30), now, now + 30].into_iter().find(|t| secrets::ct_eq(&totp.generate(*t), code)).map(|t| t / 30)
}

pub fn totp_for(secret_base32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_base32.to_owned()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, Some("Госуслуги".into()), "account".into()).ok()
}

/// Consumes a backup code (each works once).
pub async fn consume_backup_code(state: &AuthState, account: &Versioned<Account>, code: &str) -> Result<bool, ApiError> {
    let presented = secrets::backup_code_hash(&state.index_key, &account.value.user_id, code);
    let Some(pos) = account.value.mfa.backup_code_hashes.iter().position(|h| secrets::ct_eq(h, &presented)) else {
        return Ok(false);
    };
    let mut next = Versioned { value: account.value.clone(), version: account.version };
    next.value.mfa.backup_code_hashes.remove(pos);
    match state.kv.transact(vec![common::account_op(&next)?]).await {
        Ok(()) => Ok(true),
        Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

enum Reservation {
    Reserved,
    Locked,
}

/// Whether a failure was already counted by `reserve_attempt`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Already,
    No,
}

/// Adds one to the failure counter unless the account is locked; a counter already at the
/// threshold (in-flight or crashed attempts) locks the account instead.
/// Starts from the account as the login read it; a lost race re-reads it.
async fn reserve_attempt(state: &AuthState, read: Versioned<Account>) -> Result<Reservation, ApiError> {
    let user_id = read.value.user_id.clone();
    let user_id = user_id.as_str();
    let mut next = Some(read);
    for _ in 0..COUNTER_RETRIES {
        let mut account = match next.take() {
            Some(account) => account,
            None => store::account(state.kv.as_ref(), user_id).await?.ok_or_else(errors::invalid_credentials)?,
        };
        if account.value.locked {
            return Ok(Reservation::Locked);
        }
        let events = if account.value.failed_attempts >= state.settings.max_failed_logins {
            account.value.locked = true;
            vec![Event::new(Some(user_id.to_owned()), EventPayload::AccountLocked { destinations: account.value.security_destinations() })]
        } else {
            account.value.failed_attempts += 1;
            Vec::new()
        };
        let locks = account.value.locked;
        match common::commit(state, vec![common::account_op(&account)?], events).await {
            Ok(()) if locks => return Ok(Reservation::Locked),
            Ok(()) => return Ok(Reservation::Reserved),
            Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::rate_limited(1))
}

/// Gives back a reservation after a correct password (the second factor counts on its own).
async fn release_reservation(state: &AuthState, user_id: &str) -> Result<(), ApiError> {
    for _ in 0..COUNTER_RETRIES {
        let Some(mut account) = store::account(state.kv.as_ref(), user_id).await? else { return Ok(()) };
        account.value.failed_attempts = account.value.failed_attempts.saturating_sub(1);
        match state.kv.transact(vec![common::account_op(&account)?]).await {
            Ok(()) => return Ok(()),
            Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(common::busy())
}

/// Records a failure (counting it unless `reserve_attempt` already did), locking the account
/// at the threshold and telling its owner; writes the attempt to the history.
/// Returns the error to answer with.
pub(crate) async fn record_failure(
    state: &AuthState,
    user_id: &str,
    client: &Client,
    ua: &UserAgent,
    result: AttemptResult,
    mfa_method: Option<&str>,
    counted: Counted,
) -> ApiError {
    let outcome = async {
        for _ in 0..COUNTER_RETRIES {
            let now = Utc::now();
            let Some(mut account) = store::account(state.kv.as_ref(), user_id).await? else {
                return Ok(errors::invalid_credentials());
            };
            let was_locked = account.value.locked;
            if counted == Counted::No {
                account.value.failed_attempts += 1;
            }
            let locks = !was_locked && account.value.failed_attempts >= state.settings.max_failed_logins;
            account.value.locked |= locks;
            let events = if locks {
                vec![Event::new(Some(user_id.to_owned()), EventPayload::AccountLocked { destinations: account.value.security_destinations() })]
            } else {
                Vec::new()
            };
            let ops = vec![common::account_op(&account)?, common::attempt_op(user_id, client, ua, result, mfa_method, now)?];
            match common::commit(state, ops, events).await {
                Ok(()) => {
                    if locks {
                        tracing::warn!(user_id, "account locked after consecutive failures");
                    }
                    return Ok(if account.value.locked {
                        errors::account_locked()
                    } else if result == AttemptResult::WrongPassword {
                        errors::invalid_credentials()
                    } else {
                        errors::otp_invalid()
                    });
                }
                Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => continue,
                Err(e) => return Err(ApiError::from(e)),
            }
        }
        Err(ApiError::rate_limited(1))
    };
    match outcome.await {
        Ok(e) | Err(e) => e,
    }
}

async fn succeed(state: &AuthState, user_id: &str, amr: Vec<String>, client: &Client, ua: &UserAgent, mfa_method: Option<&str>) -> Result<Tokens, ApiError> {
    succeed_with(state, user_id, amr, client, ua, mfa_method, Vec::new()).await
}

/// Resets the failure counter, opens a session and records the success, in one transaction.
async fn succeed_with(
    state: &AuthState,
    user_id: &str,
    amr: Vec<String>,
    client: &Client,
    ua: &UserAgent,
    mfa_method: Option<&str>,
    extra: Vec<TxOp>,
) -> Result<Tokens, ApiError> {
    for _ in 0..COUNTER_RETRIES {
        let now = Utc::now();
        let mut account = store::account(state.kv.as_ref(), user_id).await?.ok_or_else(errors::invalid_credentials)?;
        if account.value.locked {
            return Err(errors::account_locked());
        }
        account.value.failed_attempts = 0;
        let (session_ops, tokens) = crate::tokens::start_session(state, &account.value, amr.clone(), client, now)?;
        let mut ops = vec![common::account_op(&account)?, common::attempt_op(user_id, client, ua, AttemptResult::Success, mfa_method, now)?];
        ops.extend(session_ops);
        ops.extend(extra.iter().cloned());
        let email_only: Vec<Destination> = account.value.security_destinations().into_iter().filter(|d| matches!(d, Destination::Email(_))).collect();
        let events = if email_only.is_empty() {
            Vec::new()
        } else {
            vec![Event::new(
                Some(user_id.to_owned()),
                EventPayload::NewLogin { destinations: email_only, device_type: ua.device_type().to_owned(), ip: client.ip.clone() },
            )]
        };
        match common::commit(state, ops, events).await {
            Ok(()) => return Ok(tokens),
            Err(KvError::TransactionConflict { index: Some(i) }) if i >= 2 + 2 => return Err(errors::flow_not_found()),
            Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(common::busy())
}

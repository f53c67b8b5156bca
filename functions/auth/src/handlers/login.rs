//! Login with password, the second factor, and lockout (SPEC §3.5).
//! Three consecutive failures (wrong password or wrong second-factor code) lock the account;
//! a locked account answers 423 to every login until recovery.

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use shared::domain::{LoginText, PasswordText, Token};
use shared::events::{Destination, Event};
use shared::http::rate_limit::Limit;
use shared::http::{ApiError, ApiJson, ClientIp, UserAgent};
use shared::persist::{self, Attempt, Versioned};
use shared::ports::{Condition, KvError, TxOp};
use shared::vocabulary::MfaMethod;

use super::answers::answers;
use super::common::{self, CodeCheck, FirstRead};
use crate::domain::factors;
use crate::domain::login::{self, Counted, Failure, PasswordAccepted, Reservation};
use crate::domain::{FlowError, LoginError};
use crate::errors::CounterError;
use crate::secrets;
use crate::store::{self, Account, AttemptResult, FlowKind};
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
        methods: Vec<MfaMethod>,
    },
}

answers!(LoginErrors = JSON_BODY, CONTENDED, RATE_LIMITED, &[(401, &["invalid_credentials"]), (423, &["account_locked"])]);

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
    let user_id = account.value.user_id.clone();
    // Count the attempt before checking the password, so parallel guesses cannot outrun
    // the lockout counter; a correct password gives the reservation back.
    if reserve_attempt(&state, account.clone()).await? != Reservation::Counted {
        secrets::burn_password_check(req.password).await;
        state.relay.commit(vec![common::attempt_op(&state, &user_id, &client, &ua, AttemptResult::Locked, None)?], &[]).await?;
        return Err(LoginError::Locked.into());
    }
    if !secrets::verify_password(req.password, account.value.password_hash.clone()).await {
        let failure = record_failure(&state, &user_id, &client, &ua, AttemptResult::WrongPassword, None, Counted::Already).await;
        return Err(failure.map_or_else(|e| e, ApiError::from));
    }
    let methods = match login::after_password(&account.value) {
        PasswordAccepted::SignedIn => {
            let tokens = succeed(&state, &user_id, None, &client, &ua, Vec::new()).await?;
            return Ok(ApiJson(LoginResponse::Done { mfa_required: false, tokens }));
        }
        PasswordAccepted::SecondFactor(methods) => methods,
    };
    release_reservation(&state, &user_id).await?;
    let sms_destination = methods.contains(&MfaMethod::Sms).then(|| account.value.phone.clone().map(Destination::Sms)).flatten();
    // Over the hourly SMS budget the login still proceeds: TOTP works, and resend retries later.
    let send_now = match &sms_destination {
        Some(d) => common::may_send_code(&state, d).await?,
        None => false,
    };
    let (mut flow, mut event) = common::new_flow(&state, FlowKind::LoginMfa, Some(user_id), sms_destination, state.ticker.now());
    if !send_now {
        flow.withhold_code();
        event = None;
    }
    flow.methods = methods;
    state.relay.commit(vec![common::flow_op(&flow, Condition::NotExists)?], event.as_slice()).await?;
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

answers!(MfaErrors = JSON_BODY, ONE_TIME_CODE, &[(401, &["invalid_credentials"]), (423, &["account_locked"])], CONTENDED);

/// `POST /v1/auth/login/mfa`: the second factor; a wrong code counts towards the lockout.
#[utoipa::path(post, path = "/v1/auth/login/mfa", operation_id = "login_mfa", tag = "auth", request_body = MfaRequest,
    responses((status = 200, description = "Signed in", body = MfaDone), MfaErrors))]
pub async fn mfa(State(state): State<AppState>, ip: ClientIp, ua: UserAgent, ApiJson(req): ApiJson<MfaRequest>) -> Result<impl IntoResponse, ApiError> {
    state.limiter.hit("code-confirm-ip", &ip.0.to_string(), Limit::per_minute(30)).await?;
    let client = common::client(ip, &ua);
    let now = state.ticker.now();
    let mut flow = common::load_flow(&state, &req.flow_id).await?;
    let (FlowKind::LoginMfa, Some(user_id)) = (flow.value.kind, flow.value.user_id.clone()) else {
        return Err(FlowError::NotFound.into());
    };
    let method = MfaMethod::parse(&req.method).filter(|m| flow.value.methods.contains(m)).ok_or(LoginError::UnsupportedMethod)?;
    let account = store::account(state.kv.as_ref(), &user_id).await?.ok_or(FlowError::NotFound)?;
    // A password change or recovery since the password step voids it.
    if flow.value.opened_before(account.value.sessions_valid_from) {
        return Err(FlowError::NotFound.into());
    }
    if account.value.locked {
        state.relay.commit(vec![common::attempt_op(&state, &user_id, &client, &ua, AttemptResult::Locked, Some(method.as_str()))?], &[]).await?;
        return Err(LoginError::Locked.into());
    }
    let wrong = match method {
        MfaMethod::Sms => match common::check_code(&state, &mut flow, &req.code, now).await? {
            CodeCheck::Valid => None,
            CodeCheck::Wrong(answer) => Some(answer),
        },
        MfaMethod::Totp | MfaMethod::BackupCode => {
            flow.value.alive(now)?;
            (!use_second_factor(&state, &account, method, &req.code, now).await?).then_some(FlowError::InvalidCode)
        }
    };
    if let Some(answer) = wrong {
        // The lock, when this failure took it, outranks the answer about the code.
        let failure = record_failure(&state, &user_id, &client, &ua, AttemptResult::WrongCode, Some(method.as_str()), Counted::No).await;
        return Err(if failure == Ok(LoginError::Locked) { LoginError::Locked.into() } else { answer.into() });
    }
    let consume = common::consume_flow_op(&flow.value);
    let tokens = succeed(&state, &user_id, Some(method), &client, &ua, vec![consume]).await?;
    Ok(ApiJson(MfaDone { tokens }))
}

/// Accepts a TOTP or backup code on the account as read, conditionally on its version: each
/// code works once, and a lost race (maybe the same code, used in parallel) refuses it.
pub async fn use_second_factor(state: &AuthState, read: &Versioned<Account>, method: MfaMethod, code: &str, now: DateTime<Utc>) -> Result<bool, ApiError> {
    let mut account = read.value.clone();
    let accepted = match method {
        MfaMethod::Totp => factors::use_totp(&mut account, code, now),
        MfaMethod::BackupCode => factors::use_backup_code(&mut account, &secrets::backup_code_hash(&state.index_key, &read.value.user_id, code)),
        MfaMethod::Sms => false,
    };
    if !accepted {
        return Ok(false);
    }
    Ok(matches!(common::commit(state, vec![common::account_op(read, &account)?], &[], ()).await?, Attempt::Done(())))
}

/// A TOTP code, else a backup code: whether one was accepted, and which was tried last.
pub async fn totp_or_backup_code(state: &AuthState, read: &Versioned<Account>, code: &str, now: DateTime<Utc>) -> Result<(bool, MfaMethod), ApiError> {
    if use_second_factor(state, read, MfaMethod::Totp, code, now).await? {
        return Ok((true, MfaMethod::Totp));
    }
    Ok((use_second_factor(state, read, MfaMethod::BackupCode, code, now).await?, MfaMethod::BackupCode))
}

/// Counts an attempt on the account before its password is checked (`login::reserve_attempt`),
/// starting from the account as the login read it; a lost race re-reads it. A counter too
/// hot to write answers 429 rather than let the password be checked uncounted.
async fn reserve_attempt(state: &AuthState, read: Versioned<Account>) -> Result<Reservation, ApiError> {
    let user_id = read.value.user_id.clone();
    let first = FirstRead::new(read);
    let reservation = persist::retry(|| async {
        let read = match first.take() {
            Some(read) => read,
            None => store::account(state.kv.as_ref(), &user_id).await?.ok_or(LoginError::InvalidCredentials)?,
        };
        let mut account = read.value.clone();
        let reservation = login::reserve_attempt(&mut account, state.settings.max_failed_logins);
        let events = match reservation {
            Reservation::Locked => return Ok(Attempt::Done(reservation)),
            Reservation::LocksNow => vec![common::event(state, Some(&user_id), login::locked_notice(&account))],
            Reservation::Counted => Vec::new(),
        };
        Ok::<_, CounterError>(common::commit(state, vec![common::account_op(&read, &account)?], &events, reservation).await?)
    });
    Ok(reservation.await?)
}

/// Gives back a reservation after a correct password.
async fn release_reservation(state: &AuthState, user_id: &str) -> Result<(), ApiError> {
    persist::retry(|| async {
        let Some(read) = store::account(state.kv.as_ref(), user_id).await? else { return Ok(Attempt::Done(())) };
        let mut account = read.value.clone();
        login::release_reservation(&mut account);
        Ok::<_, ApiError>(common::commit(state, vec![common::account_op(&read, &account)?], &[], ()).await?)
    })
    .await
}

/// Records a failure (`login::record_failure`) with its login-history entry, telling the
/// owner when it locks the account. Answers the domain's answer, or why it could not be
/// recorded (429 when the counter stayed too hot).
pub(crate) async fn record_failure(
    state: &AuthState,
    user_id: &str,
    client: &Client,
    ua: &UserAgent,
    result: AttemptResult,
    mfa_method: Option<&str>,
    counted: Counted,
) -> Result<LoginError, ApiError> {
    let failure = persist::retry(|| async {
        let Some(read) = store::account(state.kv.as_ref(), user_id).await? else {
            return Ok(Attempt::Done(Failure { locks_now: false, answer: LoginError::InvalidCredentials }));
        };
        let mut account = read.value.clone();
        let failure = login::record_failure(&mut account, counted, state.settings.max_failed_logins, result);
        let events: Vec<Event> = failure.locks_now.then(|| common::event(state, Some(user_id), login::locked_notice(&account))).into_iter().collect();
        let ops = vec![common::account_op(&read, &account)?, common::attempt_op(state, user_id, client, ua, result, mfa_method)?];
        Ok::<_, CounterError>(common::commit(state, ops, &events, failure).await?)
    });
    let failure = failure.await?;
    if failure.locks_now {
        tracing::warn!(user_id, "account locked after consecutive failures");
    }
    Ok(failure.answer)
}

/// Ops of a successful login before the caller's `extra` ones: the account, the history
/// entry, the session and its refresh token.
const OPS_BEFORE_EXTRA: usize = 4;

/// Resets the failure counter, opens a session and records the success, in one transaction
/// with `extra` (a consumed flow: a conflict there means someone else completed it).
async fn succeed(
    state: &AuthState,
    user_id: &str,
    second_factor: Option<MfaMethod>,
    client: &Client,
    ua: &UserAgent,
    extra: Vec<TxOp>,
) -> Result<Tokens, ApiError> {
    let amr = login::amr(second_factor);
    persist::retry(|| async {
        let read = store::account(state.kv.as_ref(), user_id).await?.ok_or(LoginError::InvalidCredentials)?;
        let mut account = read.value.clone();
        login::succeed(&mut account)?;
        let (session_ops, tokens) = crate::tokens::start_session(state, &account, amr.clone(), client, state.ticker.now())?;
        let history = common::attempt_op(state, user_id, client, ua, AttemptResult::Success, second_factor.map(MfaMethod::as_str))?;
        let mut ops = vec![common::account_op(&read, &account)?, history];
        ops.extend(session_ops);
        ops.extend(extra.iter().cloned());
        let events: Vec<Event> =
            login::new_login_notice(&account, ua.device_type(), &client.ip).map(|p| common::event(state, Some(user_id), p)).into_iter().collect();
        let committed = state.relay.commit(ops, &events).await;
        if let Err(KvError::TransactionConflict { index: Some(i) }) = committed
            && i >= OPS_BEFORE_EXTRA
        {
            return Err(FlowError::NotFound.into());
        }
        Ok::<_, ApiError>(common::settle(committed, tokens)?)
    })
    .await
}

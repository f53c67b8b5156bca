//! Registration by phone or email with a one-time code (SPEC §3.4), and code resend.
//! A known contact gets the same answer as a new one; its owner is warned instead.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use shared::domain::{Email, FieldError, LoginText, NewPasswordText, Phone, Token};
use shared::events::{Destination, Event, EventPayload};
use shared::http::rate_limit::Limit;
use shared::http::{ApiError, ApiJson, ClientIp, UserAgent};
use shared::identity::LOGIN_SK;
use shared::persist;
use shared::ports::{Condition, KvError};

use super::answers::answers;
use super::budget::{Budget, destination_key, unknown_login_budget_key};
use super::common::{self, CodeCheck};
use crate::domain::{FlowError, account};
use crate::errors;
use crate::secrets;
use crate::store::{self, FlowKind, Level, LoginIndex};
use crate::{AppState, Tokens};

/// Exactly one of `phone` and `email`.
#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Russian mobile number in any common notation; normalised to `+7XXXXXXXXXX`.
    #[schema(value_type = Option<String>, max_length = 320, example = "+7 (999) 123-45-67")]
    phone: Option<LoginText>,
    #[schema(value_type = Option<String>, max_length = 320, example = "anna@example.ru")]
    email: Option<LoginText>,
    /// Checked against the password policy (SPEC §3.2).
    #[schema(value_type = String, max_length = 1024, format = Password, example = "Zv!ezda-Pol3")]
    password: NewPasswordText,
    #[serde(default)]
    consents: Consents,
}

/// Both must be `true`.
#[derive(Deserialize, Default, ToSchema)]
#[schema(as = RegistrationConsents)]
struct Consents {
    #[serde(default)]
    terms: bool,
    #[serde(default)]
    personal_data: bool,
}

#[derive(Serialize, ToSchema)]
pub struct FlowStarted {
    flow_id: String,
    /// Where the code went; never named for recovery flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Channel>)]
    channel: Option<&'static str>,
    expires_at: DateTime<Utc>,
}

/// The channel a one-time code goes through.
#[derive(ToSchema)]
#[schema(as = OtpChannel, rename_all = "snake_case")]
#[allow(dead_code)]
enum Channel {
    Sms,
    Email,
}

answers!(RegisterErrors = JSON_BODY, &[(400, &["consent_required", "weak_password"])], RATE_LIMITED);

/// `POST /v1/auth/register`: a code to the phone or email; a known contact gets the same
/// answer and its owner a warning instead.
#[utoipa::path(post, path = "/v1/auth/register", operation_id = "register", tag = "auth", request_body = RegisterRequest,
    responses((status = 202, description = "Code sent (or, for a known contact, the owner warned)", body = FlowStarted), RegisterErrors))]
pub async fn register(State(state): State<AppState>, ip: ClientIp, ApiJson(req): ApiJson<RegisterRequest>) -> Result<impl IntoResponse, ApiError> {
    state.limiter.hit("register-ip", &ip.0.to_string(), state.settings.register_per_ip).await?;
    let contact = match (req.phone.as_deref(), req.email.as_deref()) {
        (Some(p), None) => Destination::Sms(Phone::parse(p).map_err(|e| ApiError::validation(vec![e.field_error("phone")]))?),
        (None, Some(e)) => Destination::Email(Email::parse(e).map_err(|e| ApiError::validation(vec![e.field_error("email")]))?),
        _ => return Err(ApiError::validation(vec![FieldError::new("phone", "exactly_one_required", "Укажите либо телефон, либо адрес электронной почты")])),
    };
    if !(req.consents.terms && req.consents.personal_data) {
        return Err(errors::consent_required());
    }
    let personal = match &contact {
        Destination::Sms(p) => account::personal_data(None, Some(p), None),
        Destination::Email(e) => account::personal_data(None, None, Some(e)),
    };
    common::check_new_password(&req.password, &personal, None).await?;
    common::limit_codes_to(&state, &contact).await?;

    let known = state.kv.get(&shared::identity::login_pk(&state.index_key, account::login_of(&contact)), LOGIN_SK).await?.is_some();
    // Hash either way so a known contact costs the same time as a new one.
    let password_hash = secrets::hash_password(req.password).await.map_err(ApiError::internal)?;
    let now = state.ticker.now();
    let (flow, event) = if known {
        let (flow, _) = common::new_flow(&state, FlowKind::RegistrationDecoy, None, Some(contact.clone()), now);
        // The owner hears of it at most once an hour (SPEC §3.3); the answer is the same.
        let notify = Budget::RegistrationNotices.spend(&state, &destination_key(&contact)).await?.is_none();
        (flow, notify.then(|| common::event(&state, None, EventPayload::RegistrationAttempted { destination: contact.clone() })))
    } else {
        let (mut flow, event) = common::new_flow(&state, FlowKind::Registration, None, Some(contact.clone()), now);
        flow.password_hash = Some(password_hash);
        (flow, event)
    };
    state.relay.commit(vec![common::flow_op(&flow, Condition::NotExists)?], event.as_slice()).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(FlowStarted { flow_id: flow.flow_id, channel: Some(channel_of(&contact)), expires_at: flow.expires_at })))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = RegistrationConfirmRequest)]
pub struct ConfirmRequest {
    #[schema(value_type = String, max_length = 256)]
    flow_id: Token,
    #[schema(value_type = String, max_length = 256, example = "123456")]
    code: Token,
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    user_id: String,
    /// Always `simplified` for a new account.
    #[schema(example = "simplified")]
    level: Level,
    tokens: Tokens,
}

answers!(ConfirmErrors = JSON_BODY, ONE_TIME_CODE, &[(409, &["already_registered"])]);

/// `POST /v1/auth/register/confirm`: the code creates the account and opens a session.
#[utoipa::path(post, path = "/v1/auth/register/confirm", operation_id = "register_confirm", tag = "auth", request_body = ConfirmRequest,
    responses((status = 201, description = "Account created, signed in", body = Registered), ConfirmErrors))]
pub async fn confirm(State(state): State<AppState>, ip: ClientIp, ua: UserAgent, ApiJson(req): ApiJson<ConfirmRequest>) -> Result<impl IntoResponse, ApiError> {
    state.limiter.hit("code-confirm-ip", &ip.0.to_string(), Limit::per_minute(30)).await?;
    let now = state.ticker.now();
    let mut flow = common::load_flow(&state, &req.flow_id).await?;
    if !matches!(flow.value.kind, FlowKind::Registration | FlowKind::RegistrationDecoy) {
        return Err(FlowError::NotFound.into());
    }
    if let CodeCheck::Wrong(answer) = common::check_code(&state, &mut flow, &req.code, now).await? {
        return Err(answer.into());
    }
    let (Some(contact), Some(password_hash)) = (flow.value.destination.clone(), flow.value.password_hash.clone()) else {
        return Err(FlowError::InvalidCode.into());
    };
    let user_id = state.ticker.id();
    let login_pk = shared::identity::login_pk(&state.index_key, account::login_of(&contact));
    let account = account::registered(user_id.clone(), contact, password_hash, now);
    let client = common::client(ip, &ua);
    let (session_ops, tokens) = crate::tokens::start_session(&state, &account, vec!["pwd".into(), "otp".into()], &client, now)?;
    let mut ops = vec![
        // The flow is consumed by the same write: a second confirm finds it gone.
        common::consume_flow_op(&flow.value),
        persist::put_op(login_pk, LOGIN_SK, &LoginIndex { user_id: user_id.clone() }, Condition::NotExists, None)?,
        persist::put_op(store::user_pk(&user_id), store::ACCOUNT_SK, &account, Condition::NotExists, None)?,
    ];
    ops.extend(session_ops);
    match state.relay.commit(ops, &[]).await {
        Ok(()) => {}
        Err(KvError::TransactionConflict { index: Some(1) }) => return Err(FlowError::AlreadyRegistered.into()),
        Err(e) if persist::is_conflict(&e) => return Err(FlowError::NotFound.into()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user_id = %user_id, "account registered");
    Ok((StatusCode::CREATED, ApiJson(Registered { user_id, level: account.level, tokens })))
}

#[derive(Deserialize, ToSchema)]
pub struct ResendRequest {
    #[schema(value_type = String, max_length = 256)]
    flow_id: Token,
}

answers!(ResendErrors = JSON_BODY, &[(409, &["resend_unavailable"]), (410, &["otp_expired"])], RATE_LIMITED);

/// A new code for a registration, recovery or SMS login flow: no sooner than the resend
/// interval, within the hourly cap per destination; the account's failure counters stay.
#[utoipa::path(post, path = "/v1/auth/otp/resend", operation_id = "otp_resend", tag = "auth", request_body = ResendRequest,
    responses((status = 202, description = "A new code sent; the flow's expiry moved", body = FlowStarted), ResendErrors))]
pub async fn resend(State(state): State<AppState>, ApiJson(req): ApiJson<ResendRequest>) -> Result<impl IntoResponse, ApiError> {
    let now = state.ticker.now();
    let flow = common::load_flow(&state, &req.flow_id).await?;
    let mut next = flow.value.clone();
    next.may_resend(now, chrono::Duration::from_std(state.settings.otp_resend).unwrap_or_default())?;
    // Real and decoy flows of one kind pass the same limits and answer alike.
    let sends = match (next.kind, &next.destination) {
        (FlowKind::Recovery | FlowKind::RecoveryDecoy, destination) => {
            let key = next.limit_key.clone().unwrap_or_else(|| next.flow_id.clone());
            state.limiter.hit("recover-login", &key, Limit::per_hour(state.settings.codes_per_destination_hourly)).await?;
            match destination {
                Some(d) if next.kind == FlowKind::Recovery => common::may_send_code(&state, d).await?,
                // A decoy spends a budget of its own, so both cost the same.
                _ => {
                    Budget::Codes.spend(&state, &unknown_login_budget_key(&key)).await?;
                    false
                }
            }
        }
        (_, Some(destination)) => {
            common::limit_codes_to(&state, destination).await?;
            next.kind.sends_code()
        }
        (_, None) => false,
    };
    let ttl = chrono::Duration::from_std(state.settings.otp_ttl).unwrap_or_default();
    let events: Vec<Event> = next.resend(now, ttl, sends).map(|p| common::event(&state, next.user_id.as_deref(), p)).into_iter().collect();
    match state.relay.commit(vec![common::flow_op(&next, flow.unchanged())?], &events).await {
        Ok(()) => {}
        // Another resend won the race: this one comes too soon after it.
        Err(e) if persist::is_conflict(&e) => return Err(ApiError::rate_limited(state.settings.otp_resend.as_secs())),
        Err(e) => return Err(e.into()),
    }
    let channel = next.destination.as_ref().filter(|_| next.kind.names_channel()).map(channel_of);
    Ok((StatusCode::ACCEPTED, ApiJson(FlowStarted { flow_id: next.flow_id, channel, expires_at: next.expires_at })))
}

pub fn channel_of(destination: &Destination) -> &'static str {
    match destination {
        Destination::Sms(_) => "sms",
        Destination::Email(_) => "email",
    }
}

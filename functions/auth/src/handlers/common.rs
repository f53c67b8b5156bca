//! Steps the handlers share: committing a change with its events, one-time-code flows,
//! resolving logins, the current session, login history.

use chrono::{DateTime, Utc};

use shared::domain::{Email, FieldError, Phone, Snils};
use shared::events::{Destination, Event, EventPayload, OtpPurpose};
use shared::http::{ApiError, Authenticated, ClientIp, UserAgent};
use shared::outbox;
use shared::ports::{Condition, KvError, TxOp};

use super::budget::{Budget, destination_key};
use crate::AuthState;
use crate::errors;
use crate::secrets;
use crate::store::{self, Account, AttemptResult, Flow, FlowKind, LoginAttempt, LoginIndex, Session, Versioned};
use crate::tokens::{self, Client};

shared::problems!(
    /// The answers of a route that needs only a live session: a missing, invalid or expired
    /// access token, or a session that has ended.
    pub Unauthenticated { 401 => ["unauthorized", "invalid_token", "session_expired"] }
);

/// Commits `ops` together with the outbox items of `events`, then relays the events.
/// A failed condition surfaces as `KvError::TransactionConflict` for the caller to map.
pub async fn commit(state: &AuthState, mut ops: Vec<TxOp>, events: Vec<Event>) -> Result<(), KvError> {
    for event in &events {
        ops.push(outbox::stage(event)?);
    }
    state.kv.transact(ops).await?;
    state.relay.publish(&events).await;
    Ok(())
}

pub fn client(ip: ClientIp, ua: &UserAgent) -> Client {
    Client { ip: ip.0.to_string(), user_agent: ua.0.clone() }
}

/// The index keys a login as typed (phone, email or SNILS) may name. Eleven bare digits can
/// be both a phone and a SNILS, so both are tried; anything unparseable names no account.
pub fn login_candidates(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if raw.contains('@') {
        return Email::parse(raw).ok().map(|e| e.as_str().to_owned()).into_iter().collect();
    }
    let mut out = Vec::new();
    if let Ok(phone) = Phone::parse(raw) {
        out.push(phone.as_str().to_owned());
    }
    if let Ok(snils) = Snils::parse(raw) {
        out.push(format!("snils:{}", snils.digits()));
    }
    out
}

/// The key per-login limits count under: the first candidate, or the raw text folded.
pub fn login_limit_key(raw: &str, candidates: &[String]) -> String {
    candidates.first().cloned().unwrap_or_else(|| raw.trim().to_lowercase())
}

pub async fn find_account(state: &AuthState, candidates: &[String]) -> Result<Option<Versioned<Account>>, ApiError> {
    for login in candidates {
        if let Some(index) = store::get::<LoginIndex>(state.kv.as_ref(), &shared::identity::login_pk(&state.index_key, login), "LOGIN").await? {
            return Ok(store::account(state.kv.as_ref(), &index.value.user_id).await?);
        }
    }
    Ok(None)
}

/// A fresh flow whose code (if any) goes to `destination`; returns the flow, the ops that
/// store it and the event that delivers the code.
pub fn new_flow(
    state: &AuthState,
    kind: FlowKind,
    user_id: Option<String>,
    destination: Option<Destination>,
    purpose: OtpPurpose,
    now: DateTime<Utc>,
) -> Result<(Flow, Option<Event>), ApiError> {
    let flow_id = ulid::Ulid::new().to_string();
    let expires_at = now + chrono::Duration::from_std(state.settings.otp_ttl).unwrap_or_default();
    let sends_code = matches!(kind, FlowKind::Registration | FlowKind::Recovery | FlowKind::LoginMfa) && destination.is_some();
    let (code_hash, event) = if sends_code {
        let code = secrets::new_code();
        let hash = secrets::code_hash(&flow_id, &code);
        let event = destination.clone().map(|d| Event::new(user_id.clone(), EventPayload::OtpIssued { destination: d, code, purpose, expires_at }));
        (Some(hash), event)
    } else {
        (None, None)
    };
    let flow = Flow {
        flow_id,
        kind,
        user_id,
        destination,
        code_hash,
        wrong_attempts: 0,
        code_issued_at: now,
        expires_at,
        password_hash: None,
        methods: Vec::new(),
        limit_key: None,
    };
    Ok((flow, event))
}

/// Flows outlive their code by a day so late or repeated confirmations get `otp_expired`.
pub fn flow_op(flow: &Flow, condition: Condition) -> Result<TxOp, KvError> {
    store::put_op(store::flow_pk(&flow.flow_id), "FLOW", flow, condition, Some(flow.expires_at.timestamp() + 86_400))
}

/// At most `codes_per_destination_hourly` codes to one phone or email in any hour, whatever
/// the purpose (SPEC §3.3); 429 `rate_limited` past it.
pub async fn limit_codes_to(state: &AuthState, destination: &Destination) -> Result<(), ApiError> {
    match Budget::Codes.spend(state, &destination_key(destination), Utc::now()).await? {
        None => Ok(()),
        Some(retry_after) => Err(ApiError::rate_limited(retry_after)),
    }
}

/// Like `limit_codes_to`, but reports an exhausted budget as `false` instead of an error,
/// for paths that must answer the same whether or not a code goes out.
pub async fn may_send_code(state: &AuthState, destination: &Destination) -> Result<bool, ApiError> {
    Ok(Budget::Codes.spend(state, &destination_key(destination), Utc::now()).await?.is_none())
}

pub async fn load_flow(state: &AuthState, flow_id: &str) -> Result<Versioned<Flow>, ApiError> {
    if flow_id.len() > 64 {
        return Err(errors::flow_not_found());
    }
    store::get::<Flow>(state.kv.as_ref(), &store::flow_pk(flow_id), "FLOW").await?.ok_or_else(errors::flow_not_found)
}

/// How checking a code against a flow ended.
pub enum CodeCheck {
    Valid,
    /// Wrong code; the flow was updated with the new attempt count.
    Wrong {
        attempts_exceeded: bool,
    },
}

/// Checks `code` against the flow's code: expiry (410), dead code (429), then counts the
/// attempt *before* answering, conditionally on the flow's version, so parallel guesses can
/// neither skip the count nor learn from a lost race which guess was right. Decoy flows
/// never match but count attempts the same way.
pub async fn check_code(state: &AuthState, flow: &mut Versioned<Flow>, code: &str, now: DateTime<Utc>) -> Result<CodeCheck, ApiError> {
    let presented = secrets::code_hash(&flow.value.flow_id, code.trim());
    // Compared against the flow as it is when the attempt is written (a resend may have
    // replaced the code meanwhile). A matching code is recorded too (same write, same cost).
    let wrong = record_attempt(state, flow, now, |f| !f.code_hash.as_deref().is_some_and(|h| secrets::ct_eq(h, &presented))).await?;
    Ok(if wrong { CodeCheck::Wrong { attempts_exceeded: flow.value.wrong_attempts >= state.settings.max_code_attempts } } else { CodeCheck::Valid })
}

/// Counts one guess of a second factor checked outside the flow (TOTP or a backup code in
/// recovery, SPEC §3.3) before it is compared, so those guesses share the flow's budget.
pub async fn count_guess(state: &AuthState, flow: &mut Versioned<Flow>, now: DateTime<Utc>) -> Result<(), ApiError> {
    record_attempt(state, flow, now, |_| true).await.map(|_| ())
}

/// Writes one attempt on the flow (a wrong one, as `is_wrong` judges the flow read, adds to
/// its count) unless the flow expired (410) or its attempts are spent (429); answers whether
/// it was wrong. On a lost race the flow is re-read and the attempt judged and counted again,
/// never skipped.
async fn record_attempt(state: &AuthState, flow: &mut Versioned<Flow>, now: DateTime<Utc>, is_wrong: impl Fn(&Flow) -> bool) -> Result<bool, ApiError> {
    for _ in 0..ATTEMPT_RETRIES {
        if now > flow.value.expires_at {
            return Err(errors::otp_expired());
        }
        if flow.value.wrong_attempts >= state.settings.max_code_attempts {
            return Err(errors::otp_attempts_exceeded());
        }
        let wrong = is_wrong(&flow.value);
        let mut counted = flow.value.clone();
        counted.wrong_attempts += u32::from(wrong);
        match state.kv.transact(vec![flow_op(&counted, Condition::VersionIs(flow.version))?]).await {
            Ok(()) => {
                flow.value = counted;
                flow.version += 1;
                return Ok(wrong);
            }
            Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => {
                *flow = load_flow(state, &flow.value.flow_id).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Could not record the attempt: refuse to evaluate the code at all.
    Err(ApiError::rate_limited(1))
}

/// Retries of a counted attempt under contention; each round re-reads the flow.
const ATTEMPT_RETRIES: usize = 50;

/// Consumes a flow whose code was accepted: any live flow item (attempt counts may have moved
/// since), once — a second consumer finds it gone.
pub fn consume_flow_op(flow: &Flow) -> TxOp {
    TxOp::Delete { pk: store::flow_pk(&flow.flow_id), sk: "FLOW".into(), condition: Condition::Exists }
}

pub fn wrong_code_error(check: CodeCheck) -> ApiError {
    match check {
        CodeCheck::Wrong { attempts_exceeded: true } => errors::otp_attempts_exceeded(),
        _ => errors::otp_invalid(),
    }
}

pub fn attempt_op(
    user_id: &str,
    client: &Client,
    ua: &UserAgent,
    result: AttemptResult,
    mfa_method: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TxOp, KvError> {
    attempt_op_at(store::user_pk(user_id), client, ua, result, mfa_method, now, None)
}

/// A login-history entry under `pk` (an account, or an unknown login's record).
pub fn attempt_op_at(
    pk: String,
    client: &Client,
    ua: &UserAgent,
    result: AttemptResult,
    mfa_method: Option<&str>,
    now: DateTime<Utc>,
    expires_at: Option<i64>,
) -> Result<TxOp, KvError> {
    let entry = LoginAttempt {
        at: now,
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        device_type: ua.device_type().to_owned(),
        result,
        mfa_method: mfa_method.map(str::to_owned),
    };
    store::put_op(pk, &format!("HIST#{}", ulid::Ulid::new()), &entry, Condition::NotExists, expires_at)
}

/// The caller's account and session, checked alive (SPEC §3.7); 401 `session_expired` otherwise.
pub async fn current(state: &AuthState, auth: &Authenticated) -> Result<(Versioned<Account>, Versioned<Session>), ApiError> {
    let account = store::account(state.kv.as_ref(), auth.user_id()).await?.ok_or_else(errors::session_expired)?;
    let session = store::get::<Session>(state.kv.as_ref(), &store::user_pk(auth.user_id()), &store::session_sk(auth.session_id()))
        .await?
        .ok_or_else(errors::session_expired)?;
    tokens::check_session(state, &account.value, &session.value, Utc::now())?;
    Ok((account, session))
}

pub fn account_op(account: &Versioned<Account>) -> Result<TxOp, KvError> {
    store::put_op(store::user_pk(&account.value.user_id), store::ACCOUNT_SK, &account.value, Condition::VersionIs(account.version), None)
}

/// Password policy (SPEC §3.2) including reuse of the current or the last four passwords.
pub async fn check_new_password(raw: &str, personal: &shared::domain::PersonalData, account: Option<&Account>) -> Result<(), ApiError> {
    let mut broken = match shared::domain::Password::parse(raw, personal) {
        Ok(_) => Vec::new(),
        Err(rules) => rules,
    };
    if let Some(account) = account {
        let history = std::iter::once(account.password_hash.clone()).chain(account.previous_password_hashes.iter().cloned());
        for phc in history {
            if secrets::verify_password(raw.to_owned(), phc).await {
                broken.push(shared::domain::PasswordRule::Reused);
                break;
            }
        }
    }
    if broken.is_empty() {
        return Ok(());
    }
    let errors = broken.iter().map(|r| FieldError::new("password", r.code(), r.message())).collect();
    Err(ApiError::new(axum::http::StatusCode::BAD_REQUEST, "weak_password", "Пароль не соответствует требованиям безопасности").with_errors(errors))
}

/// What the policy must not find inside a password.
pub fn personal_data(account: Option<&Account>, phone: Option<&str>, email: Option<&str>) -> shared::domain::PersonalData {
    let phone = phone.map(str::to_owned).or_else(|| account.and_then(|a| a.phone.clone()));
    let email = email.map(str::to_owned).or_else(|| account.and_then(|a| a.email.clone()));
    let profile = account.and_then(|a| a.profile.as_ref());
    shared::domain::PersonalData {
        phone_digits: phone.map(|p| p.chars().filter(char::is_ascii_digit).collect()),
        email_local_part: email.and_then(|e| e.split('@').next().map(str::to_owned)),
        first_name: profile.map(|p| p.first_name.clone()),
        last_name: profile.map(|p| p.last_name.clone()),
        middle_name: profile.and_then(|p| p.middle_name.clone()),
        birth_date: profile.map(|p| p.birth_date),
    }
}

/// Conditional writes on one counter under contention: each round re-reads it.
pub const COUNTER_RETRIES: usize = 50;

/// Reads the item at `pk`/`sk` (its `Default` when absent), lets `change` edit it and writes it
/// back conditionally on the version read, expiring at `expires_at`, with `also` in the same
/// transaction. A lost race re-reads and tries again (then 429). `change` answering `Err`
/// stops without writing and hands the `Err` back.
pub async fn update_item<T, E>(
    state: &AuthState,
    pk: &str,
    sk: &str,
    expires_at: i64,
    also: &[TxOp],
    change: impl Fn(&mut T) -> Result<(), E>,
) -> Result<Result<(), E>, ApiError>
where
    T: Default + serde::Serialize + for<'de> serde::Deserialize<'de>,
{
    for _ in 0..COUNTER_RETRIES {
        let (mut value, condition) = match store::get::<T>(state.kv.as_ref(), pk, sk).await? {
            Some(read) => (read.value, Condition::VersionIs(read.version)),
            None => (T::default(), Condition::NotExists),
        };
        if let Err(stop) = change(&mut value) {
            return Ok(Err(stop));
        }
        let mut ops = vec![store::put_op(pk.to_owned(), sk, &value, condition, Some(expires_at))?];
        ops.extend_from_slice(also);
        match state.kv.transact(ops).await {
            Ok(()) => return Ok(Ok(())),
            Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::rate_limited(1))
}

/// Retries a read-modify-write on version conflicts (a few times; then the caller sees 409).
pub const MAX_RETRIES: usize = 5;

pub fn busy() -> ApiError {
    errors::conflict("concurrent_update", "Запрос конфликтует с другим изменением, повторите попытку")
}

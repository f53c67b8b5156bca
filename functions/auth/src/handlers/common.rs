//! Steps the handlers share: committing a round of an optimistic write, one-time-code flows,
//! resolving logins, the current session, login history, account writes.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use shared::domain::{Email, FieldError, PersonalData, Phone, Snils};
use shared::events::{Destination, Event, EventPayload};
use shared::http::{ApiError, Authenticated, ClientIp, UserAgent};
use shared::identity::LOGIN_SK;
use shared::persist::{self, Attempt, Versioned};
use shared::ports::{Condition, KvError, TxOp};

use super::answers::answers;
use super::budget::{Budget, destination_key};
use crate::AuthState;
use crate::domain::FlowError;
use crate::errors::{self, CounterError};
use crate::secrets;
use crate::store::{self, Account, AttemptResult, Flow, FlowKind, LoginAttempt, LoginIndex, Session};
use crate::tokens::{self, Client};

answers!(
    /// The answers of a route that needs only a live session: a missing, invalid or expired
    /// access token, or a session that has ended.
    pub Unauthenticated = SESSION
);

answers!(
    /// The answers of a list behind a session: its paging parameters may be invalid too.
    pub ListErrors = SESSION, &[(400, &["validation_failed"])]
);

/// One round of an optimistic write: commits `ops` with the outbox items of `events` (then
/// relays them) and answers `value`, or `Conflict` when a condition no longer held.
pub async fn commit<T>(state: &AuthState, ops: Vec<TxOp>, events: &[Event], value: T) -> Result<Attempt<T>, KvError> {
    settle(state.relay.commit(ops, events).await, value)
}

pub use shared::persist::settle;

/// An event about `user_id`, stamped by the function's ticker.
pub fn event(state: &AuthState, user_id: Option<&str>, payload: EventPayload) -> Event {
    Event::new(&state.ticker, user_id.map(str::to_owned), payload)
}

/// A value read before a retried round: the first round uses it, later ones read afresh.
pub struct FirstRead<T>(Mutex<Option<T>>);

impl<T> FirstRead<T> {
    pub fn new(value: T) -> Self {
        Self(Mutex::new(Some(value)))
    }

    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

pub fn client(ip: ClientIp, ua: &UserAgent) -> Client {
    Client { ip: ip.0.to_string(), user_agent: ua.0.clone() }
}

/// The index keys a login as typed (phone, email or SNILS) may name. Eleven bare digits can
/// be both a phone and a SNILS, so both are tried; anything unparseable names no account.
pub fn login_candidates(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if raw.contains('@') {
        return Email::parse(raw).ok().map(String::from).into_iter().collect();
    }
    let phone = Phone::parse(raw).ok().map(String::from);
    let snils = Snils::parse(raw).ok().map(|s| shared::identity::snils_login(&s));
    phone.into_iter().chain(snils).collect()
}

/// The key per-login limits count under: the first candidate, or the raw text folded.
pub fn login_limit_key(raw: &str, candidates: &[String]) -> String {
    candidates.first().cloned().unwrap_or_else(|| raw.trim().to_lowercase())
}

pub async fn find_account(state: &AuthState, candidates: &[String]) -> Result<Option<Versioned<Account>>, ApiError> {
    for login in candidates {
        if let Some(index) = persist::get::<LoginIndex>(state.kv.as_ref(), &shared::identity::login_pk(&state.index_key, login), LOGIN_SK).await? {
            return Ok(store::account(state.kv.as_ref(), &index.value.user_id).await?);
        }
    }
    Ok(None)
}

/// A fresh flow of `kind` whose code (if it sends one) goes to `destination`, and the event
/// that delivers the code.
pub fn new_flow(state: &AuthState, kind: FlowKind, user_id: Option<String>, destination: Option<Destination>, now: DateTime<Utc>) -> (Flow, Option<Event>) {
    let ttl = chrono::Duration::from_std(state.settings.otp_ttl).unwrap_or_default();
    let (flow, payload) = Flow::open(state.ticker.id(), kind, user_id, destination, now, ttl);
    let event = payload.map(|p| event(state, flow.user_id.as_deref(), p));
    (flow, event)
}

/// Flows outlive their code by a day so late or repeated confirmations get `otp_expired`.
pub fn flow_op(flow: &Flow, condition: Condition) -> Result<TxOp, KvError> {
    persist::put_op(store::flow_pk(&flow.flow_id), "FLOW", flow, condition, Some(flow.expires_at.timestamp() + 86_400))
}

/// At most `codes_per_destination_hourly` codes to one phone or email in any hour, whatever
/// the purpose (SPEC §3.3); 429 `rate_limited` past it.
pub async fn limit_codes_to(state: &AuthState, destination: &Destination) -> Result<(), ApiError> {
    match Budget::Codes.spend(state, &destination_key(destination)).await? {
        None => Ok(()),
        Some(retry_after) => Err(ApiError::rate_limited(retry_after)),
    }
}

/// Like `limit_codes_to`, but reports an exhausted budget as `false` instead of an error,
/// for paths that must answer the same whether or not a code goes out.
pub async fn may_send_code(state: &AuthState, destination: &Destination) -> Result<bool, ApiError> {
    Ok(Budget::Codes.spend(state, &destination_key(destination)).await?.is_none())
}

pub async fn load_flow(state: &AuthState, flow_id: &str) -> Result<Versioned<Flow>, ApiError> {
    if flow_id.len() > 64 {
        return Err(FlowError::NotFound.into());
    }
    Ok(persist::get::<Flow>(state.kv.as_ref(), &store::flow_pk(flow_id), "FLOW").await?.ok_or(FlowError::NotFound)?)
}

/// How checking a code against a flow ended.
pub enum CodeCheck {
    Valid,
    /// Wrong code, counted on the flow; the error to answer with.
    Wrong(FlowError),
}

/// Checks `code` against the flow's code: expiry (410), dead code (429), then counts the
/// attempt *before* answering, conditionally on the flow's version, so parallel guesses can
/// neither skip the count nor learn from a lost race which guess was right. Decoy flows
/// never match but count attempts the same way.
pub async fn check_code(state: &AuthState, flow: &mut Versioned<Flow>, code: &str, now: DateTime<Utc>) -> Result<CodeCheck, ApiError> {
    // Judged against the flow as it is when the attempt is written (a resend may have
    // replaced the code meanwhile). A matching code is recorded too (same write, same cost).
    let wrong = record_attempt(state, flow, now, |f| !f.code_matches(code)).await?;
    Ok(if wrong { CodeCheck::Wrong(flow.value.wrong_code(state.settings.max_code_attempts)) } else { CodeCheck::Valid })
}

/// Counts one guess of a second factor checked outside the flow (TOTP or a backup code in
/// recovery, SPEC §3.3) before it is compared, so those guesses share the flow's budget.
pub async fn count_guess(state: &AuthState, flow: &mut Versioned<Flow>, now: DateTime<Utc>) -> Result<(), ApiError> {
    record_attempt(state, flow, now, |_| true).await.map(|_| ())
}

/// Writes one attempt on the flow (a wrong one, as `is_wrong` judges the flow, adds to its
/// count) unless the flow expired (410) or its attempts are spent (429); answers whether it
/// was wrong. On a lost race the flow is re-read and the attempt judged and counted again,
/// never skipped; one that cannot be counted is not judged at all (429).
async fn record_attempt(state: &AuthState, flow: &mut Versioned<Flow>, now: DateTime<Utc>, is_wrong: impl Fn(&Flow) -> bool) -> Result<bool, ApiError> {
    let flow_id = flow.value.flow_id.clone();
    let first = FirstRead::new(flow.clone());
    let (written, wrong) = persist::retry(|| async {
        let mut read = match first.take() {
            Some(read) => read,
            None => load_flow(state, &flow_id).await?,
        };
        let mut counted = read.value.clone();
        let wrong = counted.count_attempt(now, state.settings.max_code_attempts, &is_wrong)?;
        let op = flow_op(&counted, read.unchanged())?;
        read.written(counted);
        Ok::<_, CounterError>(commit(state, vec![op], &[], (read, wrong)).await?)
    })
    .await?;
    *flow = written;
    Ok(wrong)
}

/// Consumes a flow whose code was accepted: any live flow item (attempt counts may have moved
/// since), once — a second consumer finds it gone.
pub fn consume_flow_op(flow: &Flow) -> TxOp {
    TxOp::Delete { pk: store::flow_pk(&flow.flow_id), sk: "FLOW".into(), condition: Condition::Exists }
}

/// A login-history entry for an account.
pub fn attempt_op(state: &AuthState, user_id: &str, client: &Client, ua: &UserAgent, result: AttemptResult, mfa_method: Option<&str>) -> Result<TxOp, KvError> {
    attempt_op_at(state, store::user_pk(user_id), client, ua, result, mfa_method, None)
}

/// A login-history entry under `pk` (an account, or an unknown login's record).
pub fn attempt_op_at(
    state: &AuthState,
    pk: String,
    client: &Client,
    ua: &UserAgent,
    result: AttemptResult,
    mfa_method: Option<&str>,
    expires_at: Option<i64>,
) -> Result<TxOp, KvError> {
    let entry = LoginAttempt {
        at: state.ticker.now(),
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        device_type: ua.device_type(),
        result,
        mfa_method: mfa_method.map(str::to_owned),
    };
    persist::put_op(pk, format!("HIST#{}", state.ticker.id()), &entry, Condition::NotExists, expires_at)
}

/// The caller's account and session, checked alive (SPEC §3.7); 401 `session_expired` otherwise.
pub async fn current(state: &AuthState, auth: &Authenticated) -> Result<(Versioned<Account>, Versioned<Session>), ApiError> {
    let account = store::account(state.kv.as_ref(), auth.user_id()).await?.ok_or_else(errors::session_expired)?;
    let session = persist::get::<Session>(state.kv.as_ref(), &store::user_pk(auth.user_id()), &store::session_sk(auth.session_id()))
        .await?
        .ok_or_else(errors::session_expired)?;
    tokens::check_session(state, &account.value, &session.value, state.ticker.now())?;
    Ok((account, session))
}

/// Writes `account` back if it is still as read.
pub fn account_op(read: &Versioned<Account>, account: &Account) -> Result<TxOp, KvError> {
    persist::put_op(store::user_pk(&account.user_id), store::ACCOUNT_SK, account, read.unchanged(), None)
}

/// Read-modify-write of the caller's account under the retry policy: `change` may refuse, or
/// name an event to send with the write. Answers the account as written.
pub async fn update_account<E>(
    state: &AuthState,
    auth: &Authenticated,
    change: impl Fn(&mut Account) -> Result<Option<EventPayload>, E>,
) -> Result<Account, ApiError>
where
    ApiError: From<E>,
{
    persist::retry(|| async {
        let (read, _) = current(state, auth).await?;
        let mut account = read.value.clone();
        let events: Vec<Event> = change(&mut account)?.into_iter().map(|p| event(state, Some(auth.user_id()), p)).collect();
        let op = account_op(&read, &account)?;
        Ok::<_, ApiError>(commit(state, vec![op], &events, account).await?)
    })
    .await
}

/// Password policy (SPEC §3.2) including reuse of the current or the last four passwords.
pub async fn check_new_password(raw: &str, personal: &PersonalData, account: Option<&Account>) -> Result<(), ApiError> {
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

//! Password recovery, which is also the only way to unlock an account (SPEC §3.6).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use shared::domain::{FieldError, LoginText, NewPasswordText, Token};
use shared::events::{Destination, EventPayload};
use shared::http::rate_limit::Limit;
use shared::http::{ApiError, ApiJson, ClientIp, UserAgent};
use shared::persist;
use shared::ports::{Condition, KvError};

use super::answers::answers;
use super::budget::{Budget, unknown_login_budget_key};
use super::common::{self, CodeCheck};
use super::login::{record_failure, totp_or_backup_code};
use crate::AppState;
use crate::domain::login::Counted;
use crate::domain::{FlowError, account};
use crate::secrets;
use crate::store::{self, AttemptResult, FlowKind};

#[derive(Deserialize, ToSchema)]
pub struct RecoverRequest {
    /// A phone, an email or a SNILS.
    #[schema(value_type = String, max_length = 320, example = "anna@example.ru")]
    login: LoginText,
}

#[derive(Serialize, ToSchema)]
pub struct RecoverStarted {
    flow_id: String,
}

answers!(RecoverErrors = JSON_BODY, RATE_LIMITED);

/// Always 202 with a flow id: an unknown login gets a decoy flow that no code completes.
#[utoipa::path(post, path = "/v1/auth/password/recover", operation_id = "password_recover", tag = "auth", request_body = RecoverRequest,
    responses((status = 202, description = "A code went to the account's contact, if there is such an account", body = RecoverStarted), RecoverErrors))]
pub async fn recover(State(state): State<AppState>, ip: ClientIp, ApiJson(req): ApiJson<RecoverRequest>) -> Result<impl IntoResponse, ApiError> {
    state.limiter.hit("recover-ip", &ip.0.to_string(), state.settings.recover_per_ip).await?;
    let now = state.ticker.now();
    let candidates = common::login_candidates(&req.login);
    let limit_key = common::login_limit_key(&req.login, &candidates);
    // Counted per login as typed, known or not, so the answers cannot tell them apart.
    state.limiter.hit("recover-login", &limit_key, Limit::per_hour(state.settings.codes_per_destination_hourly)).await?;
    let account = common::find_account(&state, &candidates).await?;
    let destination = account.as_ref().and_then(|a| a.value.recovery_destination());
    // A login that names no account (or no contact) does the same reads and writes and
    // publishes an event of the same size, so neither the answer nor its timing tells.
    let (mut flow, event) = match (&account, destination) {
        (Some(a), Some(d)) if common::may_send_code(&state, &d).await? => {
            common::new_flow(&state, FlowKind::Recovery, Some(a.value.user_id.clone()), Some(d), now)
        }
        (account, _) => {
            if account.is_none() {
                super::unknown::read_record(&state, &limit_key).await?;
                Budget::Codes.spend(&state, &unknown_login_budget_key(&limit_key)).await?;
            }
            let (flow, _) = common::new_flow(&state, FlowKind::RecoveryDecoy, None, None, now);
            let unmatched = common::event(&state, None, EventPayload::RecoveryUnmatched { flow_id: flow.flow_id.clone() });
            (flow, Some(unmatched))
        }
    };
    flow.limit_key = Some(limit_key);
    state.relay.commit(vec![common::flow_op(&flow, Condition::NotExists)?], event.as_slice()).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(RecoverStarted { flow_id: flow.flow_id })))
}

#[derive(Deserialize, ToSchema)]
pub struct RecoverConfirmRequest {
    #[schema(value_type = String, max_length = 256)]
    flow_id: Token,
    #[schema(value_type = String, max_length = 256, example = "123456")]
    code: Token,
    /// Checked against the password policy (SPEC §3.2), the last five passwords included.
    #[schema(value_type = String, max_length = 1024, format = Password)]
    new_password: NewPasswordText,
    /// Required when the account has TOTP: a TOTP code or a backup code.
    #[schema(value_type = Option<String>, max_length = 256)]
    totp_code: Option<Token>,
}

answers!(RecoverConfirmErrors = JSON_BODY, ONE_TIME_CODE, &[(400, &["weak_password"])], CONTENDED);

/// `POST /v1/auth/password/recover/confirm`: sets the password, unlocks the account and ends
/// every session.
#[utoipa::path(post, path = "/v1/auth/password/recover/confirm", operation_id = "password_recover_confirm", tag = "auth", request_body = RecoverConfirmRequest,
    responses((status = 204, description = "Password set, account unlocked, sessions revoked"), RecoverConfirmErrors))]
pub async fn confirm(
    State(state): State<AppState>,
    ip: ClientIp,
    ua: UserAgent,
    ApiJson(req): ApiJson<RecoverConfirmRequest>,
) -> Result<impl IntoResponse, ApiError> {
    state.limiter.hit("code-confirm-ip", &ip.0.to_string(), Limit::per_minute(30)).await?;
    let now = state.ticker.now();
    let mut flow = common::load_flow(&state, &req.flow_id).await?;
    if !matches!(flow.value.kind, FlowKind::Recovery | FlowKind::RecoveryDecoy) {
        return Err(FlowError::NotFound.into());
    }
    let client = common::client(ip, &ua);
    if let CodeCheck::Wrong(answer) = common::check_code(&state, &mut flow, &req.code, now).await? {
        // A wrong recovery code counts against the account like one at login (SPEC §3.3);
        // a decoy flow writes the same to its unknown login's record.
        let channel = match flow.value.destination {
            Some(Destination::Email(_)) => "email",
            _ => "sms",
        };
        match (&flow.value.user_id, &flow.value.limit_key) {
            (Some(user_id), _) => {
                let _ = record_failure(&state, user_id, &client, &ua, AttemptResult::WrongCode, Some(channel), Counted::No).await;
            }
            (None, Some(limit_key)) => super::unknown::failed_code(&state, limit_key, &client, &ua).await,
            (None, None) => {}
        }
        return Err(answer.into());
    }
    let user_id = flow.value.user_id.clone().ok_or(FlowError::InvalidCode)?;
    let account = store::account(state.kv.as_ref(), &user_id).await?.ok_or(FlowError::NotFound)?;
    common::check_new_password(&req.new_password, &account::personal_data(Some(&account.value), None, None), Some(&account.value)).await?;
    if account.value.totp_enabled() {
        let Some(totp_code) = req.totp_code.as_deref() else {
            return Err(ApiError::validation(vec![FieldError::new("totp_code", "required", "Введите код из приложения-аутентификатора или резервный код")]));
        };
        // Counted before comparing, like a wrong code at login (SPEC §3.3): the flow's budget
        // and the account's failure counter both see every guess.
        common::count_guess(&state, &mut flow, now).await?;
        let (accepted, method) = totp_or_backup_code(&state, &account, totp_code, now).await?;
        if !accepted {
            // The account's counter may lock it (its owner is told), but recovery is the way
            // out of a lock, so the answer stays about the code.
            let _ = record_failure(&state, &user_id, &client, &ua, AttemptResult::WrongCode, Some(method.as_str()), Counted::No).await;
            return Err(flow.value.wrong_code(state.settings.max_code_attempts).into());
        }
    }
    let new_hash = secrets::hash_password(req.new_password).await.map_err(ApiError::internal)?;
    persist::retry(|| async {
        let read = store::account(state.kv.as_ref(), &user_id).await?.ok_or(FlowError::NotFound)?;
        let mut account = read.value.clone();
        let changed = account::recover(&mut account, new_hash.clone(), state.ticker.now());
        let ops = vec![common::consume_flow_op(&flow.value), common::account_op(&read, &account)?];
        let committed = state.relay.commit(ops, &[common::event(&state, Some(&user_id), changed)]).await;
        // The flow is gone: another confirmation used it.
        if let Err(KvError::TransactionConflict { index: Some(0) }) = committed {
            return Err(FlowError::NotFound.into());
        }
        Ok::<_, ApiError>(common::settle(committed, ())?)
    })
    .await?;
    crate::tokens::delete_sessions(&state, &user_id, None).await;
    tracing::info!(user_id = %user_id, "password recovered; account unlocked; sessions revoked");
    Ok(StatusCode::NO_CONTENT)
}

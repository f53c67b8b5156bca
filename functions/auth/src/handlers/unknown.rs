//! Logins that name no account. They cost what a known login costs (SPEC §3.5, §3.6: same
//! answer, same timing): the same reads and writes against a record of failures kept under
//! the login's hash, and the same password hashing. The record serves ops too: it counts
//! guesses against logins that do not exist (credential stuffing) without keeping the login.

use serde::{Deserialize, Serialize};

use shared::http::{ApiError, UserAgent};
use shared::persist::{self, Versioned};
use shared::ports::TxOp;

use super::common;
use crate::domain::LoginError;
use crate::errors;
use crate::store::{self, AttemptResult};
use crate::tokens::Client;
use crate::{AuthState, secrets};

/// Failures against one unknown login (`UNKNOWN#<sha256(login)>` / `COUNTER`), kept a day.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UnknownLogin {
    pub failed_attempts: u32,
}

const SK: &str = "COUNTER";
const KEEP_SECONDS: i64 = 86_400;

fn pk(limit_key: &str) -> String {
    format!("UNKNOWN#{}", store::sha256_hex(limit_key))
}

/// A wrong password for a login that names no account: a counted attempt before hashing and a
/// recorded failure after it, as `login` does for an account.
pub async fn failed_login(state: &AuthState, limit_key: &str, password: impl Into<String>, client: &Client, ua: &UserAgent) -> ApiError {
    let outcome = async {
        count(state, limit_key, None).await?;
        secrets::burn_password_check(password).await;
        count(state, limit_key, Some(history_op(state, limit_key, client, ua, AttemptResult::WrongPassword)?)).await
    };
    match outcome.await {
        Ok(()) => LoginError::InvalidCredentials.into(),
        Err(e) => e,
    }
}

/// A wrong code in a decoy recovery flow: recorded as `record_failure` records it on an account.
pub async fn failed_code(state: &AuthState, limit_key: &str, client: &Client, ua: &UserAgent) {
    let recorded = async { count(state, limit_key, Some(history_op(state, limit_key, client, ua, AttemptResult::WrongCode)?)).await };
    if let Err(error) = recorded.await {
        tracing::warn!(code = error.code, "could not record a wrong code for an unknown login");
    }
}

/// The read a known login's account costs, for paths that only read it.
pub async fn read_record(state: &AuthState, limit_key: &str) -> Result<(), ApiError> {
    let _: Option<Versioned<UnknownLogin>> = persist::get(state.kv.as_ref(), &pk(limit_key), SK).await?;
    Ok(())
}

/// The failure as the account's login history would hold it, kept as long as the record.
fn history_op(state: &AuthState, limit_key: &str, client: &Client, ua: &UserAgent, result: AttemptResult) -> Result<TxOp, ApiError> {
    let expires_at = state.ticker.now().timestamp() + KEEP_SECONDS;
    Ok(common::attempt_op_at(state, pk(limit_key), client, ua, result, None, Some(expires_at))?)
}

/// Adds one to the record (with `also` in the same transaction), as the account's counter does.
async fn count(state: &AuthState, limit_key: &str, also: Option<TxOp>) -> Result<(), ApiError> {
    let expires_at = state.ticker.now().timestamp() + KEEP_SECONDS;
    let add_one = |record: &mut UnknownLogin| {
        record.failed_attempts = record.failed_attempts.saturating_add(1);
        Ok::<(), std::convert::Infallible>(())
    };
    // A counter too hot to write answers 429, as the account's counter does.
    errors::counted(persist::update(state.kv.as_ref(), &pk(limit_key), SK, Some(expires_at), also.as_slice(), add_one).await).map(|_| ())
}

//! What the auth function keeps in the key-value store, and how it is keyed.
//!
//! | pk                     | sk              | item                                        |
//! |------------------------|-----------------|---------------------------------------------|
//! | `USER#<user_id>`       | `ACCOUNT`       | [`Account`]                                 |
//! | `USER#<user_id>`       | `SESSION#<sid>` | [`Session`] (expires at the absolute limit)  |
//! | `USER#<user_id>`       | `HIST#<ulid>`   | [`LoginAttempt`], written once              |
//! | `LOGIN#<sha256(login)>`| `LOGIN`         | [`LoginIndex`]: which account a login names |
//! | `FLOW#<flow_id>`       | `FLOW`          | [`Flow`]: a pending one-time-code flow      |
//! | `REFRESH#<sha256(tok)>`| `REFRESH`       | [`RefreshRecord`]                           |
//!
//! Logins and refresh tokens are stored only as hashes, so keys carry no personal data or secrets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use shared::events::Destination;
use shared::persist::{self, Versioned};
use shared::ports::{KeyValue, KvError, Query};
use shared::vocabulary::{DeviceType, MfaMethod};

use crate::tokens::Client;

pub use shared::identity::{ACCOUNT_SK, Account, Level, MfaSettings, user_pk};

pub fn session_sk(session_id: &str) -> String {
    shared::records::session_key("", session_id).1
}

pub use shared::identity::LoginIndex;

pub fn flow_pk(flow_id: &str) -> String {
    format!("FLOW#{flow_id}")
}

pub fn refresh_pk(token: &str) -> String {
    format!("REFRESH#{}", sha256_hex(token))
}

pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    Registration,
    /// Registration of an already registered contact: looks the same, never completes.
    RegistrationDecoy,
    LoginMfa,
    Recovery,
    /// Recovery for an unknown login: looks the same, never completes.
    RecoveryDecoy,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flow {
    pub flow_id: String,
    pub kind: FlowKind,
    pub user_id: Option<String>,
    /// Where the current code went (none for decoys and TOTP-only logins).
    pub destination: Option<Destination>,
    /// `sha256(flow_id:code)`; none when no code was sent.
    pub code_hash: Option<String>,
    pub wrong_attempts: u32,
    pub code_issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Registration: the argon2id hash of the chosen password.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Login: the second factors offered.
    #[serde(default)]
    pub methods: Vec<MfaMethod>,
    /// Recovery: the per-login limiter key, so resends of real and decoy flows count alike.
    #[serde(default)]
    pub limit_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub user_id: String,
    /// Who opened it.
    #[serde(flatten)]
    pub client: Client,
    pub amr: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Compared with `Account::sessions_valid_from`; bumped for the session that changes the password.
    pub valid_from: DateTime<Utc>,
    /// Hash key of the refresh token currently valid for this session.
    pub refresh_pk: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub user_id: String,
    pub session_id: String,
    /// Set when the token was exchanged; presenting it again is reuse.
    pub used: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginAttempt {
    pub at: DateTime<Utc>,
    pub ip: String,
    pub user_agent: String,
    pub device_type: DeviceType,
    pub result: AttemptResult,
    pub mfa_method: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    Success,
    WrongPassword,
    Locked,
    WrongCode,
}

pub async fn account(kv: &dyn KeyValue, user_id: &str) -> Result<Option<Versioned<Account>>, KvError> {
    persist::get(kv, &user_pk(user_id), ACCOUNT_SK).await
}

pub async fn sessions(kv: &dyn KeyValue, user_id: &str) -> Result<Vec<Versioned<Session>>, KvError> {
    persist::query_all(kv, Query::partition(user_pk(user_id)).prefix("SESSION#").limit(100)).await
}

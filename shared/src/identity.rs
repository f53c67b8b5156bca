//! The citizen's identity record (the ESIA account), shared by the functions that read or
//! change it: auth (login, factors, profile), applications (level checks, registry verdicts)
//! and notifications (contacts and preferences). Stored at `USER#<user_id>` / `ACCOUNT`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Inn, Passport, Snils};
use crate::events::Destination;
use crate::ports::{KeyValue, KvError};

pub const ACCOUNT_SK: &str = "ACCOUNT";

pub fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// The login index item (`LOGIN#<sha256(login)>` / `LOGIN`, data `{"user_id"}`): which account
/// a normalised login (E.164 phone, lower-cased email, `snils:<11 digits>`) names. Hashed so
/// keys carry no personal data.
pub fn login_pk(normalised_login: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(normalised_login.as_bytes());
    format!("LOGIN#{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub const LOGIN_SK: &str = "LOGIN";

/// SNILS becomes a login once the registry agency verified it (so nobody can squat another
/// citizen's SNILS by typing it into a profile).
pub fn snils_login(snils: &Snils) -> String {
    format!("snils:{}", snils.digits())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginIndex {
    pub user_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Simplified,
    Standard,
    Confirmed,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simplified => "simplified",
            Self::Standard => "standard",
            Self::Confirmed => "confirmed",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub user_id: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub phone_confirmed: bool,
    pub email_confirmed: bool,
    pub level: Level,
    /// argon2id PHC string.
    pub password_hash: String,
    /// PHC strings of the previous passwords, newest first (at most 4; with the current one, 5).
    #[serde(default)]
    pub previous_password_hashes: Vec<String>,
    pub failed_attempts: u32,
    pub locked: bool,
    pub mfa: MfaSettings,
    #[serde(default)]
    pub profile: Option<Profile>,
    pub created_at: DateTime<Utc>,
    /// Sessions whose `valid_from` is older than this are revoked (password change, recovery).
    /// One write revokes any number of sessions, atomically with the change that causes it.
    #[serde(default)]
    pub sessions_valid_from: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MfaSettings {
    pub sms: bool,
    /// Base32 TOTP secret once enrolment is confirmed.
    #[serde(default)]
    pub totp_secret: Option<String>,
    /// Secret offered by `POST /v1/me/mfa/totp`, waiting for its first code.
    #[serde(default)]
    pub totp_pending_secret: Option<String>,
    /// The last TOTP time step accepted, so a code is single use.
    #[serde(default)]
    pub totp_last_step: Option<u64>,
    /// SHA-256 hex of unused backup codes.
    #[serde(default)]
    pub backup_code_hashes: Vec<String>,
}

impl Account {
    pub fn totp_enabled(&self) -> bool {
        self.mfa.totp_secret.is_some()
    }

    /// Second-factor methods this account can use, in SPEC order.
    pub fn mfa_methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.mfa.sms && self.phone_confirmed && self.phone.is_some() {
            methods.push("sms");
        }
        if self.totp_enabled() {
            methods.push("totp");
            if !self.mfa.backup_code_hashes.is_empty() {
                methods.push("backup_code");
            }
        }
        methods
    }

    /// Where security messages go: every confirmed contact.
    pub fn security_destinations(&self) -> Vec<Destination> {
        let mut out = Vec::new();
        if let (Some(p), true) = (&self.phone, self.phone_confirmed) {
            out.push(Destination::Sms(p.clone()));
        }
        if let (Some(e), true) = (&self.email, self.email_confirmed) {
            out.push(Destination::Email(e.clone()));
        }
        out
    }

    /// Where a recovery code goes: the confirmed phone, else the confirmed email.
    pub fn recovery_destination(&self) -> Option<Destination> {
        match (&self.phone, self.phone_confirmed, &self.email, self.email_confirmed) {
            (Some(p), true, _, _) => Some(Destination::Sms(p.clone())),
            (_, _, Some(e), true) => Some(Destination::Email(e.clone())),
            _ => None,
        }
    }
}


/// The citizen's personal data (SPEC §3.8), verified by a registry agency for `standard`.
/// Domain types re-validate on every read and mask themselves in `Debug`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub last_name: String,
    pub first_name: String,
    #[serde(default)]
    pub middle_name: Option<String>,
    pub birth_date: chrono::NaiveDate,
    pub gender: Gender,
    pub snils: Snils,
    #[serde(default)]
    pub inn: Option<Inn>,
    pub passport: Passport,
    pub verification: Verification,
    /// Why the registry agency rejected the data, when it did.
    #[serde(default)]
    pub verification_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
}

/// Where the registry agency's check of the profile stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    Pending,
    Verified,
    Rejected,
}

impl Profile {
    /// Name, birth date, SNILS and passport: changing any of them voids a verified level.
    pub fn same_core_data(&self, other: &Profile) -> bool {
        self.last_name == other.last_name
            && self.first_name == other.first_name
            && self.middle_name == other.middle_name
            && self.birth_date == other.birth_date
            && self.snils == other.snils
            && self.passport == other.passport
    }
}

/// Reads an account with its version (for a conditional write-back).
pub async fn load(kv: &dyn KeyValue, user_id: &str) -> Result<Option<(Account, u64)>, KvError> {
    match kv.get(&user_pk(user_id), ACCOUNT_SK).await? {
        Some(item) => Ok(Some((item.parse()?, item.version))),
        None => Ok(None),
    }
}

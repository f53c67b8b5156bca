//! The citizen's identity record (the ESIA account), shared by the functions that read or
//! change it: auth (login, factors, profile), applications (level checks, registry verdicts)
//! and notifications (contacts and preferences). Stored at `USER#<user_id>` / `ACCOUNT`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Email, Inn, Passport, Phone, Snils};
use crate::events::Destination;
use crate::keys::IndexKey;
use crate::ports::{KeyValue, KvError};
use crate::vocabulary::MfaMethod;

pub const ACCOUNT_SK: &str = "ACCOUNT";

pub fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// The login index item (`LOGIN#<hmac(login)>` / `LOGIN`, data `{"user_id"}`): which account
/// a normalised login (E.164 phone, lower-cased email, `snils:<11 digits>`) names. Keyed with
/// the server's index key so keys carry no personal data and a dump cannot be reversed.
pub fn login_pk(key: &IndexKey, normalised_login: &str) -> String {
    format!("LOGIN#{}", key.mac_hex("login", normalised_login))
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Simplified, Self::Standard, Self::Confirmed].into_iter().find(|l| l.as_str() == value)
    }

    /// The title citizens see.
    pub fn title(self) -> &'static str {
        match self {
            Self::Simplified => "Упрощённая",
            Self::Standard => "Стандартная",
            Self::Confirmed => "Подтверждённая",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub user_id: String,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
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
    pub fn mfa_methods(&self) -> Vec<MfaMethod> {
        let mut methods = Vec::new();
        if self.mfa.sms && self.phone_confirmed && self.phone.is_some() {
            methods.push(MfaMethod::Sms);
        }
        if self.totp_enabled() {
            methods.push(MfaMethod::Totp);
            if !self.mfa.backup_code_hashes.is_empty() {
                methods.push(MfaMethod::BackupCode);
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    pub last_name: String,
    pub first_name: String,
    #[serde(default)]
    pub middle_name: Option<String>,
    #[schema(example = "1990-04-12")]
    pub birth_date: chrono::NaiveDate,
    pub gender: Gender,
    pub snils: Snils,
    #[serde(default)]
    pub inn: Option<Inn>,
    pub passport: Passport,
    /// The registry agency's check of exactly this data.
    pub verification: Verification,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
}

/// One request to the registry agency to verify one exact profile (SPEC §3.8). A verdict must
/// name its request, and only the latest request's verdict counts, so data changed after a
/// request can never be verified by it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verification {
    pub request_id: String,
    pub status: VerificationStatus,
    /// Why the registry agency rejected the data, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    Pending,
    Verified,
    Rejected,
}

impl Verification {
    /// A new request, waiting for the registry's verdict.
    pub fn requested(request_id: String) -> Self {
        Self { request_id, status: VerificationStatus::Pending, reason: None }
    }
}

/// The registry agency's answer to a verification request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    Rejected { reason: Option<String> },
}

/// Why a verdict cannot be applied to an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerdictError {
    #[error("the citizen has no profile to verify")]
    NoProfile,
    /// The verdict names a request that is not the citizen's latest, or that was answered.
    #[error("the verdict answers an outdated request")]
    Outdated,
    /// Only a `simplified` account can become `standard` by a registry verdict.
    #[error("the account level does not allow this verdict")]
    LevelConflict(Level),
}

impl Profile {
    /// A valid example (fictitious person, checksum-valid SNILS and INN), for API examples and
    /// tests.
    pub fn example() -> Self {
        let passport = crate::domain::PassportInput {
            series: "4510".into(),
            number: "123456".into(),
            issued_at: "2010-05-20".into(),
            issued_by: "ОВД района Арбат г. Москвы".into(),
            division_code: "770-001".into(),
        };
        let updated_at = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).expect("a valid time");
        Self {
            last_name: "Иванова".into(),
            first_name: "Мария".into(),
            middle_name: Some("Петровна".into()),
            birth_date: chrono::NaiveDate::from_ymd_opt(1990, 4, 12).expect("a valid date"),
            gender: Gender::Female,
            snils: Snils::parse("112-233-445 95").expect("a valid SNILS"),
            inn: Some(Inn::parse("500100732259").expect("a valid INN")),
            passport: Passport::parse_as_of(&passport, updated_at.date_naive()).expect("a valid passport"),
            verification: Verification::requested("01JEXAMPLE0000000000000000".into()),
            updated_at,
        }
    }

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

impl Account {
    /// Applies the registry's verdict on `request_id` (SPEC §3.8, §4.4): `verified` raises
    /// `simplified` to `standard`; `rejected` records why and leaves the level. Returns the
    /// level before and after. Nothing changes on an error.
    pub fn apply_verdict(&mut self, request_id: &str, verdict: Verdict) -> Result<(Level, Level), VerdictError> {
        let level = self.level;
        let profile = self.profile.as_mut().ok_or(VerdictError::NoProfile)?;
        let pending = &profile.verification;
        if pending.status != VerificationStatus::Pending || !constant_time_eq(pending.request_id.as_bytes(), request_id.as_bytes()) {
            return Err(VerdictError::Outdated);
        }
        if level != Level::Simplified {
            return Err(VerdictError::LevelConflict(level));
        }
        match verdict {
            Verdict::Verified => {
                profile.verification.status = VerificationStatus::Verified;
                profile.verification.reason = None;
                self.level = Level::Standard;
            }
            Verdict::Rejected { reason } => {
                profile.verification.status = VerificationStatus::Rejected;
                profile.verification.reason = reason;
            }
        }
        Ok((level, self.level))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Reads an account with its version (for a conditional write-back).
pub async fn load(kv: &dyn KeyValue, user_id: &str) -> Result<Option<(Account, u64)>, KvError> {
    match kv.get(&user_pk(user_id), ACCOUNT_SK).await? {
        Some(item) => Ok(Some((item.parse()?, item.version))),
        None => Ok(None),
    }
}

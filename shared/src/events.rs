//! Domain events: the messages functions exchange through the queue.
//!
//! Events are written to the outbox in the same key-value transaction as the state change
//! that causes them (`outbox::stage`), then relayed to the queue. Consumers deduplicate by
//! `Event::id`, so a redelivered message is never applied twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Email, Phone};
use crate::ports::Ticker;
use crate::vocabulary::{ApplicationStatus, DeviceType, DocumentStatus, Level, LevelChangeReason, MfaMethod, RejectionReason};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// ULID; the idempotency key for every consumer.
    pub id: String,
    pub at: DateTime<Utc>,
    /// The citizen the event concerns, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub payload: EventPayload,
}

impl Event {
    /// A new event, stamped with the ticker's time and a fresh id.
    pub fn new(ticker: &Ticker, user_id: Option<String>, payload: EventPayload) -> Self {
        Self::at(ticker.now(), ticker.id(), user_id, payload)
    }

    pub fn at(at: DateTime<Utc>, id: String, user_id: Option<String>, payload: EventPayload) -> Self {
        Self { id, at, user_id, payload }
    }

    pub fn type_name(&self) -> &'static str {
        self.payload.type_name()
    }
}

/// Where a message goes. Deliberately not `Display`ed in logs: it is personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", content = "to", rename_all = "snake_case")]
pub enum Destination {
    Sms(Phone),
    Email(Email),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtpPurpose {
    Registration,
    Login,
    Recovery,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventPayload {
    /// A one-time code to deliver; ignores preferences. The code travels only inside the
    /// encrypted queue and is never logged.
    #[serde(rename = "auth.otp_issued")]
    OtpIssued { destination: Destination, code: String, purpose: OtpPurpose, expires_at: DateTime<Utc> },
    /// Someone tried to register an already registered phone/email.
    #[serde(rename = "auth.registration_attempted")]
    RegistrationAttempted { destination: Destination },
    /// Recovery was asked for a login that names no account (or no contact to send to); no
    /// one is told. Published so that such a request costs what a real one does (SPEC §3.6).
    #[serde(rename = "auth.recovery_unmatched")]
    RecoveryUnmatched { flow_id: String },
    #[serde(rename = "auth.account_locked")]
    AccountLocked { destinations: Vec<Destination> },
    #[serde(rename = "auth.password_changed")]
    PasswordChanged { destinations: Vec<Destination> },
    #[serde(rename = "auth.new_login")]
    NewLogin { destinations: Vec<Destination>, device_type: DeviceType, ip: String },
    #[serde(rename = "auth.mfa_changed")]
    MfaChanged { destinations: Vec<Destination>, method: MfaMethod, enabled: bool },
    /// An application moved to a new status; `status_title` is the Russian title (SPEC §4.2).
    #[serde(rename = "application.status_changed")]
    ApplicationStatusChanged {
        application_id: String,
        number: Option<String>,
        service_code: String,
        service_title: String,
        status: ApplicationStatus,
        /// The title at the time of the change (SPEC §4.2), for consumers that show it as is.
        status_title: String,
        comment: Option<String>,
    },
    #[serde(rename = "application.message")]
    ApplicationMessage { application_id: String, number: Option<String>, service_title: String, from_agency: bool, preview: String },
    /// Addressed to the registry agency, which must answer naming `request_id` (SPEC §3.8);
    /// the citizen gets an inbox note. `profile` is exactly the data to verify.
    #[serde(rename = "identity.verification_requested")]
    IdentityVerificationRequested { registry_agency_id: String, request_id: String, profile: Box<crate::identity::Profile> },
    #[serde(rename = "identity.level_changed")]
    IdentityLevelChanged { level: Level, previous_level: Level, reason: LevelChangeReason },
    /// `status` is `available` or `rejected`.
    #[serde(rename = "document.verdict")]
    DocumentVerdict { document_id: String, file_name: String, status: DocumentStatus, rejection_reason: Option<RejectionReason> },
}

impl EventPayload {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::OtpIssued { .. } => "auth.otp_issued",
            Self::RegistrationAttempted { .. } => "auth.registration_attempted",
            Self::RecoveryUnmatched { .. } => "auth.recovery_unmatched",
            Self::AccountLocked { .. } => "auth.account_locked",
            Self::PasswordChanged { .. } => "auth.password_changed",
            Self::NewLogin { .. } => "auth.new_login",
            Self::MfaChanged { .. } => "auth.mfa_changed",
            Self::ApplicationStatusChanged { .. } => "application.status_changed",
            Self::ApplicationMessage { .. } => "application.message",
            Self::IdentityVerificationRequested { .. } => "identity.verification_requested",
            Self::IdentityLevelChanged { .. } => "identity.level_changed",
            Self::DocumentVerdict { .. } => "document.verdict",
        }
    }
}

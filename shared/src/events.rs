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

/// Declares the event contract once: each payload's wire name (`type`), variant and fields.
/// Serde's adjacently tagged form (`{"type", "data"}`) and `type_name` both come from it.
macro_rules! event_payloads {
    ($($(#[$meta:meta])* $wire:literal => $variant:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty),* $(,)? }),+ $(,)?) => {
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum EventPayload {
            $($(#[$meta])* #[serde(rename = $wire)] $variant { $($(#[$fmeta])* $field: $ty),* }),+
        }

        impl EventPayload {
            /// Every event type, as it travels.
            pub const TYPE_NAMES: &'static [&'static str] = &[$($wire),+];

            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $wire),+
                }
            }
        }
    };
}

event_payloads! {
    /// A one-time code to deliver; ignores preferences. The code travels only inside the
    /// encrypted queue and is never logged.
        "auth.otp_issued" => OtpIssued { destination: Destination, code: String, purpose: OtpPurpose, expires_at: DateTime<Utc> },
    /// Someone tried to register an already registered phone/email.
        "auth.registration_attempted" => RegistrationAttempted { destination: Destination },
    /// Recovery was asked for a login that names no account (or no contact to send to); no
    /// one is told. Published so that such a request costs what a real one does (SPEC §3.6).
        "auth.recovery_unmatched" => RecoveryUnmatched { flow_id: String },
        "auth.account_locked" => AccountLocked { destinations: Vec<Destination> },
        "auth.password_changed" => PasswordChanged { destinations: Vec<Destination> },
        "auth.new_login" => NewLogin { destinations: Vec<Destination>, device_type: DeviceType, ip: String },
        "auth.mfa_changed" => MfaChanged { destinations: Vec<Destination>, method: MfaMethod, enabled: bool },
    /// An application moved to a new status; `status_title` is the Russian title (SPEC §4.2).
        "application.status_changed" => ApplicationStatusChanged {
        application_id: String,
        number: Option<String>,
        service_code: String,
        service_title: String,
        status: ApplicationStatus,
        /// The title at the time of the change (SPEC §4.2), for consumers that show it as is.
        status_title: String,
        comment: Option<String>,
    },
        "application.message" => ApplicationMessage { application_id: String, number: Option<String>, service_title: String, from_agency: bool, preview: String },
    /// Addressed to the registry agency, which must answer naming `request_id` (SPEC §3.8);
    /// the citizen gets an inbox note. `profile` is exactly the data to verify.
        "identity.verification_requested" => IdentityVerificationRequested { registry_agency_id: String, request_id: String, profile: Box<crate::identity::Profile> },
        "identity.level_changed" => IdentityLevelChanged { level: Level, previous_level: Level, reason: LevelChangeReason },
    /// `status` is `available` or `rejected`.
        "document.verdict" => DocumentVerdict { document_id: String, file_name: String, status: DocumentStatus, rejection_reason: Option<RejectionReason> },
}

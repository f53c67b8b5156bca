//! Notifications: the queue consumer that turns domain events into SMS and email.
//!
//! First cut: one-time codes and security messages (registration attempt, lockout, password
//! changed, new login, second factor changed), sent to the destinations the event names.
//! Delivery is idempotent per (event id, destination) through the [`ledger`]; a redelivered
//! message never sends twice. Destinations, codes and texts are never logged — only the event
//! id, its type, the channel and the outcome.

pub mod ledger;
pub mod sms;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use shared::events::{Destination, Event, EventPayload};
use shared::ports::kv::KeyValue;
use shared::ports::senders::{EmailSender, SendError, SmsSender};
use shared::worker::{HandlerError, MessageHandler};

pub use ledger::DEFAULT_CLAIM_LEASE;
use ledger::{Claim, Ledger, MarkerKey, channel_and_address};
pub use sms::{MAX_SMS_SEGMENTS, sms_segments};

/// Delivers the messages of one event; plug it into `shared::worker::run_consumer` (local
/// runner) or `shared::worker::sqs_batch_handler` (Lambda).
pub struct Notifier {
    ledger: Ledger,
    sms: Arc<dyn SmsSender>,
    email: Arc<dyn EmailSender>,
}

impl Notifier {
    pub fn new(kv: Arc<dyn KeyValue>, sms: Arc<dyn SmsSender>, email: Arc<dyn EmailSender>) -> Self {
        Self { ledger: Ledger::new(kv, DEFAULT_CLAIM_LEASE), sms, email }
    }

    /// Overrides how long a delivery claim holds before another attempt may take it over.
    pub fn with_claim_lease(mut self, lease: Duration) -> Self {
        self.ledger = self.ledger.with_lease(lease);
        self
    }

    /// Sends every message of `event` that has not been sent yet.
    ///
    /// Every destination is attempted even when another one fails. The result is `Retry` if any
    /// destination failed temporarily (the sent ones are skipped next time), else `Reject` if any
    /// failed for good, else success.
    pub async fn deliver(&self, event: &Event) -> Result<(), HandlerError> {
        let event_type = event.type_name();
        if let EventPayload::OtpIssued { expires_at, .. } = &event.payload
            && *expires_at <= Utc::now()
        {
            // The code is dead already; delivering it would only confuse the citizen.
            tracing::info!(event_id = %event.id, event_type, outcome = "expired", "one-time code expired before delivery; dropped");
            return Ok(());
        }
        let mut retry = false;
        let mut failed = false;
        for destination in destinations(&event.payload) {
            let (channel, _) = channel_and_address(destination);
            let outcome = self.deliver_to(event, destination).await;
            tracing::info!(event_id = %event.id, event_type, channel, outcome = outcome.as_str(), "notification delivery");
            match outcome {
                Delivery::Sent | Delivery::AlreadySent => {}
                Delivery::Busy | Delivery::TemporaryFailure | Delivery::LedgerUnavailable => retry = true,
                Delivery::PermanentFailure | Delivery::FailedBefore | Delivery::InvalidDestination => failed = true,
            }
        }
        if retry {
            Err(HandlerError::Retry(format!("{event_type} {}: a destination failed temporarily", event.id)))
        } else if failed {
            Err(HandlerError::Reject(format!("{event_type} {}: a destination failed permanently", event.id)))
        } else {
            Ok(())
        }
    }

    /// One destination: claim, send, settle.
    async fn deliver_to(&self, event: &Event, destination: &Destination) -> Delivery {
        if !is_plausible(destination) {
            return Delivery::InvalidDestination;
        }
        let key = MarkerKey::new(&event.id, destination);
        let version = match self.ledger.claim(&key).await {
            Ok(Claim::Acquired { version }) => version,
            Ok(Claim::AlreadySent) => return Delivery::AlreadySent,
            Ok(Claim::FailedBefore) => return Delivery::FailedBefore,
            Ok(Claim::HeldByAnother) => return Delivery::Busy,
            Err(error) => {
                tracing::warn!(event_id = %event.id, %error, "delivery ledger unavailable");
                return Delivery::LedgerUnavailable;
            }
        };
        // Sender errors are not logged: providers may quote the destination in them.
        match self.send(event, destination).await {
            Ok(()) => {
                if let Err(error) = self.ledger.mark_sent(&key, version).await {
                    // The message went out: report success anyway, a retry could only send it twice.
                    tracing::error!(event_id = %event.id, %error, "sent, but could not mark the delivery as sent");
                }
                Delivery::Sent
            }
            Err(SendError::Temporary(_)) => {
                if let Err(error) = self.ledger.release(&key, version).await {
                    tracing::warn!(event_id = %event.id, %error, "could not release the delivery claim; it lapses with its lease");
                }
                Delivery::TemporaryFailure
            }
            Err(SendError::Permanent(_)) => {
                if let Err(error) = self.ledger.mark_failed(&key, version).await {
                    tracing::warn!(event_id = %event.id, %error, "could not mark the delivery as failed");
                }
                Delivery::PermanentFailure
            }
        }
    }

    async fn send(&self, event: &Event, destination: &Destination) -> Result<(), SendError> {
        match destination {
            Destination::Sms(phone) => self.sms.send_sms(phone, &templates::sms_text(event)).await,
            Destination::Email(address) => {
                let message = templates::email(event);
                self.email.send_email(address, &message.subject, &message.body).await
            }
        }
    }
}

#[async_trait]
impl MessageHandler for Notifier {
    async fn handle(&self, body: &str) -> Result<(), HandlerError> {
        let event = parse_event(body)?;
        self.deliver(&event).await
    }
}

/// Parses and checks a queue message. Errors never quote the input: it holds codes and contacts.
pub fn parse_event(body: &str) -> Result<Event, HandlerError> {
    let event: Event = serde_json::from_str(body).map_err(|error| {
        HandlerError::Reject(format!("malformed event ({:?} error at line {} column {})", error.classify(), error.line(), error.column()))
    })?;
    let reject = |reason: &str| Err(HandlerError::Reject(format!("{} {}: {reason}", event.type_name(), event.id)));
    if event.id.is_empty() || event.id.len() > 64 || !event.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(HandlerError::Reject(format!("{} event with an unusable id", event.type_name())));
    }
    if let EventPayload::OtpIssued { code, expires_at, .. } = &event.payload {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return reject("the one-time code is not six digits");
        }
        if templates::lifetime_minutes(event.at, *expires_at) > templates::MAX_OTP_LIFETIME_MINUTES {
            return reject("the one-time code lives implausibly long");
        }
    }
    Ok(event)
}

/// The destinations of an event, each once, in the order the event lists them.
fn destinations(payload: &EventPayload) -> Vec<&Destination> {
    let listed: Vec<&Destination> = match payload {
        EventPayload::OtpIssued { destination, .. } | EventPayload::RegistrationAttempted { destination } => vec![destination],
        EventPayload::AccountLocked { destinations }
        | EventPayload::PasswordChanged { destinations }
        | EventPayload::NewLogin { destinations, .. }
        | EventPayload::MfaChanged { destinations, .. } => destinations.iter().collect(),
        // Citizen events name no destination: contacts come from the account (delivery follows).
        EventPayload::ApplicationStatusChanged { .. }
        | EventPayload::ApplicationMessage { .. }
        | EventPayload::IdentityVerificationRequested { .. }
        | EventPayload::IdentityLevelChanged { .. }
        | EventPayload::DocumentVerdict { .. } => Vec::new(),
    };
    let mut unique: Vec<&Destination> = Vec::with_capacity(listed.len());
    for destination in listed {
        if !unique.contains(&destination) {
            unique.push(destination);
        }
    }
    unique
}

/// A cheap shape check, so garbage never reaches a provider or the ledger: E.164 phones,
/// `local@domain.tld` emails without whitespace.
fn is_plausible(destination: &Destination) -> bool {
    match destination {
        Destination::Sms(phone) => {
            phone.strip_prefix('+').is_some_and(|digits| (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
        }
        Destination::Email(address) => {
            address.len() <= 254
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
                && address.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && !domain.contains('@') && domain.split('.').count() >= 2 && domain.split('.').all(|label| !label.is_empty())
                })
        }
    }
}

/// What happened to one destination of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    Sent,
    AlreadySent,
    /// Another attempt holds the claim.
    Busy,
    TemporaryFailure,
    LedgerUnavailable,
    PermanentFailure,
    FailedBefore,
    InvalidDestination,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::AlreadySent => "duplicate",
            Self::Busy => "busy",
            Self::TemporaryFailure => "temporary_failure",
            Self::LedgerUnavailable => "ledger_unavailable",
            Self::PermanentFailure => "permanent_failure",
            Self::FailedBefore => "failed_before",
            Self::InvalidDestination => "invalid_destination",
        }
    }
}

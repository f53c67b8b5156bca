//! The queue consumer: turns one domain event into its SMS, email and inbox entry.
//!
//! Who hears what: one-time codes and the warning to a contact someone tried to register go to
//! the destination the event names and ignore preferences. Security events (lockout, password,
//! new login, second factor) go to the destinations auth named — security SMS and email cannot
//! be switched off — plus an inbox entry when the event names the citizen. Every other event
//! names only the citizen: contacts come from the account (confirmed phone for SMS, confirmed
//! email for email) and the citizen's preferences decide the channels. `push` has no provider
//! yet: a preference for it is honoured by sending nothing.
//!
//! Delivery is idempotent per (event id, destination) through the [`ledger`](crate::ledger),
//! and per event for the inbox (the entry's key derives from the event). Destinations, codes
//! and texts are never logged — only the event id, its type, the channel and the outcome.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use shared::events::{Destination, Event, EventPayload};
use shared::ports::kv::{KeyValue, KvError};
use shared::ports::senders::{EmailSender, SendError, SmsSender};
use shared::worker::{HandlerError, MessageHandler};

use crate::inbox::{self, Written};
use crate::ledger::{Claim, DEFAULT_CLAIM_LEASE, Ledger, MarkerKey, channel_and_address};
use crate::preferences::{self, Category, Channel, Preferences};
use crate::templates::{self, EmailMessage, InboxMessage};

/// Delivers the messages of one event; plug it into `shared::worker::run_consumer` (local
/// runner) or `shared::worker::sqs_batch_handler` (Lambda).
pub struct Notifier {
    kv: Arc<dyn KeyValue>,
    ledger: Ledger,
    sms: Arc<dyn SmsSender>,
    email: Arc<dyn EmailSender>,
    portal_url: Option<String>,
}

impl Notifier {
    pub fn new(kv: Arc<dyn KeyValue>, sms: Arc<dyn SmsSender>, email: Arc<dyn EmailSender>) -> Self {
        Self { ledger: Ledger::new(kv.clone(), DEFAULT_CLAIM_LEASE), kv, sms, email, portal_url: None }
    }

    /// Overrides how long a delivery claim holds before another attempt may take it over.
    pub fn with_claim_lease(mut self, lease: Duration) -> Self {
        self.ledger = self.ledger.with_lease(lease);
        self
    }

    /// The public address of the citizen's cabinet, for links in emails (`PORTAL_URL`).
    pub fn with_portal_url(mut self, portal_url: Option<String>) -> Self {
        self.portal_url = portal_url.map(|url| url.trim().trim_end_matches('/').to_owned()).filter(|url| !url.is_empty());
        self
    }

    /// Sends every message of `event` that has not been sent yet and writes its inbox entry.
    ///
    /// Every destination is attempted even when another one fails. The result is `Retry` if any
    /// destination (or the inbox) failed temporarily — what succeeded is skipped next time —
    /// else `Reject` if any failed for good, else success.
    pub async fn deliver(&self, event: &Event) -> Result<(), HandlerError> {
        let event_type = event.type_name();
        if let EventPayload::OtpIssued { expires_at, .. } = &event.payload
            && *expires_at <= Utc::now()
        {
            // The code is dead already; delivering it would only confuse the citizen.
            tracing::info!(event_id = %event.id, event_type, outcome = "expired", "one-time code expired before delivery; dropped");
            return Ok(());
        }
        let plan = match self.plan(event).await {
            Ok(plan) => plan,
            Err(error) => {
                tracing::warn!(event_id = %event.id, event_type, %error, "could not read the citizen's contacts or preferences");
                return Err(HandlerError::Retry(format!("{event_type} {}: contacts or preferences unavailable", event.id)));
            }
        };
        let mut outcomes = Vec::with_capacity(plan.messages.len() + 1);
        if let Some(entry) = &plan.inbox {
            let outcome = self.write_inbox(event, entry).await;
            tracing::info!(event_id = %event.id, event_type, channel = "inbox", outcome = outcome.as_str(), "notification delivery");
            outcomes.push(outcome);
        }
        for (destination, message) in &plan.messages {
            let (channel, _) = channel_and_address(destination);
            let outcome = self.deliver_to(event, destination, message).await;
            tracing::info!(event_id = %event.id, event_type, channel, outcome = outcome.as_str(), "notification delivery");
            outcomes.push(outcome);
        }
        if outcomes.iter().any(|outcome| outcome.is_temporary()) {
            Err(HandlerError::Retry(format!("{event_type} {}: a destination failed temporarily", event.id)))
        } else if outcomes.iter().any(|outcome| outcome.is_permanent()) {
            Err(HandlerError::Reject(format!("{event_type} {}: a destination failed permanently", event.id)))
        } else {
            Ok(())
        }
    }

    /// Decides the messages of `event`: destinations with their rendered texts, and the inbox entry.
    async fn plan(&self, event: &Event) -> Result<Plan, KvError> {
        let category = Category::of(&event.payload);
        let preferences = match (category, event.user_id.as_deref()) {
            (Some(_), Some(user_id)) => preferences::load(self.kv.as_ref(), user_id).await?,
            _ => Preferences::default(),
        };
        let wants = |channel: Channel| category.is_none_or(|category| preferences.allows(category, channel));
        let candidates = match named_destinations(&event.payload) {
            Some(named) => named,
            None => {
                let Some(user_id) = event.user_id.as_deref() else { return Ok(Plan::default()) };
                match shared::identity::load(self.kv.as_ref(), user_id).await? {
                    // Every confirmed contact; the preferences below pick among them.
                    Some((account, _)) => account.security_destinations(),
                    None => {
                        tracing::info!(event_id = %event.id, event_type = event.type_name(), outcome = "no_account", "the citizen has no account; nothing to deliver");
                        return Ok(Plan::default());
                    }
                }
            }
        };
        let sms = templates::sms_text(event);
        let email = templates::email(event, self.portal_url.as_deref());
        let mut plan = Plan::default();
        for destination in unique(candidates) {
            let message = match &destination {
                Destination::Sms(_) => wants(Channel::Sms).then(|| sms.clone().map(Outgoing::Sms)).flatten(),
                Destination::Email(_) => wants(Channel::Email).then(|| email.clone().map(Outgoing::Email)).flatten(),
            };
            if let Some(message) = message {
                plan.messages.push((destination, message));
            }
        }
        if let (Some(category), Some(user_id)) = (category, event.user_id.as_deref()) {
            if wants(Channel::Inbox)
                && let Some(message) = templates::inbox(event)
            {
                plan.inbox = Some(InboxEntry { user_id: user_id.to_owned(), category, message });
            }
            if wants(Channel::Push) {
                tracing::debug!(event_id = %event.id, channel = "push", outcome = "no_provider", "push is wanted but no push provider exists; nothing sent");
            }
        }
        Ok(plan)
    }

    async fn write_inbox(&self, event: &Event, entry: &InboxEntry) -> Delivery {
        match inbox::deliver(self.kv.as_ref(), &entry.user_id, event, entry.category, &entry.message).await {
            Ok(Written::Created) => Delivery::Sent,
            Ok(Written::AlreadyThere) => Delivery::AlreadySent,
            Err(error) => {
                tracing::warn!(event_id = %event.id, %error, "inbox unavailable");
                Delivery::StoreUnavailable
            }
        }
    }

    /// One destination: claim, send, settle.
    async fn deliver_to(&self, event: &Event, destination: &Destination, message: &Outgoing) -> Delivery {
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
                return Delivery::StoreUnavailable;
            }
        };
        // Sender errors are not logged: providers may quote the destination in them.
        match self.send(destination, message).await {
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

    async fn send(&self, destination: &Destination, message: &Outgoing) -> Result<(), SendError> {
        match (destination, message) {
            (Destination::Sms(phone), Outgoing::Sms(text)) => self.sms.send_sms(phone, text).await,
            (Destination::Email(address), Outgoing::Email(email)) => self.email.send_email(address, &email.subject, &email.body).await,
            _ => Err(SendError::Permanent("message rendered for another channel".to_owned())),
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
    let event: Event = serde_json::from_str(body)
        .map_err(|error| HandlerError::Reject(format!("malformed event ({:?} error at line {} column {})", error.classify(), error.line(), error.column())))?;
    let reject = |reason: &str| Err(HandlerError::Reject(format!("{} {}: {reason}", event.type_name(), event.id)));
    if !is_key_safe(&event.id) {
        return Err(HandlerError::Reject(format!("{} event with an unusable id", event.type_name())));
    }
    if event.user_id.as_deref().is_some_and(|user_id| !is_key_safe(user_id)) {
        return reject("the citizen id is unusable");
    }
    if named_destinations(&event.payload).is_none() && event.user_id.is_none() {
        return reject("the event names neither a destination nor a citizen");
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

/// Ids become parts of store keys: short, and nothing that could bend a key.
fn is_key_safe(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The destinations an event names itself (auth's events); `None` for events that name only
/// the citizen, whose contacts come from the account.
fn named_destinations(payload: &EventPayload) -> Option<Vec<Destination>> {
    match payload {
        EventPayload::OtpIssued { destination, .. } | EventPayload::RegistrationAttempted { destination } => Some(vec![destination.clone()]),
        // Published only so an unknown login costs what a known one does: it names no one.
        EventPayload::RecoveryUnmatched { .. } => Some(Vec::new()),
        EventPayload::AccountLocked { destinations }
        | EventPayload::PasswordChanged { destinations }
        | EventPayload::NewLogin { destinations, .. }
        | EventPayload::MfaChanged { destinations, .. } => Some(destinations.clone()),
        EventPayload::ApplicationStatusChanged { .. }
        | EventPayload::ApplicationMessage { .. }
        | EventPayload::IdentityVerificationRequested { .. }
        | EventPayload::IdentityLevelChanged { .. }
        | EventPayload::DocumentVerdict { .. } => None,
    }
}

/// Each destination once, in the order given.
fn unique(destinations: Vec<Destination>) -> Vec<Destination> {
    let mut unique: Vec<Destination> = Vec::with_capacity(destinations.len());
    for destination in destinations {
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
        Destination::Sms(phone) => phone.strip_prefix('+').is_some_and(|digits| (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())),
        Destination::Email(address) => {
            address.len() <= 254
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
                && address.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && !domain.contains('@') && domain.split('.').count() >= 2 && domain.split('.').all(|label| !label.is_empty())
                })
        }
    }
}

/// What one event sends.
#[derive(Default)]
struct Plan {
    messages: Vec<(Destination, Outgoing)>,
    inbox: Option<InboxEntry>,
}

/// A rendered message for one channel.
enum Outgoing {
    Sms(String),
    Email(EmailMessage),
}

struct InboxEntry {
    user_id: String,
    category: Category,
    message: InboxMessage,
}

/// What happened to one destination (or the inbox) of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    Sent,
    AlreadySent,
    /// Another attempt holds the claim.
    Busy,
    TemporaryFailure,
    /// The ledger or the inbox could not be read or written.
    StoreUnavailable,
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
            Self::StoreUnavailable => "store_unavailable",
            Self::PermanentFailure => "permanent_failure",
            Self::FailedBefore => "failed_before",
            Self::InvalidDestination => "invalid_destination",
        }
    }

    fn is_temporary(self) -> bool {
        matches!(self, Self::Busy | Self::TemporaryFailure | Self::StoreUnavailable)
    }

    fn is_permanent(self) -> bool {
        matches!(self, Self::PermanentFailure | Self::FailedBefore | Self::InvalidDestination)
    }
}

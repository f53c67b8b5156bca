//! The queue consumer: turns one domain event into its SMS, email and inbox entry.
//!
//! Who hears what is decided in [`crate::domain::routing`]; this module reads what the decision
//! needs (the citizen's preferences and contacts), renders the texts and delivers them. `push`
//! has no provider yet: a preference for it is honoured by sending nothing.
//!
//! Delivery is idempotent per (event id, destination) through the [`ledger`](crate::ledger),
//! and per event for the inbox (the entry's key derives from the event). Destinations, codes
//! and texts are never logged — only the event id, its type, the channel and the outcome.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shared::events::{Destination, Event};
use shared::ports::Ticker;
use shared::ports::kv::{KeyValue, KvError};
use shared::ports::senders::{EmailSender, SendError, SmsSender};
use shared::worker::{HandlerError, MessageHandler};

use crate::domain::preferences::{Category, Preferences};
use crate::domain::routing::{self, Audience};
use crate::inbox::{self, Written};
use crate::ledger::{Claim, DEFAULT_CLAIM_LEASE, Ledger, MarkerKey, channel_and_address};
use crate::preferences;
use crate::templates::{self, EmailMessage, InboxMessage};

/// Delivers the messages of one event; plug it into `shared::worker::run_consumer` (local
/// runner) or `shared::worker::sqs_batch_handler` (Lambda).
pub struct Notifier {
    kv: Arc<dyn KeyValue>,
    ledger: Ledger,
    sms: Arc<dyn SmsSender>,
    email: Arc<dyn EmailSender>,
    portal_url: Option<String>,
    ticker: Ticker,
}

impl Notifier {
    pub fn new(kv: Arc<dyn KeyValue>, sms: Arc<dyn SmsSender>, email: Arc<dyn EmailSender>) -> Self {
        Self { ledger: Ledger::new(kv.clone(), DEFAULT_CLAIM_LEASE), kv, sms, email, portal_url: None, ticker: Ticker::default() }
    }

    /// The clock that judges code expiry and stamps delivery markers (tests fix it).
    pub fn with_ticker(mut self, ticker: Ticker) -> Self {
        self.ledger = self.ledger.with_ticker(ticker.clone());
        self.ticker = ticker;
        self
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
        if routing::is_expired(event, self.ticker.now()) {
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

    /// Reads what the routing decision needs, decides, and renders the messages of `event`.
    async fn plan(&self, event: &Event) -> Result<Plan, KvError> {
        let category = Category::of(&event.payload);
        let preferences = match (category, event.user_id.as_deref()) {
            (Some(_), Some(user_id)) => preferences::load(self.kv.as_ref(), user_id).await?,
            _ => Preferences::default(),
        };
        let candidates = match routing::audience(&event.payload) {
            Audience::Named(named) => named,
            Audience::Citizen => {
                let Some(user_id) = event.user_id.as_deref() else { return Ok(Plan::default()) };
                match shared::identity::load(self.kv.as_ref(), user_id).await? {
                    // Every confirmed contact; the preferences pick among them.
                    Some((account, _)) => account.security_destinations(),
                    None => {
                        tracing::info!(event_id = %event.id, event_type = event.type_name(), outcome = "no_account", "the citizen has no account; nothing to deliver");
                        return Ok(Plan::default());
                    }
                }
            }
        };
        let route = routing::route(category, &preferences, event.user_id.is_some(), candidates);
        let rendered = templates::render(event, self.portal_url.as_deref());
        let mut plan = Plan::default();
        for destination in route.destinations {
            let message = match &destination {
                Destination::Sms(_) => rendered.sms.clone().map(Outgoing::Sms),
                Destination::Email(_) => rendered.email.clone().map(Outgoing::Email),
            };
            if let Some(message) = message {
                plan.messages.push((destination, message));
            }
        }
        if let (true, Some(category), Some(user_id), Some(message)) = (route.inbox, category, event.user_id.as_deref(), rendered.inbox) {
            plan.inbox = Some(InboxEntry { user_id: user_id.to_owned(), category, message });
        }
        if route.push {
            tracing::debug!(event_id = %event.id, channel = "push", outcome = "no_provider", "push is wanted but no push provider exists; nothing sent");
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
    match routing::admit(&event) {
        Ok(()) => Ok(event),
        // The id itself may be what is wrong with the event: it is not quoted then.
        Err(refusal @ routing::Refusal::UnusableId) => Err(HandlerError::Reject(format!("{} event: {refusal}", event.type_name()))),
        Err(refusal) => Err(HandlerError::Reject(format!("{} {}: {refusal}", event.type_name(), event.id))),
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
        }
    }

    fn is_temporary(self) -> bool {
        matches!(self, Self::Busy | Self::TemporaryFailure | Self::StoreUnavailable)
    }

    fn is_permanent(self) -> bool {
        matches!(self, Self::PermanentFailure | Self::FailedBefore)
    }
}

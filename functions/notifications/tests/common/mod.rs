//! Test doubles and builders shared by the notifications tests: a recording sender with
//! scripted failures, the real embedded key-value store in a temporary directory, accounts
//! and events.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, Utc};
use notifications::Notifier;
use shared::adapters::embedded::{kv::RedbKv, open_database};
use shared::domain::{Email, Phone};
use shared::events::{Destination, Event, EventPayload, OtpPurpose};
use shared::identity::{ACCOUNT_SK, Account, Level, MfaSettings, user_pk};
use shared::ports::Ticker;
use shared::ports::kv::{Condition, Item, KeyValue};
use shared::ports::senders::{EmailSender, SendError, SmsSender};
use shared::vocabulary::ApplicationStatus;

/// One message handed to a sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub channel: &'static str,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
}

/// Records every successful send; answers with scripted failures first, when there are any.
#[derive(Default)]
pub struct RecordingSender {
    sent: Mutex<Vec<Sent>>,
    failures: Mutex<VecDeque<SendError>>,
    attempts: Mutex<usize>,
}

impl RecordingSender {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The next sends fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = SendError>) {
        self.failures.lock().unwrap().extend(errors);
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    pub fn sent_to(&self, to: &str) -> Vec<Sent> {
        self.sent().into_iter().filter(|sent| sent.to == to).collect()
    }

    pub fn attempts(&self) -> usize {
        *self.attempts.lock().unwrap()
    }

    fn record(&self, sent: Sent) -> Result<(), SendError> {
        *self.attempts.lock().unwrap() += 1;
        if let Some(error) = self.failures.lock().unwrap().pop_front() {
            return Err(error);
        }
        self.sent.lock().unwrap().push(sent);
        Ok(())
    }
}

#[async_trait]
impl SmsSender for RecordingSender {
    async fn send_sms(&self, to: &Phone, text: &str) -> Result<(), SendError> {
        self.record(Sent { channel: "sms", to: to.as_str().to_owned(), subject: None, body: text.to_owned() })
    }
}

#[async_trait]
impl EmailSender for RecordingSender {
    async fn send_email(&self, to: &Email, subject: &str, text_body: &str) -> Result<(), SendError> {
        self.record(Sent { channel: "email", to: to.as_str().to_owned(), subject: Some(subject.to_owned()), body: text_body.to_owned() })
    }
}

/// The embedded store in a fresh temporary directory (kept alive by the returned guard).
pub struct Store {
    pub dir: tempfile::TempDir,
    pub database: Arc<redb::Database>,
    pub kv: Arc<dyn KeyValue>,
}

pub fn store() -> Store {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = open_database(&dir.path().join("state.redb")).expect("open redb");
    let kv: Arc<dyn KeyValue> = Arc::new(RedbKv::new(database.clone()).expect("embedded kv"));
    Store { dir, database, kv }
}

/// A store, a recording sender for both channels, and a Notifier over them.
pub struct Harness {
    pub store: Store,
    pub sender: Arc<RecordingSender>,
    pub notifier: Notifier,
}

pub fn harness() -> Harness {
    let store = store();
    let sender = RecordingSender::new();
    let notifier = Notifier::new(store.kv.clone(), sender.clone(), sender.clone());
    Harness { store, sender, notifier }
}

/// The clock the tests run on: the wall clock, since stored leases expire by it.
pub fn ticker() -> Ticker {
    Ticker::default()
}

pub const PHONE: &str = "+79990001122";
pub const EMAIL: &str = "citizen@mail.example";

pub fn phone(raw: &str) -> Phone {
    Phone::parse(raw).expect("a valid phone")
}

pub fn sms() -> Destination {
    Destination::Sms(phone(PHONE))
}

pub fn email() -> Destination {
    Destination::Email(Email::parse(EMAIL).expect("a valid email"))
}

/// A live registration code for `destination`.
pub fn otp_event(destination: Destination, code: &str) -> Event {
    Event::new(
        &ticker(),
        Some("01JUSER000000000000000000".to_owned()),
        EventPayload::OtpIssued { destination, code: code.to_owned(), purpose: OtpPurpose::Registration, expires_at: Utc::now() + Duration::minutes(5) },
    )
}

pub fn locked_event(destinations: Vec<Destination>) -> Event {
    Event::new(&ticker(), Some("01JUSER000000000000000000".to_owned()), EventPayload::AccountLocked { destinations })
}

pub fn body(event: &Event) -> String {
    serde_json::to_string(event).expect("events serialise")
}

/// The citizen most tests deliver to.
pub const USER: &str = "01JUSER000000000000000000";

/// Stores an account for `user_id` with these contacts, each confirmed when given.
pub async fn put_account(kv: &dyn KeyValue, user_id: &str, phone: Option<&str>, email: Option<&str>) {
    put_account_with(kv, user_id, phone, email, true).await;
}

/// Stores an account whose contacts are confirmed or not, as `confirmed` says.
pub async fn put_account_with(kv: &dyn KeyValue, user_id: &str, phone: Option<&str>, email: Option<&str>, confirmed: bool) {
    let account = Account {
        user_id: user_id.to_owned(),
        phone: phone.map(self::phone),
        email: email.map(|email| Email::parse(email).expect("a valid email")),
        phone_confirmed: confirmed && phone.is_some(),
        email_confirmed: confirmed && email.is_some(),
        level: Level::Simplified,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
        previous_password_hashes: Vec::new(),
        failed_attempts: 0,
        locked: false,
        mfa: MfaSettings::default(),
        profile: None,
        created_at: Utc::now(),
        sessions_valid_from: None,
    };
    let item = Item::json(user_pk(user_id), ACCOUNT_SK, &account).expect("account serialises");
    kv.put(item, Condition::NotExists).await.expect("store the account");
}

/// An event about `user_id` (contacts come from the account).
pub fn citizen_event(user_id: &str, payload: EventPayload) -> Event {
    Event::new(&ticker(), Some(user_id.to_owned()), payload)
}

/// An application moved to `status` (SPEC §4.2 title included).
pub fn status_changed(status: ApplicationStatus) -> EventPayload {
    EventPayload::ApplicationStatusChanged {
        application_id: "01JAPP000000000000000000AA".to_owned(),
        number: Some("0042-2025".to_owned()),
        service_code: "income_certificate".to_owned(),
        service_title: "Справка о доходах 2-НДФЛ".to_owned(),
        status,
        status_title: status.title().to_owned(),
        comment: None,
    }
}

/// Every inbox entry of `user_id`, newest first.
pub async fn inbox_of(kv: &dyn KeyValue, user_id: &str) -> Vec<notifications::inbox::Notification> {
    notifications::inbox::list(kv, user_id, false, None, 100).await.expect("list the inbox").items
}

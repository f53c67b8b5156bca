//! Test doubles and builders shared by the notifications tests: a recording sender with
//! scripted failures, the real embedded key-value store in a temporary directory, and events.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, Utc};
use shared::adapters::embedded::{kv::RedbKv, open_database};
use shared::events::{Destination, Event, EventPayload, OtpPurpose};
use shared::ports::kv::KeyValue;
use shared::ports::senders::{EmailSender, SendError, SmsSender};

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
    async fn send_sms(&self, to: &str, text: &str) -> Result<(), SendError> {
        self.record(Sent { channel: "sms", to: to.to_owned(), subject: None, body: text.to_owned() })
    }
}

#[async_trait]
impl EmailSender for RecordingSender {
    async fn send_email(&self, to: &str, subject: &str, text_body: &str) -> Result<(), SendError> {
        self.record(Sent { channel: "email", to: to.to_owned(), subject: Some(subject.to_owned()), body: text_body.to_owned() })
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

pub const PHONE: &str = "+79990001122";
pub const EMAIL: &str = "citizen@mail.example";

pub fn sms() -> Destination {
    Destination::Sms(PHONE.to_owned())
}

pub fn email() -> Destination {
    Destination::Email(EMAIL.to_owned())
}

/// A live registration code for `destination`.
pub fn otp_event(destination: Destination, code: &str) -> Event {
    Event::new(
        Some("01JUSER000000000000000000".to_owned()),
        EventPayload::OtpIssued { destination, code: code.to_owned(), purpose: OtpPurpose::Registration, expires_at: Utc::now() + Duration::minutes(5) },
    )
}

pub fn locked_event(destinations: Vec<Destination>) -> Event {
    Event::new(Some("01JUSER000000000000000000".to_owned()), EventPayload::AccountLocked { destinations })
}

pub fn body(event: &Event) -> String {
    serde_json::to_string(event).expect("events serialise")
}

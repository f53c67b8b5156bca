//! Dev outbox (SPEC §7): SMS and email kept in the key-value store so developers and
//! end-to-end tests can read what would have been sent to one recipient (`GET /dev/outbox?to=`,
//! served by the local runner on a loopback address only).
//!
//! Items live in one partition, `DEVOUTBOX`, under monotonic ULID sort keys, so a descending
//! query lists them newest first. [`DevOutbox`] is a sender on its own (local runner) and
//! [`Tee`] records beside a real sender (SNS/SES) when the dev flag is on.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Email, Phone};
use crate::ports::kv::{Condition, Item, KeyValue, KvError, Query};
use crate::ports::senders::{EmailSender, SendError, SmsSender};

/// The partition holding every dev outbox message.
pub const OUTBOX_PARTITION: &str = "DEVOUTBOX";
/// Dev messages expire after a week so the partition does not grow without bound.
const RETENTION_SECONDS: i64 = 7 * 24 * 3600;
/// Items read per query while filtering by recipient.
const PAGE_SIZE: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxChannel {
    Sms,
    Email,
}

/// One recorded message, in the JSON shape `GET /dev/outbox` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub channel: OutboxChannel,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
    pub at: DateTime<Utc>,
}

/// Records SMS and email in the key-value store instead of sending them.
pub struct DevOutbox {
    kv: Arc<dyn KeyValue>,
}

impl DevOutbox {
    pub fn new(kv: Arc<dyn KeyValue>) -> Self {
        Self { kv }
    }

    /// Up to `limit` messages, newest first; with `to`, only those sent to exactly that address.
    pub async fn list(&self, to: Option<&str>, limit: usize) -> Result<Vec<OutboxMessage>, KvError> {
        let mut found = Vec::new();
        let mut cursor = None;
        while found.len() < limit {
            let page = self.kv.query(Query::partition(OUTBOX_PARTITION).descending().limit(PAGE_SIZE).after(cursor)).await?;
            for item in &page.items {
                let message: OutboxMessage = item.parse()?;
                if to.is_none_or(|to| message.to == to) {
                    found.push(message);
                    if found.len() == limit {
                        break;
                    }
                }
            }
            match page.last_key {
                Some(last) => cursor = Some(last),
                None => break,
            }
        }
        Ok(found)
    }

    async fn record(&self, channel: OutboxChannel, to: &str, subject: Option<&str>, body: &str) -> Result<(), SendError> {
        let at = Utc::now();
        let message = OutboxMessage { channel, to: to.to_owned(), subject: subject.map(str::to_owned), body: body.to_owned(), at };
        let sort_key = super::queue::next_monotonic_ulid().to_string();
        let item = Item::json(OUTBOX_PARTITION, sort_key, &message)
            .map_err(|e| SendError::Permanent(format!("encode dev outbox message: {e}")))?
            .expiring_at(at.timestamp() + RETENTION_SECONDS);
        self.kv.put(item, Condition::NotExists).await.map(|_| ()).map_err(|e| SendError::Temporary(format!("dev outbox write: {e}")))
    }
}

#[async_trait]
impl SmsSender for DevOutbox {
    async fn send_sms(&self, to: &Phone, text: &str) -> Result<(), SendError> {
        self.record(OutboxChannel::Sms, to.as_str(), None, text).await
    }
}

#[async_trait]
impl EmailSender for DevOutbox {
    async fn send_email(&self, to: &Email, subject: &str, text_body: &str) -> Result<(), SendError> {
        self.record(OutboxChannel::Email, to.as_str(), Some(subject), text_body).await
    }
}

/// Sends through `primary` and, once that succeeded, also records in the dev outbox.
/// Works for `P = dyn SmsSender`, `dyn EmailSender` or a concrete sender.
pub struct Tee<P: ?Sized> {
    primary: Arc<P>,
    outbox: Arc<DevOutbox>,
}

impl<P: ?Sized> Tee<P> {
    pub fn new(primary: Arc<P>, outbox: Arc<DevOutbox>) -> Self {
        Self { primary, outbox }
    }
}

/// The message went out, so the caller must not retry because of the copy.
fn log_outbox_failure(error: &SendError) {
    tracing::warn!(%error, "sent, but could not record in the dev outbox");
}

#[async_trait]
impl<P: SmsSender + ?Sized> SmsSender for Tee<P> {
    async fn send_sms(&self, to: &Phone, text: &str) -> Result<(), SendError> {
        self.primary.send_sms(to, text).await?;
        if let Err(error) = self.outbox.send_sms(to, text).await {
            log_outbox_failure(&error);
        }
        Ok(())
    }
}

#[async_trait]
impl<P: EmailSender + ?Sized> EmailSender for Tee<P> {
    async fn send_email(&self, to: &Email, subject: &str, text_body: &str) -> Result<(), SendError> {
        self.primary.send_email(to, subject, text_body).await?;
        if let Err(error) = self.outbox.send_email(to, subject, text_body).await {
            log_outbox_failure(&error);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{RedbKv, open_database};

    struct Failing;

    #[async_trait]
    impl SmsSender for Failing {
        async fn send_sms(&self, _to: &Phone, _text: &str) -> Result<(), SendError> {
            Err(SendError::Permanent("invalid destination".into()))
        }
    }

    fn phone(raw: &str) -> Phone {
        Phone::parse(raw).expect("valid phone")
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).expect("valid email")
    }

    fn outbox() -> (tempfile::TempDir, Arc<DevOutbox>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open_database(&dir.path().join("data.redb")).expect("open redb");
        let kv = RedbKv::new(db).expect("kv");
        (dir, Arc::new(DevOutbox::new(Arc::new(kv))))
    }

    #[tokio::test]
    async fn messages_are_listed_newest_first_with_their_channel_and_subject() {
        let (_dir, outbox) = outbox();
        outbox.send_sms(&phone("+79990000001"), "code 1").await.expect("sms");
        outbox.send_email(&email("a@example.com"), "Тема", "body").await.expect("email");
        outbox.send_sms(&phone("+79990000001"), "code 2").await.expect("sms");

        let all = outbox.list(None, 10).await.expect("list");
        let bodies: Vec<_> = all.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["code 2", "body", "code 1"]);
        assert_eq!(all[1].channel, OutboxChannel::Email);
        assert_eq!(all[1].subject.as_deref(), Some("Тема"));
        assert_eq!(all[0].subject, None);
        assert!(all[0].at >= all[2].at);
    }

    #[tokio::test]
    async fn filtering_by_recipient_matches_exactly_and_honours_the_limit() {
        let (_dir, outbox) = outbox();
        for i in 0..5 {
            outbox.send_sms(&phone("+79990000001"), &format!("to one {i}")).await.expect("sms");
            outbox.send_sms(&phone("+79990000010"), &format!("to other {i}")).await.expect("sms");
        }
        let mine = outbox.list(Some("+79990000001"), 3).await.expect("list");
        let bodies: Vec<_> = mine.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["to one 4", "to one 3", "to one 2"]);
        assert!(outbox.list(Some("+7999"), 10).await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn filtering_reads_past_the_first_page_of_other_recipients() {
        let (_dir, outbox) = outbox();
        outbox.send_sms(&phone("+79990000002"), "old one").await.expect("sms");
        for i in 0..(PAGE_SIZE + 5) {
            outbox.send_sms(&phone("+79990000003"), &format!("noise {i}")).await.expect("sms");
        }
        let found = outbox.list(Some("+79990000002"), 10).await.expect("list");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].body, "old one");
    }

    #[tokio::test]
    async fn messages_serialise_in_the_dev_outbox_api_shape() {
        let (_dir, outbox) = outbox();
        outbox.send_sms(&phone("+79990000001"), "code").await.expect("sms");
        let listed = outbox.list(None, 1).await.expect("list");
        let json = serde_json::to_value(&listed[0]).expect("json");
        assert_eq!(json["channel"], "sms");
        assert_eq!(json["to"], "+79990000001");
        assert!(json["subject"].is_null());
        assert_eq!(json["body"], "code");
        assert!(json["at"].as_str().is_some_and(|at| DateTime::parse_from_rfc3339(at).is_ok()));
    }

    #[tokio::test]
    async fn tee_records_after_the_primary_sender_succeeds() {
        let (_dir, outbox) = outbox();
        let primary = Arc::new(DevOutbox::new(Arc::clone(&outbox.kv)));
        let tee = Tee::new(primary as Arc<dyn SmsSender>, Arc::clone(&outbox));
        tee.send_sms(&phone("+79990000001"), "hello").await.expect("sent");
        // The primary here is a second outbox over the same store, so two copies prove both ran.
        assert_eq!(outbox.list(Some("+79990000001"), 10).await.expect("list").len(), 2);
    }

    #[tokio::test]
    async fn tee_passes_on_a_primary_failure_and_records_nothing() {
        let (_dir, outbox) = outbox();
        let tee = Tee::new(Arc::new(Failing), Arc::clone(&outbox));
        let result = tee.send_sms(&phone("+79990000001"), "hello").await;
        assert!(matches!(result, Err(SendError::Permanent(_))));
        assert!(outbox.list(None, 10).await.expect("list").is_empty());
    }
}

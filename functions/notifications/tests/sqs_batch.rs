//! The Lambda path: SQS events (the shared `events/sqs-events-otp.json` sample and variants
//! built from it) through `sqs_batch_handler` and the Notifier, with recording senders.

mod common;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use common::{Harness, RecordingSender, harness};
use notifications::Notifier;
use shared::ports::senders::SendError;
use shared::worker::{DEFAULT_BATCH_CONCURRENCY, sqs_batch_handler};

const SAMPLE: &str = include_str!("../../../events/sqs-events-otp.json");

fn sample() -> SqsEvent {
    serde_json::from_str(SAMPLE).expect("the SQS sample parses as an SqsEvent")
}

/// The sample's codes expired long ago; move each event to now, keeping its code lifetime.
fn made_live(mut event: SqsEvent) -> SqsEvent {
    for record in &mut event.records {
        let body = record.body.as_deref().expect("sample records have bodies");
        let mut value: serde_json::Value = serde_json::from_str(body).expect("sample bodies are JSON");
        let at: DateTime<Utc> = value["at"].as_str().and_then(|s| s.parse().ok()).expect("event time");
        let expires_at: DateTime<Utc> = value["data"]["expires_at"].as_str().and_then(|s| s.parse().ok()).expect("code expiry");
        let now = Utc::now();
        value["at"] = serde_json::json!(now);
        value["data"]["expires_at"] = serde_json::json!(now + (expires_at - at));
        record.body = Some(value.to_string());
    }
    event
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|failure| failure.item_identifier.clone()).collect()
}

fn record(message_id: &str, body: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message_id.to_owned());
    record.body = Some(body.to_owned());
    record
}

#[tokio::test]
async fn sample_batch_delivers_each_code_once_and_reports_no_failure() {
    let Harness { store: _store, sender, notifier } = harness();

    let response = sqs_batch_handler(&notifier, made_live(sample()), DEFAULT_BATCH_CONCURRENCY).await;

    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let sms = sender.sent_to("+79165550123");
    assert_eq!(sms.len(), 1);
    assert!(sms[0].body.contains("804317") && sms[0].body.contains("регистрации"));
    let mail = sender.sent_to("a.ivanova@mail.example");
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].subject.as_deref(), Some("Код для восстановления доступа к Госуслугам"));
    assert!(mail[0].body.contains("271946"));
}

#[tokio::test]
async fn sample_batch_as_recorded_drops_the_expired_codes_without_failures() {
    let Harness { store: _store, sender, notifier } = harness();

    let response = sqs_batch_handler(&notifier, sample(), DEFAULT_BATCH_CONCURRENCY).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(sender.attempts(), 0);
}

#[tokio::test]
async fn redelivered_batch_sends_nothing_new() {
    let Harness { store: _store, sender, notifier } = harness();
    let event = made_live(sample());

    sqs_batch_handler(&notifier, event.clone(), DEFAULT_BATCH_CONCURRENCY).await;
    let again = sqs_batch_handler(&notifier, event, DEFAULT_BATCH_CONCURRENCY).await;

    assert!(again.batch_item_failures.is_empty());
    assert_eq!(sender.attempts(), 2);
}

#[tokio::test]
async fn batch_reports_exactly_the_records_that_failed() {
    let Harness { store, sender, .. } = harness();
    // Only the email provider is down.
    let email = RecordingSender::new();
    email.fail_next([SendError::Temporary("SES throttling".to_owned())]);
    let notifier = Notifier::new(store.kv.clone(), sender.clone(), email.clone());
    let mut event = made_live(sample());
    let sms_body = event.records[0].body.clone().expect("body");
    // The same event a second time under another message id (SQS at-least-once), and poison.
    event.records.push(record("duplicate-of-first", &sms_body));
    event.records.push(record("poison", "{\"id\":"));

    let response = sqs_batch_handler(&notifier, event, 1).await;

    assert_eq!(failed_ids(&response), vec!["a84e0d57-2c19-4b6f-9e33-71d5b8c4f0e2".to_owned(), "poison".to_owned()]);
    assert_eq!(sender.sent_to("+79165550123").len(), 1);
    assert!(email.sent().is_empty());
}

#[tokio::test]
async fn lambda_answer_lists_failures_in_the_partial_batch_shape() {
    let Harness { store: _store, sender: _, notifier } = harness();
    let mut event = SqsEvent::default();
    event.records.push(record("m-1", "garbage"));

    let response = sqs_batch_handler(&notifier, event, DEFAULT_BATCH_CONCURRENCY).await;

    assert_eq!(serde_json::to_value(&response).unwrap(), serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]}));
}

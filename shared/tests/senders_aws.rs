//! The SNS and SES senders against an AWS emulator (moto), plus their failure classification.
//! (A malformed phone number cannot reach SNS any more: the port takes a parsed `Phone`.)
//!
//! Tests that need the emulator read `AWS_ENDPOINT_URL`; without it they print that they are
//! skipped, unless `REQUIRE_AWS_EMULATOR=1` makes that a failure. Delivery is checked in
//! moto's model dump (`/moto-api/data.json`), which records every SMS and email it accepted;
//! moto does not keep SMS message attributes, so the `Transactional` type is not checked there.

mod common;

use std::sync::Arc;

use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use shared::adapters::aws::sdk_config;
use shared::adapters::aws::ses::SesEmail;
use shared::adapters::aws::sns::SnsSms;
use shared::adapters::embedded::outbox::{DevOutbox, Tee};
use shared::adapters::embedded::{RedbKv, open_database};
use shared::domain::{Email, Phone};
use shared::ports::senders::{EmailSender, SendError, SmsSender};

#[tokio::test]
async fn sns_publishes_an_sms_that_the_emulator_records() {
    let Some(endpoint) = emulator() else { return };
    let sms = SnsSms::new(aws_sdk_sns::Client::new(&sdk_config().await), Some("Gosuslugi".into()));
    let text = format!("Код подтверждения: {}", ulid::Ulid::new());
    sms.send_sms(&phone("+79990001122"), &text).await.expect("publish");

    let recorded = moto_models(&endpoint, "sns", "SMS").await;
    assert!(recorded.iter().any(|m| m["phone_number"] == "+79990001122" && m["message"] == text.as_str()), "the emulator has no such SMS");
}

#[tokio::test]
async fn ses_sends_from_a_verified_identity_and_the_emulator_records_it() {
    let Some(endpoint) = emulator() else { return };
    let client = aws_sdk_sesv2::Client::new(&sdk_config().await);
    let from = format!("noreply-{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    client.create_email_identity().email_identity(&from).send().await.expect("verify identity");
    let email = SesEmail::new(client, &from, None);
    email.send_email(&address("citizen@example.com"), "Заявление № 1", "Статус: «Принято»").await.expect("send");

    let recorded = moto_models(&endpoint, "ses", "Message").await;
    let sent = recorded.iter().find(|m| m["source"] == from.as_str()).expect("the emulator has no email from this sender");
    assert_eq!(sent["subject"], "Заявление № 1");
    assert_eq!(sent["body"], "Статус: «Принято»");
    assert_eq!(sent["destinations"]["ToAddresses"], serde_json::json!(["citizen@example.com"]));
}

#[tokio::test]
async fn ses_refuses_an_unverified_sender_as_permanent() {
    if emulator().is_none() {
        return;
    }
    let email = SesEmail::new(aws_sdk_sesv2::Client::new(&sdk_config().await), "unverified@example.org", None);
    let result = email.send_email(&address("citizen@example.com"), "s", "b").await;
    assert!(matches!(result, Err(SendError::Permanent(_))), "{result:?}");
}

#[tokio::test]
async fn tee_beside_sns_also_records_in_the_dev_outbox() {
    if emulator().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let kv = RedbKv::new(open_database(&dir.path().join("data.redb")).expect("open redb")).expect("kv");
    let outbox = Arc::new(DevOutbox::new(Arc::new(kv)));
    let sns = Arc::new(SnsSms::new(aws_sdk_sns::Client::new(&sdk_config().await), None));
    let tee: Arc<dyn SmsSender> = Arc::new(Tee::new(sns, Arc::clone(&outbox)));

    tee.send_sms(&phone("+79990001133"), "123456").await.expect("send");
    let listed = outbox.list(Some("+79990001133"), 10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body, "123456");
}

#[tokio::test]
async fn unreachable_sms_service_is_a_temporary_failure() {
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        // Nothing listens on port 1; retries off so the failure surfaces at once.
        .endpoint_url("http://127.0.0.1:1")
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
        .build();
    let sms = SnsSms::new(aws_sdk_sns::Client::from_conf(config), None);
    let result = sms.send_sms(&phone("+79990001122"), "text").await;
    assert!(matches!(result, Err(SendError::Temporary(_))), "{result:?}");
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(!message.contains("79990001122"), "the error names the destination: {message}");
}

fn emulator() -> Option<String> {
    common::emulator("sender")
}

fn phone(raw: &str) -> Phone {
    Phone::parse(raw).expect("valid phone")
}

fn address(raw: &str) -> Email {
    Email::parse(raw).expect("valid email")
}

/// Every recorded instance of one moto model, e.g. `("sns", "SMS")`.
async fn moto_models(endpoint: &str, service: &str, model: &str) -> Vec<Value> {
    let url = format!("{}/moto-api/data.json", endpoint.trim_end_matches('/'));
    let dump: Value = reqwest::get(url).await.expect("moto model dump").json().await.expect("moto model JSON");
    dump[service][model].as_array().cloned().unwrap_or_default()
}

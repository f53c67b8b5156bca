//! The Notifier as a queue message handler, over the real embedded key-value store and
//! recording senders: idempotency per (event, destination), retries, rejections.

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::{EMAIL, PHONE, RecordingSender, body, email, harness as fixture, locked_event, otp_event, sms, ticker};
use notifications::Notifier;
use shared::events::{Event, EventPayload, OtpPurpose};
use shared::ports::Ticker;
use shared::ports::senders::{EmailSender, SendError};
use shared::vocabulary::{DeviceType, MfaMethod};
use shared::worker::{HandlerError, MessageHandler};

#[tokio::test]
async fn otp_goes_to_the_destination_it_names_with_the_code() {
    for (destination, to, channel, subject) in [(sms(), PHONE, "sms", None), (email(), EMAIL, "email", Some("Код подтверждения регистрации на Госуслугах"))]
    {
        let f = fixture();

        f.notifier.handle(&body(&otp_event(destination, "654321"))).await.unwrap();

        let sent = f.sender.sent_to(to);
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].channel, sent[0].subject.as_deref()), (channel, subject));
        assert!(sent[0].body.contains("654321"));
    }
}

#[tokio::test]
async fn same_event_delivered_twice_is_sent_once() {
    let f = fixture();
    let message = body(&otp_event(sms(), "123456"));

    f.notifier.handle(&message).await.unwrap();
    f.notifier.handle(&message).await.unwrap();

    assert_eq!(f.sender.attempts(), 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_send_once() {
    let f = fixture();
    let message = body(&otp_event(sms(), "123456"));

    let (first, second) = tokio::join!(f.notifier.handle(&message), f.notifier.handle(&message));

    assert_eq!(f.sender.attempts(), 1);
    // The loser either saw the finished delivery or the live claim (then it retries later).
    for outcome in [first, second] {
        assert!(matches!(outcome, Ok(()) | Err(HandlerError::Retry(_))), "{outcome:?}");
    }
}

#[tokio::test]
async fn a_failed_send_is_retried_when_temporary_and_never_again_when_permanent() {
    let cases = [
        (SendError::Temporary("throttled".to_owned()), ["retry", "ok", "ok"], (2, 1)),
        (SendError::Permanent("invalid number".to_owned()), ["reject", "reject", "reject"], (1, 0)),
    ];
    for (error, outcomes, (attempts, sent)) in cases {
        let f = fixture();
        f.sender.fail_next([error]);
        let message = body(&otp_event(sms(), "123456"));

        let mut seen = Vec::new();
        for _ in 0..outcomes.len() {
            seen.push(match f.notifier.handle(&message).await {
                Ok(()) => "ok",
                Err(HandlerError::Retry(_)) => "retry",
                Err(HandlerError::Reject(_)) => "reject",
            });
        }

        assert_eq!(seen, outcomes);
        assert_eq!((f.sender.attempts(), f.sender.sent().len()), (attempts, sent));
    }
}

#[tokio::test]
async fn every_destination_of_a_security_event_is_notified_once() {
    let f = fixture();
    let message = body(&locked_event(vec![sms(), email(), sms()]));

    f.notifier.handle(&message).await.unwrap();
    f.notifier.handle(&message).await.unwrap();

    let sent = f.sender.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
    assert_eq!(f.sender.sent_to(EMAIL)[0].subject.as_deref(), Some("Учётная запись заблокирована"));
}

#[tokio::test]
async fn retry_after_a_partial_failure_sends_only_what_is_missing() {
    let f = fixture();
    // The SMS goes out first and succeeds; the email fails temporarily.
    let message = body(&locked_event(vec![sms(), email()]));
    let sender = f.sender.clone();

    let first = {
        let failing_email = FailFirstEmail { inner: sender.clone(), failed: std::sync::atomic::AtomicBool::new(false) };
        let notifier = Notifier::new(f.store.kv.clone(), sender.clone(), Arc::new(failing_email));
        notifier.handle(&message).await
    };
    assert!(matches!(first, Err(HandlerError::Retry(_))), "{first:?}");
    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
    assert!(f.sender.sent_to(EMAIL).is_empty());

    f.notifier.handle(&message).await.unwrap();

    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
    assert_eq!(f.sender.sent_to(EMAIL).len(), 1);
}

/// An email sender that fails its first send temporarily, then delegates.
struct FailFirstEmail {
    inner: Arc<RecordingSender>,
    failed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl EmailSender for FailFirstEmail {
    async fn send_email(&self, to: &shared::domain::Email, subject: &str, text_body: &str) -> Result<(), SendError> {
        if !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(SendError::Temporary("timeout".to_owned()));
        }
        self.inner.send_email(to, subject, text_body).await
    }
}

#[tokio::test]
async fn malformed_message_is_rejected_without_quoting_it() {
    let f = fixture();
    let secret_looking = r#"{"id":"01J","type":"auth.otp_issued","data":{"destination":{"channel":"sms","to":7},"code":"123456"}}"#;

    for message in ["not json", "{}", r#"{"id":"x","at":"2025-01-01T00:00:00Z","type":"auth.unknown","data":{}}"#, secret_looking] {
        match f.notifier.handle(message).await {
            Err(HandlerError::Reject(reason)) => assert!(!reason.contains("123456") && !reason.contains("not json"), "{reason}"),
            other => panic!("{message} gave {other:?}"),
        }
    }
    assert_eq!(f.sender.attempts(), 0);
}

#[tokio::test]
async fn otp_that_is_not_six_digits_is_rejected_without_sending() {
    let f = fixture();

    let outcome = f.notifier.handle(&body(&otp_event(sms(), "12345"))).await;

    assert!(matches!(outcome, Err(HandlerError::Reject(_))), "{outcome:?}");
    assert_eq!(f.sender.attempts(), 0);
}

#[tokio::test]
async fn expired_otp_is_dropped_without_sending() {
    let f = fixture();
    let event = otp_event(sms(), "123456");
    // The code lives five minutes; the queue delivers it six minutes late.
    let (late, _) = Ticker::fixed(event.at + Duration::minutes(6));
    let notifier = Notifier::new(f.store.kv.clone(), f.sender.clone(), f.sender.clone()).with_ticker(late);

    notifier.handle(&body(&event)).await.unwrap();

    assert_eq!(f.sender.attempts(), 0);
}

#[tokio::test]
async fn an_event_naming_an_implausible_destination_is_rejected_as_malformed() {
    let f = fixture();
    let mut message: serde_json::Value = serde_json::from_str(&body(&locked_event(vec![sms(), email()]))).unwrap();
    message["data"]["destinations"][0]["to"] = serde_json::json!("not a phone");

    let outcome = f.notifier.handle(&message.to_string()).await;

    assert!(matches!(outcome, Err(HandlerError::Reject(ref reason)) if !reason.contains("not a phone")), "{outcome:?}");
    assert_eq!(f.sender.attempts(), 0);
}

#[tokio::test]
async fn a_live_claim_held_elsewhere_makes_the_delivery_retry_without_sending() {
    let f = fixture();
    let event = otp_event(sms(), "123456");
    let ledger = notifications::ledger::Ledger::new(f.store.kv.clone(), notifications::DEFAULT_CLAIM_LEASE);
    let key = notifications::ledger::MarkerKey::new(&event.id, &sms());
    assert!(matches!(ledger.claim(&key).await.unwrap(), notifications::ledger::Claim::Acquired { .. }));

    let outcome = f.notifier.handle(&body(&event)).await;

    assert!(matches!(outcome, Err(HandlerError::Retry(_))), "{outcome:?}");
    assert_eq!(f.sender.attempts(), 0);
}

#[tokio::test]
async fn every_event_type_reaches_its_destination() {
    let f = fixture();
    let payloads = [
        EventPayload::OtpIssued {
            destination: sms(),
            code: "111111".to_owned(),
            purpose: OtpPurpose::Login,
            expires_at: ticker().now() + Duration::minutes(5),
        },
        EventPayload::RegistrationAttempted { destination: email() },
        EventPayload::AccountLocked { destinations: vec![sms()] },
        EventPayload::PasswordChanged { destinations: vec![sms()] },
        EventPayload::NewLogin { destinations: vec![email()], device_type: DeviceType::Mobile, ip: "198.51.100.4".to_owned() },
        EventPayload::MfaChanged { destinations: vec![sms()], method: MfaMethod::Totp, enabled: true },
    ];
    for payload in payloads {
        f.notifier.handle(&body(&Event::new(&ticker(), None, payload))).await.unwrap();
    }

    assert_eq!(f.sender.sent().len(), 6);
    assert!(f.sender.sent().iter().all(|sent| !sent.body.is_empty()));
}

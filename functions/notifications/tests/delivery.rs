//! Delivery of citizen events by preference, over the real embedded key-value store and
//! recording senders: contacts from the account, channels from the preferences, the inbox
//! written once per event, security channels that cannot be silenced, codes that ignore it all.

mod common;

use std::sync::Arc;

use common::{
    EMAIL, PHONE, RecordingSender, USER, body, citizen_event, email, inbox_of, otp_event, put_account, put_account_with, sms, status_changed, store, ticker,
};
use notifications::preferences::{self, Category, Preferences};
use notifications::{Notifier, inbox};
use serde_json::json;
use shared::events::{Event, EventPayload};
use shared::identity::user_pk;
use shared::ports::kv::{Condition, Item};
use shared::vocabulary::ApplicationStatus::{Accepted, Approved, InProgress, InfoRequested, Rejected};
use shared::vocabulary::{DocumentStatus, Level, LevelChangeReason, RejectionReason};
use shared::worker::{HandlerError, MessageHandler};

struct Fixture {
    store: common::Store,
    sender: Arc<RecordingSender>,
    notifier: Notifier,
}

/// A citizen with a confirmed phone and email, default preferences.
async fn fixture() -> Fixture {
    let store = store();
    put_account(store.kv.as_ref(), USER, Some(PHONE), Some(EMAIL)).await;
    let sender = RecordingSender::new();
    let notifier = Notifier::new(store.kv.clone(), sender.clone(), sender.clone()).with_portal_url(Some("https://portal.example/".to_owned()));
    Fixture { store, sender, notifier }
}

impl Fixture {
    async fn prefer(&self, update: serde_json::Value) {
        preferences::update(self.store.kv.as_ref(), USER, &update, ticker().now()).await.unwrap();
    }

    /// Delivers an event about the citizen.
    async fn deliver(&self, payload: EventPayload) {
        self.notifier.handle(&body(&citizen_event(USER, payload))).await.unwrap();
    }

    async fn inbox(&self) -> Vec<inbox::Notification> {
        inbox_of(self.store.kv.as_ref(), USER).await
    }
}

#[tokio::test]
async fn a_status_change_goes_by_sms_and_to_the_inbox_by_default() {
    let f = fixture().await;

    f.deliver(status_changed(Approved)).await;

    let sent = f.sender.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, PHONE);
    assert_eq!(sent[0].body, "Заявление № 0042-2025: статус «Одобрено». Справка о доходах 2-НДФЛ");
    let inbox = f.inbox().await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].category, Category::Applications);
    assert_eq!(inbox[0].title, "Заявление № 0042-2025: статус «Одобрено»");
    assert_eq!(inbox[0].link.as_deref(), Some("/applications/01JAPP000000000000000000AA"));
    assert!(!inbox[0].read);
}

#[tokio::test]
async fn with_application_sms_switched_off_only_the_inbox_entry_is_written() {
    let f = fixture().await;
    f.prefer(json!({"categories": {"applications": {"sms": false}}})).await;

    f.deliver(status_changed(Rejected)).await;

    assert_eq!(f.sender.attempts(), 0);
    assert_eq!(f.inbox().await.len(), 1);
}

#[tokio::test]
async fn application_email_switched_on_sends_an_email_with_a_link() {
    let f = fixture().await;
    f.prefer(json!({"categories": {"applications": {"email": true}}})).await;

    f.deliver(status_changed(InfoRequested)).await;

    let mail = f.sender.sent_to(EMAIL);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].subject.as_deref(), Some("Заявление № 0042-2025: статус «Ожидание дополнений»"));
    assert!(mail[0].body.contains("https://portal.example/applications/01JAPP000000000000000000AA"), "{}", mail[0].body);
    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
}

#[tokio::test]
async fn with_the_inbox_switched_off_no_entry_is_written() {
    let f = fixture().await;
    f.prefer(json!({"categories": {"applications": {"inbox": false}}})).await;

    f.deliver(status_changed(Accepted)).await;

    assert!(f.inbox().await.is_empty());
    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
}

#[tokio::test]
async fn a_redelivered_event_writes_one_inbox_entry_and_sends_one_sms() {
    let f = fixture().await;
    let message = body(&citizen_event(USER, status_changed(InProgress)));

    f.notifier.handle(&message).await.unwrap();
    f.notifier.handle(&message).await.unwrap();
    let (first, second) = tokio::join!(f.notifier.handle(&message), f.notifier.handle(&message));

    assert!(first.is_ok() && second.is_ok());
    assert_eq!(f.sender.attempts(), 1);
    assert_eq!(f.inbox().await.len(), 1);
    let unread = inbox::list(f.store.kv.as_ref(), USER, true, None, 100).await.unwrap();
    assert_eq!(unread.items.len(), 1);
}

#[tokio::test]
async fn a_redelivery_after_reading_does_not_bring_the_entry_back_unread() {
    let f = fixture().await;
    let message = body(&citizen_event(USER, status_changed(Approved)));
    f.notifier.handle(&message).await.unwrap();
    let id = f.inbox().await[0].id.clone();
    assert!(inbox::mark_read(f.store.kv.as_ref(), USER, &id, ticker().now()).await.unwrap());

    f.notifier.handle(&message).await.unwrap();

    let all = f.inbox().await;
    assert_eq!(all.len(), 1);
    assert!(all[0].read);
    assert!(inbox::list(f.store.kv.as_ref(), USER, true, None, 100).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn unconfirmed_contacts_receive_nothing_but_the_inbox_still_does() {
    let store = store();
    put_account_with(store.kv.as_ref(), USER, Some(PHONE), Some(EMAIL), false).await;
    let sender = RecordingSender::new();
    let notifier = Notifier::new(store.kv.clone(), sender.clone(), sender.clone());

    notifier.handle(&body(&citizen_event(USER, status_changed(Approved)))).await.unwrap();

    assert_eq!(sender.attempts(), 0);
    assert_eq!(inbox_of(store.kv.as_ref(), USER).await.len(), 1);
}

#[tokio::test]
async fn personal_data_events_go_to_the_inbox_and_by_email_when_they_have_one() {
    let level = EventPayload::IdentityLevelChanged { level: Level::Standard, previous_level: Level::Simplified, reason: LevelChangeReason::RegistryVerified };
    let verdict = EventPayload::DocumentVerdict {
        document_id: "01JDOC000000000000000000DD".to_owned(),
        file_name: "паспорт.pdf".to_owned(),
        status: DocumentStatus::Rejected,
        rejection_reason: Some(RejectionReason::ContentMismatch),
    };
    let requested = EventPayload::IdentityVerificationRequested {
        registry_agency_id: "mvd".to_owned(),
        request_id: "01JREQUEST".to_owned(),
        profile: Box::new(shared::identity::Profile::example()),
    };
    let cases = [
        (level, "Уровень учётной записи: Стандартная", "Ведомство подтвердило данные профиля.", 1),
        (verdict, "Документ «паспорт.pdf» отклонён", "формат файла не соответствует заявленному", 1),
        (requested, "Данные отправлены на проверку", "на проверку в ведомство", 0),
    ];
    for (payload, title, told, emails) in cases {
        let f = fixture().await;

        f.deliver(payload).await;

        assert!(f.sender.sent_to(PHONE).is_empty(), "{title}");
        assert_eq!(f.sender.sent_to(EMAIL).len(), emails, "{title}");
        let inbox = f.inbox().await;
        assert_eq!((inbox[0].category, inbox[0].title.as_str()), (Category::PersonalData, title));
        assert!(inbox[0].body.contains(told), "{}", inbox[0].body);
    }
}

#[tokio::test]
async fn the_citizens_own_message_is_not_announced_to_them() {
    let f = fixture().await;
    f.deliver(EventPayload::ApplicationMessage {
        application_id: "01JAPP".to_owned(),
        number: Some("1".to_owned()),
        service_title: "Услуга".to_owned(),
        from_agency: false,
        preview: "Дополнение".to_owned(),
    })
    .await;

    assert_eq!(f.sender.attempts(), 0);
    assert!(f.inbox().await.is_empty());
}

#[tokio::test]
async fn a_push_only_preference_sends_nothing_because_push_has_no_provider() {
    let f = fixture().await;
    f.prefer(json!({"categories": {"applications": {"sms": false, "inbox": false, "push": true}}})).await;

    f.deliver(status_changed(Approved)).await;

    assert_eq!(f.sender.attempts(), 0);
    assert!(f.inbox().await.is_empty());
}

#[tokio::test]
async fn a_security_event_naming_the_citizen_also_fills_their_inbox() {
    let f = fixture().await;
    let changed = Event::new(&ticker(), Some(USER.to_owned()), EventPayload::PasswordChanged { destinations: vec![sms(), email()] });

    f.notifier.handle(&body(&changed)).await.unwrap();
    f.notifier.handle(&body(&changed)).await.unwrap();

    assert_eq!(f.sender.sent().len(), 2);
    let inbox = f.inbox().await;
    assert_eq!(inbox.len(), 1);
    assert_eq!((inbox[0].category, inbox[0].title.as_str()), (Category::Security, "Пароль изменён"));
}

#[tokio::test]
async fn security_channels_switched_off_in_storage_are_still_used() {
    let f = fixture().await;
    // What no API accepts, written straight into the store.
    let mut tampered = serde_json::to_value(Preferences::default()).unwrap();
    tampered["categories"]["security"] = json!({"sms": false, "email": false, "push": false, "inbox": false});
    tampered["updated_at"] = json!("2025-01-01T00:00:00Z");
    f.store.kv.put(Item::json(user_pk(USER), preferences::SETTINGS_SK, &tampered).unwrap(), Condition::None).await.unwrap();

    let locked = Event::new(&ticker(), Some(USER.to_owned()), EventPayload::AccountLocked { destinations: vec![sms(), email()] });
    f.notifier.handle(&body(&locked)).await.unwrap();

    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
    assert_eq!(f.sender.sent_to(EMAIL).len(), 1);
    assert_eq!(f.inbox().await.len(), 1);
}

#[tokio::test]
async fn one_time_codes_ignore_preferences_and_never_reach_the_inbox() {
    let f = fixture().await;
    let everything_off: serde_json::Map<String, serde_json::Value> = Category::ALL
        .iter()
        .filter(|category| **category != Category::Security)
        .map(|category| (category.as_str().to_owned(), json!({"sms": false, "email": false, "push": false, "inbox": false})))
        .collect();
    f.prefer(json!({ "categories": everything_off })).await;

    f.notifier.handle(&body(&otp_event(sms(), "123456"))).await.unwrap();

    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
    assert!(f.inbox().await.is_empty());
}

#[tokio::test]
async fn an_event_lands_only_in_the_inbox_of_the_citizen_it_names() {
    let f = fixture().await;
    put_account(f.store.kv.as_ref(), "01JOTHER00000000000000000", Some("+79990009999"), None).await;

    f.notifier.handle(&body(&citizen_event("01JOTHER00000000000000000", status_changed(Approved)))).await.unwrap();

    assert!(f.inbox().await.is_empty());
    assert_eq!(inbox_of(f.store.kv.as_ref(), "01JOTHER00000000000000000").await.len(), 1);
    assert!(f.sender.sent_to(PHONE).is_empty());
}

#[tokio::test]
async fn an_event_about_a_citizen_without_an_account_delivers_nothing() {
    let f = fixture().await;

    f.notifier.handle(&body(&citizen_event("01JGHOST00000000000000000", status_changed(Approved)))).await.unwrap();

    assert_eq!(f.sender.attempts(), 0);
    assert!(inbox_of(f.store.kv.as_ref(), "01JGHOST00000000000000000").await.is_empty());
}

#[tokio::test]
async fn a_citizen_event_that_names_no_citizen_is_rejected() {
    let f = fixture().await;
    let orphan = Event::new(&ticker(), None, status_changed(Approved));

    let outcome = f.notifier.handle(&body(&orphan)).await;

    assert!(matches!(outcome, Err(HandlerError::Reject(_))), "{outcome:?}");
    assert_eq!(f.sender.attempts(), 0);
}

#[tokio::test]
async fn a_citizen_id_that_could_bend_a_store_key_is_rejected() {
    let f = fixture().await;
    let bent = Event::new(&ticker(), Some(format!("{USER}#ACCOUNT")), status_changed(Approved));

    let outcome = f.notifier.handle(&body(&bent)).await;

    assert!(matches!(outcome, Err(HandlerError::Reject(_))), "{outcome:?}");
}

#[tokio::test]
async fn a_temporary_sms_failure_retries_without_duplicating_the_inbox_entry() {
    let f = fixture().await;
    f.sender.fail_next([shared::ports::senders::SendError::Temporary("throttled".to_owned())]);
    let message = body(&citizen_event(USER, status_changed(Approved)));

    let first = f.notifier.handle(&message).await;
    assert!(matches!(first, Err(HandlerError::Retry(_))), "{first:?}");
    f.notifier.handle(&message).await.unwrap();

    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
    assert_eq!(f.inbox().await.len(), 1);
}

#[tokio::test]
async fn unreadable_stored_settings_fall_back_to_the_defaults() {
    let f = fixture().await;
    f.store.kv.put(Item::new(user_pk(USER), preferences::SETTINGS_SK, b"not json".to_vec()), Condition::None).await.unwrap();

    f.deliver(status_changed(Approved)).await;

    assert_eq!(f.sender.sent_to(PHONE).len(), 1);
    assert_eq!(f.inbox().await.len(), 1);
    assert_eq!(preferences::load(f.store.kv.as_ref(), USER).await.unwrap(), Preferences::default());
}

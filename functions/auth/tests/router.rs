//! Function-level tests: the auth router in-process over the embedded adapters (a real redb
//! file in a temp dir), driven through `tower::ServiceExt::oneshot`.

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use shared::events::EventPayload;

use common::{Harness, PASSWORD};

#[tokio::test]
async fn concurrent_refreshes_with_one_token_yield_exactly_one_new_pair() {
    let h = Harness::new().await;
    let tokens = h.registered("race@example.ru").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let attempts = (0..12).map(|_| h.call("POST", "/v1/auth/token/refresh", Some(json!({"refresh_token": refresh})), None));
    let results = futures_join_all(attempts).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!(*status, StatusCode::UNAUTHORIZED);
        assert!(["token_reused", "session_expired", "concurrent_update"].contains(&body["code"].as_str().unwrap_or("")), "{body}");
    }
}

#[tokio::test]
async fn locked_account_rejects_correct_password_and_emits_one_lock_event() {
    let h = Harness::new().await;
    h.registered("lock@example.ru").await;
    h.events().await;
    let wrong = json!({"login": "lock@example.ru", "password": "Wrong#Pass9x"});
    assert_eq!(h.call("POST", "/v1/auth/login", Some(wrong.clone()), None).await.1["code"], "invalid_credentials");
    assert_eq!(h.call("POST", "/v1/auth/login", Some(wrong.clone()), None).await.1["code"], "invalid_credentials");
    let (status, body) = h.call("POST", "/v1/auth/login", Some(wrong.clone()), None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::LOCKED, Some("account_locked")));
    let (status, body) = h.call("POST", "/v1/auth/login", Some(json!({"login": "lock@example.ru", "password": PASSWORD})), None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::LOCKED, Some("account_locked")));
    let locks = h.events().await.into_iter().filter(|e| matches!(e.payload, EventPayload::AccountLocked { .. })).count();
    assert_eq!(locks, 1);
}

#[tokio::test]
async fn registering_a_known_email_answers_alike_and_warns_instead_of_sending_a_code() {
    let h = Harness::new().await;
    h.registered("known@example.ru").await;
    h.events().await;
    let (status, body) = h
        .call(
            "POST",
            "/v1/auth/register",
            Some(json!({"email": "Known@Example.ru ", "password": PASSWORD, "consents": {"terms": true, "personal_data": true}})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["channel", "expires_at", "flow_id"]);
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(e.payload, EventPayload::RegistrationAttempted { .. })));
    assert!(!events.iter().any(|e| matches!(e.payload, EventPayload::OtpIssued { .. })));
    // No code can finish a decoy flow.
    let (status, body) = h.call("POST", "/v1/auth/register/confirm", Some(json!({"flow_id": body["flow_id"], "code": "000000"})), None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("otp_invalid")));
}

#[tokio::test]
async fn a_code_dies_after_five_wrong_entries_even_for_the_right_code() {
    let h = Harness::new().await;
    let (body, code, wrong) = h.registration_started("otp@example.ru").await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(h.call("POST", "/v1/auth/register/confirm", Some(json!({"flow_id": body["flow_id"], "code": wrong})), None).await.1["code"].clone());
    }
    assert_eq!(codes[..4], vec![json!("otp_invalid"); 4][..]);
    assert_eq!(codes[4], "otp_attempts_exceeded");
    let (status, b) = h.call("POST", "/v1/auth/register/confirm", Some(json!({"flow_id": body["flow_id"], "code": code})), None).await;
    assert_eq!((status, b["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("otp_attempts_exceeded")));
}

#[tokio::test]
async fn password_change_revokes_other_sessions_but_keeps_the_current_one() {
    let h = Harness::new().await;
    let first = h.registered("change@example.ru").await;
    let (_, second) = h.call("POST", "/v1/auth/login", Some(json!({"login": "change@example.ru", "password": PASSWORD})), None).await;
    let second = &second["tokens"];
    let (status, _) =
        h.call("POST", "/v1/me/password", Some(json!({"current_password": PASSWORD, "new_password": "Nq8$vRt!cW4e"})), second["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.call("GET", "/v1/me", None, second["access_token"].as_str()).await.0, StatusCode::OK);
    let (status, body) = h.call("GET", "/v1/me", None, first["access_token"].as_str()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("session_expired")));
    let (status, _) = h.call("POST", "/v1/auth/token/refresh", Some(json!({"refresh_token": first["refresh_token"]})), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Polls the futures together so they really race on the store.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(futures).await
}

fn profile_body(snils: &str) -> Value {
    json!({
        "last_name": "Иванова", "first_name": "Мария", "middle_name": "Петровна",
        "birth_date": "1990-04-12", "gender": "female", "snils": snils, "inn": "500100732259",
        "passport": {"series": "4510", "number": "123456", "issued_at": "2010-05-20", "issued_by": "ОВД района Арбат г. Москвы", "division_code": "770-001"}
    })
}

#[tokio::test]
async fn profile_is_validated_field_by_field_and_changes_nothing_when_invalid() {
    let h = Harness::new().await;
    let tokens = h.registered("profile-bad@example.ru").await;
    let token = tokens["access_token"].as_str();
    let mut body = profile_body("112-233-445 96");
    body["passport"]["division_code"] = json!("77-001");
    body["birth_date"] = json!("2999-01-01");
    let (status, problem) = h.call("PUT", "/v1/me/profile", Some(body), token).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")));
    let fields: Vec<&str> = problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for expected in ["snils", "passport.division_code", "birth_date"] {
        assert!(fields.contains(&expected), "{fields:?}");
    }
    assert_eq!(h.call("GET", "/v1/me", None, token).await.1["profile"], Value::Null);
}

#[tokio::test]
async fn storing_a_profile_requests_verification_and_snils_logs_in_only_once_verified() {
    let h = Harness::new().await;
    let tokens = h.registered("profile@example.ru").await;
    h.events().await;
    let (status, profile) = h.call("PUT", "/v1/me/profile", Some(profile_body("11223344595")), tokens["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["snils"], "112-233-445 95");
    assert_eq!(profile["verification"]["status"], "pending");
    assert!(profile["verification"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{profile}");
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(e.payload, EventPayload::IdentityVerificationRequested { .. })));
    let by_snils = json!({"login": "112-233-445 95", "password": PASSWORD});
    // Typing a SNILS into a profile claims nothing: only the registry's verdict makes it a login.
    assert_eq!(h.call("POST", "/v1/auth/login", Some(by_snils.clone()), None).await.1["code"], "invalid_credentials");
    let user_id = h.call("GET", "/v1/me", None, tokens["access_token"].as_str()).await.1["user_id"].as_str().unwrap().to_owned();
    let snils = shared::domain::Snils::parse("11223344595").unwrap();
    let index = shared::ports::Item::json(
        shared::identity::login_pk(&h.state.index_key, &shared::identity::snils_login(&snils)),
        shared::identity::LOGIN_SK,
        &shared::identity::LoginIndex { user_id },
    )
    .unwrap();
    h.kv.put(index, shared::ports::Condition::NotExists).await.unwrap();
    let (status, body) = h.call("POST", "/v1/auth/login", Some(by_snils), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mfa_required"], false);
}

/// The deliveries staged for `agency`, with their parsed bodies.
async fn deliveries(h: &Harness, agency: &str) -> Vec<(shared::deliveries::Delivery, Value)> {
    let page = h.kv.query(shared::ports::Query::partition(shared::deliveries::delivery_pk(agency)).limit(100)).await.unwrap();
    let mut found: Vec<(shared::deliveries::Delivery, Value)> = page
        .items
        .iter()
        .map(|item| {
            let delivery: shared::deliveries::Delivery = item.parse().unwrap();
            let body = serde_json::from_str(&delivery.body).unwrap();
            (delivery, body)
        })
        .collect();
    found.sort_by_key(|(d, _)| d.delivery_id.clone());
    found
}

#[tokio::test]
async fn a_profile_change_asks_the_registry_agency_by_a_delivery_under_the_requests_event_id() {
    let h = Harness::new().await;
    let registry = h.state.settings.registry_agency_id.clone();
    let tokens = h.registered("verify@example.ru").await;
    let token = tokens["access_token"].as_str();
    let user_id = h.call("GET", "/v1/me", None, token).await.1["user_id"].as_str().unwrap().to_owned();
    h.events().await;

    let (status, profile) = h.call("PUT", "/v1/me/profile", Some(profile_body("11223344595")), token).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    let requested: Vec<(String, String)> = h
        .events()
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            EventPayload::IdentityVerificationRequested { request_id, .. } => Some((e.id, request_id)),
            _ => None,
        })
        .collect();
    let staged = deliveries(&h, &registry).await;
    assert_eq!(staged.len(), 1, "exactly one delivery to the registry agency");
    let (delivery, body) = &staged[0];
    assert_eq!(requested, vec![(delivery.delivery_id.clone(), profile["verification"]["request_id"].as_str().unwrap().to_owned())]);
    assert_eq!(body["type"], "identity.verification_requested");
    assert_eq!(body["data"], json!({"request_id": profile["verification"]["request_id"], "user_id": user_id, "profile": profile}));
    for other in ["mvd", "fns", "mfc"] {
        assert!(deliveries(&h, other).await.is_empty(), "{other}");
    }

    // The same core data again is no new request; changed core data is.
    assert_eq!(h.call("PUT", "/v1/me/profile", Some(profile_body("11223344595")), token).await.0, StatusCode::OK);
    assert_eq!(deliveries(&h, &registry).await.len(), 1);
    let mut renamed = profile_body("11223344595");
    renamed["last_name"] = json!("Петрова");
    let (status, changed) = h.call("PUT", "/v1/me/profile", Some(renamed), token).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let staged = deliveries(&h, &registry).await;
    assert_eq!(staged.len(), 2);
    assert_ne!(changed["verification"]["request_id"], profile["verification"]["request_id"]);
    assert_eq!(staged[1].1["data"]["request_id"], changed["verification"]["request_id"]);
    assert_eq!(staged[1].1["data"]["profile"]["last_name"], "Петрова");
}

/// Fails every transaction while `down` is set, as a store that refuses the commit.
struct RefusingKv {
    inner: std::sync::Arc<dyn shared::ports::KeyValue>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl shared::ports::KeyValue for RefusingKv {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<shared::ports::Item>, shared::ports::KvError> {
        self.inner.get(pk, sk).await
    }
    async fn put(&self, item: shared::ports::Item, condition: shared::ports::Condition) -> Result<u64, shared::ports::KvError> {
        self.inner.put(item, condition).await
    }
    async fn delete(&self, pk: &str, sk: &str, condition: shared::ports::Condition) -> Result<(), shared::ports::KvError> {
        self.inner.delete(pk, sk, condition).await
    }
    async fn transact(&self, ops: Vec<shared::ports::TxOp>) -> Result<(), shared::ports::KvError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(shared::ports::KvError::Backend("refused".into()));
        }
        self.inner.transact(ops).await
    }
    async fn query(&self, query: shared::ports::Query) -> Result<shared::ports::Page, shared::ports::KvError> {
        self.inner.query(query).await
    }
}

#[tokio::test]
async fn a_profile_change_that_fails_to_commit_asks_the_registry_nothing() {
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let switch = down.clone();
    let h = Harness::wrapping(|inner| std::sync::Arc::new(RefusingKv { inner, down: switch })).await;
    let tokens = h.registered("refused@example.ru").await;
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, _) = h.call("PUT", "/v1/me/profile", Some(profile_body("11223344595")), tokens["access_token"].as_str()).await;
    assert!(status.is_server_error(), "{status}");
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(deliveries(&h, &h.state.settings.registry_agency_id).await.is_empty());
    assert_eq!(h.call("GET", "/v1/me", None, tokens["access_token"].as_str()).await.1["profile"], Value::Null);
}

#[tokio::test]
async fn parallel_wrong_passwords_are_all_counted_and_lock_after_three() {
    let h = Harness::new().await;
    h.registered("race-lock@example.ru").await;
    let wrong = json!({"login": "race-lock@example.ru", "password": "Wrong#Pass9x"});
    let results = futures_join_all((0..16).map(|_| h.call("POST", "/v1/auth/login", Some(wrong.clone()), None))).await;
    for (status, body) in &results {
        assert!([StatusCode::UNAUTHORIZED, StatusCode::LOCKED, StatusCode::TOO_MANY_REQUESTS].contains(status), "{status} {body}");
    }
    let (status, body) = h.call("POST", "/v1/auth/login", Some(json!({"login": "race-lock@example.ru", "password": PASSWORD})), None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::LOCKED, Some("account_locked")));
    // At most three passwords were ever checked: the rest met the counter or the lock.
    let evaluated = results.iter().filter(|(s, b)| *s == StatusCode::UNAUTHORIZED || (*s == StatusCode::LOCKED && b["code"] == "account_locked")).count();
    assert!(evaluated >= 3);
    let (account, _) = shared::identity::load(h.kv.as_ref(), &h.user_id_of("race-lock@example.ru").await).await.unwrap().unwrap();
    assert!(account.locked);
    assert!(account.failed_attempts <= 3, "{}", account.failed_attempts);
}

#[tokio::test]
async fn parallel_code_guesses_are_all_counted() {
    let h = Harness::new().await;
    let (body, code, wrong) = h.registration_started("guess@example.ru").await;
    let results =
        futures_join_all((0..25).map(|_| h.call("POST", "/v1/auth/register/confirm", Some(json!({"flow_id": body["flow_id"], "code": wrong})), None))).await;
    let invalid = results.iter().filter(|(_, b)| b["code"] == "otp_invalid").count();
    assert!(invalid <= 4, "{invalid} wrong guesses were answered otp_invalid; at most 4 may be");
    let (status, b) = h.call("POST", "/v1/auth/register/confirm", Some(json!({"flow_id": body["flow_id"], "code": code})), None).await;
    assert_eq!((status, b["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("otp_attempts_exceeded")));
}

#[tokio::test]
async fn recovery_answers_alike_for_known_and_unknown_logins_including_resend() {
    let h = Harness::new().await;
    h.registered("known-recover@example.ru").await;
    for login in ["known-recover@example.ru", "nobody@example.ru"] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let (status, body) = h.call("POST", "/v1/auth/password/recover", Some(json!({"login": login})), None).await;
            statuses.push(status);
            if status == StatusCode::ACCEPTED {
                assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["flow_id"]);
            }
        }
        assert_eq!(statuses, [vec![StatusCode::ACCEPTED; 5], vec![StatusCode::TOO_MANY_REQUESTS]].concat(), "{login}");
    }
}

#[tokio::test]
async fn changing_core_data_drops_a_verified_level_to_simplified() {
    let h = Harness::new().await;
    let tokens = h.registered("level@example.ru").await;
    let token = tokens["access_token"].as_str();
    assert_eq!(h.call("PUT", "/v1/me/profile", Some(profile_body("11223344595")), token).await.0, StatusCode::OK);
    let user_id = h.call("GET", "/v1/me", None, token).await.1["user_id"].as_str().unwrap().to_owned();
    h.promote(&user_id, shared::identity::Level::Standard).await;
    // Same core data: the level stays.
    let mut same = profile_body("11223344595");
    same["inn"] = Value::Null;
    assert_eq!(h.call("PUT", "/v1/me/profile", Some(same), token).await.0, StatusCode::OK);
    assert_eq!(h.call("GET", "/v1/me", None, token).await.1["level"], "standard");
    h.events().await;
    let mut renamed = profile_body("11223344595");
    renamed["last_name"] = json!("Петрова");
    assert_eq!(h.call("PUT", "/v1/me/profile", Some(renamed), token).await.0, StatusCode::OK);
    let me = h.call("GET", "/v1/me", None, token).await.1;
    assert_eq!((me["level"].as_str(), me["profile"]["verification"]["status"].as_str()), (Some("simplified"), Some("pending")));
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.payload, EventPayload::IdentityLevelChanged { level: shared::identity::Level::Simplified, .. })));
}

#[tokio::test]
async fn newly_issued_tokens_carry_the_current_level() {
    let h = Harness::new().await;
    let tokens = h.registered("lvl@example.ru").await;
    let user_id = h.call("GET", "/v1/me", None, tokens["access_token"].as_str()).await.1["user_id"].as_str().unwrap().to_owned();
    h.promote(&user_id, shared::identity::Level::Confirmed).await;
    let (_, refreshed) = h.call("POST", "/v1/auth/token/refresh", Some(json!({"refresh_token": tokens["refresh_token"]})), None).await;
    let claims = h.verifier().verify(refreshed["tokens"]["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.lvl, "confirmed");
}

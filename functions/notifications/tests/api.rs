//! The settings and inbox API in-process: the real router over the embedded store, with access
//! tokens signed by a freshly generated key ring, and inbox entries written by the Notifier.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use chrono::{Duration, Utc};
use common::{EMAIL, PHONE, RecordingSender, USER, put_account, status_changed, store};
use http::{Method, Request, StatusCode};
use jsonwebtoken::{Algorithm, Header};
use notifications::{NotificationsState, Notifier, Preferences};
use serde_json::{Value, json};
use shared::events::{Event, EventPayload};
use shared::http::{AccessClaims, TokenVerifier};
use shared::keys::KeyRing;
use shared::vocabulary::ApplicationStatus;
use shared::worker::MessageHandler;
use tower::ServiceExt;

const ISSUER: &str = "http://127.0.0.1:3000";
const AUDIENCE: &str = "gosuslugi-api";
const OTHER: &str = "01JOTHER00000000000000000";

struct Fixture {
    store: common::Store,
    keys: KeyRing,
    app: Router,
    notifier: Notifier,
}

fn fixture() -> Fixture {
    let store = store();
    let keys = KeyRing::from_json(&KeyRing::generate_json().unwrap()).unwrap();
    let verifier = Arc::new(TokenVerifier::new(ISSUER, AUDIENCE, &keys));
    let app = shared::http::finish(notifications::router(Arc::new(NotificationsState::new(store.kv.clone(), verifier))));
    let sender = RecordingSender::new();
    let notifier = Notifier::new(store.kv.clone(), sender.clone(), sender);
    Fixture { store, keys, app, notifier }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Fixture {
    fn token(&self, user_id: &str) -> String {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            sub: user_id.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now + 900,
            iat: now,
            jti: ulid::Ulid::new().to_string(),
            sid: "01JSESSION".to_owned(),
            lvl: "simplified".to_owned(),
            amr: vec!["pwd".to_owned()],
        };
        let key = self.keys.current();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
    }

    async fn call(&self, method: Method, path: &str, user_id: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(user_id) = user_id {
            request = request.header("authorization", format!("Bearer {}", self.token(user_id)));
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Reply { status, content_type, body }
    }

    async fn get(&self, path: &str, user_id: &str) -> Reply {
        self.call(Method::GET, path, Some(user_id), None).await
    }

    /// Every page of `list` (a `GET /v1/me/notifications?…` path), following the cursors.
    async fn pages(&self, list: &str, user_id: &str) -> Vec<Reply> {
        let mut pages = vec![self.get(list, user_id).await];
        while let Some(cursor) = pages.last().and_then(|page| page.body["next_cursor"].as_str().map(str::to_owned)) {
            pages.push(self.get(&format!("{list}&cursor={cursor}"), user_id).await);
        }
        pages
    }

    /// Delivers `count` status changes to `user_id`, a minute apart, oldest first.
    async fn fill_inbox(&self, user_id: &str, count: usize) {
        put_account(self.store.kv.as_ref(), user_id, Some(PHONE), Some(EMAIL)).await;
        let start = Utc::now() - Duration::hours(1);
        for i in 0..count {
            let mut event = Event::new(&common::ticker(), Some(user_id.to_owned()), status_changed(ApplicationStatus::InProgress));
            event.at = start + Duration::minutes(i as i64);
            if let EventPayload::ApplicationStatusChanged { number, .. } = &mut event.payload {
                *number = Some(format!("N-{i}"));
            }
            self.notifier.handle(&serde_json::to_string(&event).unwrap()).await.unwrap();
        }
    }
}

impl Reply {
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert!(self.content_type.starts_with("application/problem+json"), "{}", self.content_type);
    }

    fn numbers(&self) -> Vec<String> {
        self.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["title"].as_str().unwrap().split(' ').nth(2).unwrap().trim_end_matches(':').to_owned())
            .collect()
    }
}

/// The settings every citizen starts with (their values are pinned in the domain's tests).
fn defaults() -> Value {
    defaults_with(&[])
}

/// The defaults with these `(category, channel, on)` changes.
fn defaults_with(changes: &[(&str, &str, bool)]) -> Value {
    let mut settings = serde_json::to_value(Preferences::default()).unwrap();
    for (category, channel, on) in changes {
        settings["categories"][category][channel] = json!(on);
    }
    settings
}

const SETTINGS: &str = "/v1/me/notification-settings";

#[tokio::test]
async fn settings_start_at_the_defaults_for_all_six_categories_and_four_channels() {
    let f = fixture();

    let reply = f.get(SETTINGS, USER).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, defaults());
}

#[tokio::test]
async fn a_put_is_stored_and_answered_with_the_resulting_settings() {
    let f = fixture();
    let wanted = defaults_with(&[("applications", "sms", false), ("payments", "push", true)]);

    let put = f.call(Method::PUT, SETTINGS, Some(USER), Some(wanted.clone())).await;
    let read = f.get(SETTINGS, USER).await;

    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.body, wanted);
    assert_eq!(read.body, wanted);
    assert_eq!(f.get(SETTINGS, OTHER).await.body, defaults(), "settings are per citizen");
}

#[tokio::test]
async fn a_partial_put_keeps_everything_it_does_not_name() {
    let f = fixture();

    let put = f.call(Method::PUT, SETTINGS, Some(USER), Some(json!({"categories": {"system": {"email": false}}}))).await;

    assert_eq!(put.body, defaults_with(&[("system", "email", false)]));
}

#[tokio::test]
async fn switching_a_security_channel_off_is_refused_and_changes_nothing() {
    let f = fixture();
    let body = defaults_with(&[("applications", "email", true), ("security", "email", false)]);

    let reply = f.call(Method::PUT, SETTINGS, Some(USER), Some(body)).await;

    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.body["errors"][0]["field"], "categories.security.email");
    assert_eq!(reply.body["errors"][0]["code"], "cannot_disable");
    assert_eq!(f.get(SETTINGS, USER).await.body, defaults());
}

#[tokio::test]
async fn unknown_categories_and_channels_are_bad_requests() {
    let f = fixture();

    let category = f.call(Method::PUT, SETTINGS, Some(USER), Some(json!({"categories": {"weather": {"sms": true}}}))).await;
    let channel = f.call(Method::PUT, SETTINGS, Some(USER), Some(json!({"categories": {"payments": {"pigeon": true}}}))).await;
    let value = f.call(Method::PUT, SETTINGS, Some(USER), Some(json!({"categories": {"payments": {"sms": "on"}}}))).await;

    category.assert_problem(400, "validation_failed");
    assert_eq!(category.body["errors"][0]["field"], "categories.weather");
    channel.assert_problem(400, "validation_failed");
    assert_eq!(channel.body["errors"][0]["field"], "categories.payments.pigeon");
    value.assert_problem(400, "validation_failed");
    assert_eq!(f.get(SETTINGS, USER).await.body, defaults());
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_bad_request() {
    let f = fixture();
    let request = Request::builder()
        .method(Method::PUT)
        .uri(SETTINGS)
        .header("authorization", format!("Bearer {}", f.token(USER)))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();

    let response = f.app.clone().oneshot(request).await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn delete_brings_the_defaults_back() {
    let f = fixture();
    f.call(Method::PUT, SETTINGS, Some(USER), Some(json!({"categories": {"deadlines": {"sms": true}}}))).await;

    let deleted = f.call(Method::DELETE, SETTINGS, Some(USER), None).await;

    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body, defaults());
    assert_eq!(f.get(SETTINGS, USER).await.body, defaults());
}

#[tokio::test]
async fn every_route_needs_a_valid_access_token() {
    let f = fixture();
    for (method, path) in [
        (Method::GET, SETTINGS),
        (Method::PUT, SETTINGS),
        (Method::DELETE, SETTINGS),
        (Method::GET, "/v1/me/notifications"),
        (Method::POST, "/v1/me/notifications/01JZZZZZZZZZZZZZZZZZZZZZZZ/read"),
    ] {
        f.call(method.clone(), path, None, None).await.assert_problem(401, "unauthorized");
    }
    let foreign = KeyRing::from_json(&KeyRing::generate_json().unwrap()).unwrap();
    let forged = Fixture { keys: foreign, ..fixture() };
    let request = Request::builder().uri(SETTINGS).header("authorization", format!("Bearer {}", forged.token(USER))).body(Body::empty()).unwrap();
    assert_eq!(f.app.clone().oneshot(request).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_inbox_lists_newest_first_in_pages() {
    let f = fixture();
    f.fill_inbox(USER, 5).await;

    let pages = f.pages("/v1/me/notifications?limit=2", USER).await;

    assert_eq!(pages.iter().map(Reply::numbers).collect::<Vec<_>>(), vec![vec!["N-4", "N-3"], vec!["N-2", "N-1"], vec!["N-0"]]);
    let item = &pages[0].body["items"][0];
    assert_eq!(item["category"], "applications");
    assert_eq!(item["read"], false);
    assert_eq!(item["link"], "/applications/01JAPP000000000000000000AA");
    assert!(item["id"].is_string() && item["body"].is_string() && item["at"].is_string());
}

#[tokio::test]
async fn a_full_last_page_has_no_cursor() {
    let f = fixture();
    f.fill_inbox(USER, 2).await;

    let page = f.get("/v1/me/notifications?limit=2", USER).await;

    assert_eq!(page.numbers().len(), 2);
    assert!(page.body["next_cursor"].is_null());
}

#[tokio::test]
async fn marking_read_removes_the_entry_from_the_unread_list_only() {
    let f = fixture();
    f.fill_inbox(USER, 3).await;
    let all = f.get("/v1/me/notifications", USER).await;
    let newest = all.body["items"][0]["id"].as_str().unwrap().to_owned();

    let read = f.call(Method::POST, &format!("/v1/me/notifications/{newest}/read"), Some(USER), None).await;
    let again = f.call(Method::POST, &format!("/v1/me/notifications/{newest}/read"), Some(USER), None).await;

    assert_eq!(read.status, StatusCode::NO_CONTENT);
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    assert_eq!(f.get("/v1/me/notifications?unread=true", USER).await.numbers(), vec!["N-1", "N-0"]);
    let after = f.get("/v1/me/notifications", USER).await;
    assert_eq!(after.numbers(), vec!["N-2", "N-1", "N-0"]);
    assert_eq!(after.body["items"][0]["read"], true);
    assert_eq!(after.body["items"][1]["read"], false);
}

#[tokio::test]
async fn the_unread_list_pages_too() {
    let f = fixture();
    f.fill_inbox(USER, 3).await;

    let pages = f.pages("/v1/me/notifications?unread=true&limit=2", USER).await;

    assert_eq!(pages.iter().map(Reply::numbers).collect::<Vec<_>>(), vec![vec!["N-2", "N-1"], vec!["N-0"]]);
}

#[tokio::test]
async fn another_citizens_notification_is_not_found_and_stays_unread() {
    let f = fixture();
    f.fill_inbox(OTHER, 1).await;
    let theirs = f.get("/v1/me/notifications", OTHER).await.body["items"][0]["id"].as_str().unwrap().to_owned();

    let reply = f.call(Method::POST, &format!("/v1/me/notifications/{theirs}/read"), Some(USER), None).await;

    reply.assert_problem(404, "not_found");
    assert_eq!(f.get("/v1/me/notifications?unread=true", OTHER).await.numbers().len(), 1);
    assert!(f.get("/v1/me/notifications", USER).await.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_id_that_is_no_notification_is_not_found() {
    let f = fixture();
    for id in ["01JZZZZZZZZZZZZZZZZZZZZZZZ", "nonsense", "01jzzzzzzzzzzzzzzzzzzzzzzz"] {
        f.call(Method::POST, &format!("/v1/me/notifications/{id}/read"), Some(USER), None).await.assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_problems() {
    let f = fixture();
    for query in ["unread=maybe", "limit=0", "limit=101", "limit=ten", "cursor=INBOX%23x"] {
        f.get(&format!("/v1/me/notifications?{query}"), USER).await.assert_problem(400, "validation_failed");
    }
}

//! Acceptance journeys for SPEC §6 (notification settings and the inbox) over real HTTP against
//! the local runner. Each test starts its own runner with fresh storage.

use std::time::Instant;

use e2e::{Api, Citizen, Runner, TestPhone, outbox_wait, parse_utc, strong_password};
use serde_json::{Value, json};

const SETTINGS: &str = "/v1/me/notification-settings";
const INBOX: &str = "/v1/me/notifications";

fn defaults() -> Value {
    json!({"categories": {
        "applications": {"sms": true, "email": false, "push": false, "inbox": true},
        "personal_data": {"sms": false, "email": true, "push": false, "inbox": true},
        "deadlines": {"sms": false, "email": true, "push": false, "inbox": true},
        "payments": {"sms": false, "email": true, "push": false, "inbox": true},
        "security": {"sms": true, "email": true, "push": false, "inbox": true},
        "system": {"sms": false, "email": true, "push": false, "inbox": true},
    }})
}

/// A freshly registered citizen's client (phone confirmed), and the phone.
async fn citizen(runner: &Runner) -> (Api, TestPhone, String) {
    let api = runner.api();
    let Citizen { phone, password, tokens } = api.new_citizen().await;
    (api.bearer(&tokens.access_token), phone, password)
}

/// The inbox once it holds at least `count` entries (delivery goes through the queue).
async fn wait_for_inbox(api: &Api, query: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + outbox_wait();
    loop {
        let reply = api.get(&format!("{INBOX}{query}")).await;
        reply.expect(200);
        let items = reply.body["items"].as_array().cloned().unwrap_or_else(|| panic!("no items array: {reply}"));
        if items.len() >= count {
            return items;
        }
        assert!(Instant::now() < deadline, "expected {count} inbox entries within {:?}, found {}", outbox_wait(), items.len());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn citizen_changes_notification_settings_and_resets_them_to_the_defaults() {
    let runner = Runner::start().await;
    let (me, _, _) = citizen(&runner).await;

    let initial = me.get(SETTINGS).await;
    initial.expect(200);
    assert_eq!(initial.body, defaults(), "{initial}");

    let mut wanted = defaults();
    wanted["categories"]["applications"]["sms"] = json!(false);
    wanted["categories"]["applications"]["email"] = json!(true);
    wanted["categories"]["deadlines"]["sms"] = json!(true);
    let put = me.put_json(SETTINGS, &wanted).await;
    put.expect(200);
    assert_eq!(put.body, wanted, "{put}");
    assert_eq!(me.get(SETTINGS).await.body, wanted);

    // A partial body changes only what it names.
    let partial = me.put_json(SETTINGS, &json!({"categories": {"payments": {"push": true}}})).await;
    partial.expect(200);
    assert_eq!(partial.body["categories"]["payments"]["push"], true, "{partial}");
    assert_eq!(partial.body["categories"]["applications"], wanted["categories"]["applications"], "{partial}");

    let reset = me.delete(SETTINGS).await;
    reset.expect(200);
    assert_eq!(reset.body, defaults(), "{reset}");
    assert_eq!(me.get(SETTINGS).await.body, defaults());

    let unknown = me.put_json(SETTINGS, &json!({"categories": {"weather": {"sms": true}}})).await;
    unknown.assert_problem(400, "validation_failed");
    assert_eq!(unknown.error_fields(), vec!["categories.weather".to_owned()], "{unknown}");
    let channel = me.put_json(SETTINGS, &json!({"categories": {"system": {"fax": true}}})).await;
    channel.assert_problem(400, "validation_failed");

    runner.api().get(SETTINGS).await.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn security_notifications_cannot_be_switched_off() {
    let runner = Runner::start().await;
    let (me, _, _) = citizen(&runner).await;

    let mut body = defaults();
    body["categories"]["security"]["sms"] = json!(false);
    body["categories"]["security"]["inbox"] = json!(false);
    body["categories"]["system"]["email"] = json!(false);
    let refused = me.put_json(SETTINGS, &body).await;

    refused.assert_problem(422, "validation_failed");
    assert_eq!(refused.error_fields(), vec!["categories.security.sms".to_owned(), "categories.security.inbox".to_owned()], "{refused}");
    assert!(refused.error_codes().iter().all(|code| code == "cannot_disable"), "{refused}");
    assert_eq!(me.get(SETTINGS).await.body, defaults(), "a refused update changes nothing");
}

#[tokio::test]
async fn a_password_change_lands_in_the_inbox_and_is_marked_read() {
    let runner = Runner::start().await;
    let (me, phone, password) = citizen(&runner).await;
    assert!(me.get(INBOX).await.body["items"].as_array().is_some_and(Vec::is_empty));

    me.post_json("/v1/me/password", &json!({"current_password": password, "new_password": strong_password()})).await.expect(204);

    let items = wait_for_inbox(&me, "", 1).await;
    let entry = &items[0];
    assert_eq!(entry["category"], "security", "{entry}");
    assert_eq!(entry["title"], "Пароль изменён", "{entry}");
    assert_eq!(entry["read"], false, "{entry}");
    assert!(entry["body"].as_str().is_some_and(|body| !body.is_empty()), "{entry}");
    parse_utc(&entry["at"]);
    let id = entry["id"].as_str().expect("an id").to_owned();
    assert_eq!(wait_for_inbox(&me, "?unread=true", 1).await.len(), 1);
    // The security SMS went out too (it cannot be switched off).
    assert!(
        me.wait_for_outbox(&phone.e164, 2).await.iter().any(|m| m["body"].as_str().is_some_and(|b| b.contains("пароль изменён"))),
        "the password-change SMS reached the dev outbox"
    );

    // Another citizen cannot touch it.
    let (stranger, _, _) = citizen(&runner).await;
    stranger.post_empty(&format!("{INBOX}/{id}/read")).await.assert_problem(404, "not_found");
    assert!(stranger.get(INBOX).await.body["items"].as_array().is_some_and(Vec::is_empty));

    me.post_empty(&format!("{INBOX}/{id}/read")).await.expect(204);
    me.post_empty(&format!("{INBOX}/{id}/read")).await.expect(204);
    let unread = me.get(&format!("{INBOX}?unread=true")).await;
    unread.expect(200);
    assert!(unread.body["items"].as_array().is_some_and(Vec::is_empty), "{unread}");
    assert!(unread.body["next_cursor"].is_null(), "{unread}");
    let all = me.get(INBOX).await;
    assert_eq!(all.body["items"][0]["read"], true, "{all}");
}

#[tokio::test]
async fn a_lockout_warns_the_citizen_in_the_inbox() {
    let runner = Runner::start().await;
    let (me, phone, _) = citizen(&runner).await;

    for _ in 0..3 {
        let wrong = runner.api().login(&phone.e164, &strong_password()).await;
        assert!(wrong.status.is_client_error(), "{wrong}");
    }

    let items = wait_for_inbox(&me, "?unread=true", 1).await;
    let locked: Vec<&Value> = items.iter().filter(|item| item["title"] == "Учётная запись заблокирована").collect();
    assert_eq!(locked.len(), 1, "one lockout entry: {items:?}");
    assert_eq!(locked[0]["category"], "security");
    assert!(locked[0]["link"].is_string(), "{}", locked[0]);
}

#[tokio::test]
async fn the_openapi_document_lists_the_notification_routes() {
    let runner = Runner::start().await;

    let doc = runner.api().get("/openapi.json").await;

    doc.expect(200);
    for (path, method) in [(SETTINGS, "get"), (SETTINGS, "put"), (SETTINGS, "delete"), (INBOX, "get"), ("/v1/me/notifications/{id}/read", "post")] {
        assert!(doc.body["paths"][path][method].is_object(), "{method} {path} is documented");
    }
}

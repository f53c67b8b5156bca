//! Function-level tests: the applications router in-process over the embedded adapters (a real
//! redb file in a temp dir), driven through `tower::ServiceExt::oneshot`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use common::{Harness, embedded_kv, id_of};
use shared::events::EventPayload;
use shared::ports::{Query, Queue, QueueError, ReceivedMessage};
use shared::vocabulary::{ApplicationStatus, Level, LevelChangeReason};

fn statuses(app: &Value) -> Vec<String> {
    app["history"].as_array().expect("history").iter().map(|h| h["status"].as_str().unwrap_or("").to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn catalogue_is_public_and_filters_by_category_agency_and_text() {
    let h = Harness::embedded().await;
    let all = h.call("GET", "/v1/services", None, None, &[]).await.expect(200).body;
    let items = all["items"].as_array().expect("items");
    assert!(items.len() >= 12);
    assert!(items[0].get("form_schema").is_none(), "lists omit the schema");
    assert!(all["next_cursor"].is_null());

    let found = h.call("GET", "/v1/services?q=%D0%9F%D0%90%D0%A1%D0%9F%D0%9E%D0%A0%D0%A2", None, None, &[]).await.expect(200).body; // q=ПАСПОРТ
    let codes: Vec<&str> = found["items"].as_array().unwrap().iter().filter_map(|s| s["code"].as_str()).collect();
    assert!(codes.contains(&"passport-replacement") && codes.contains(&"foreign-passport"), "{codes:?}");
    assert!(!codes.contains(&"mfc-appointment"));

    let gibdd = h.call("GET", "/v1/services?agency_id=gibdd&category=transport", None, None, &[]).await.expect(200).body;
    let gibdd = gibdd["items"].as_array().unwrap();
    assert_eq!(gibdd.len(), 2);
    assert!(gibdd.iter().all(|s| s["agency_id"] == "gibdd" && s["category"] == "transport"));

    let first = h.call("GET", "/v1/services?limit=5", None, None, &[]).await.expect(200).body;
    let cursor = first["next_cursor"].as_str().expect("more pages");
    let second = h.call("GET", &format!("/v1/services?limit=5&cursor={cursor}"), None, None, &[]).await.expect(200).body;
    assert_ne!(first["items"][0]["code"], second["items"][0]["code"]);

    let one = h.call("GET", "/v1/services/passport-replacement", None, None, &[]).await.expect(200).body;
    assert_eq!(one["required_level"], "standard");
    assert_eq!(one["fee_kopecks"], 60000);
    assert!(one["form_schema"].is_object() && one["form_example"].is_object());
    h.call("GET", "/v1/services/teleportation", None, None, &[]).await.problem(404, "not_found");
    h.call("GET", "/v1/services?limit=500", None, None, &[]).await.problem(400, "validation_failed");
}

// ---------------------------------------------------------------------------------------------
// Drafts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn draft_is_created_patched_and_listed_with_versions() {
    let (h, anna) = Harness::with_citizen().await;
    let created = h.post("/v1/applications", json!({"service_code": "mfc-appointment", "form": {"office": "МФЦ"}}), &anna).await.expect(201);
    assert_eq!(created.headers["etag"], "\"1\"");
    let app = created.body;
    assert_eq!((app["status"].as_str(), app["status_title"].as_str(), app["version"].as_u64()), (Some("draft"), Some("Черновик"), Some(1)));
    assert!(app["number"].is_null() && app["submitted_at"].is_null() && app["rejection"].is_null());
    assert_eq!(app["result_document_ids"], json!([]));
    assert_eq!(app["history"][0]["actor"]["type"], "citizen");
    assert!(app.get("user_id").is_none(), "the owner id stays inside");
    let id = id_of(&app);

    let patched = h
        .call("PATCH", &format!("/v1/applications/{id}"), Some(json!({"form": {"office": "МФЦ Хамовники", "topic": "other"}})), Some(&anna.token), &[])
        .await
        .expect(200)
        .body;
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["form"]["topic"], "other");
    assert_eq!(h.application(&anna, &id).await, patched);

    h.create(&anna, "mfc-appointment").await;
    let other = h.submitted(&anna, "mfc-appointment").await;
    let drafts = h.get("/v1/applications?status=draft", &anna).await.expect(200).body;
    assert_eq!(drafts["items"].as_array().unwrap().len(), 2);
    let submitted = h.get("/v1/applications?status=submitted&service_code=mfc-appointment", &anna).await.expect(200).body;
    assert_eq!(submitted["items"][0]["application_id"], other["application_id"]);
    assert_eq!(submitted["items"].as_array().unwrap().len(), 1);

    let page1 = h.get("/v1/applications?limit=2", &anna).await.expect(200).body;
    assert_eq!(page1["items"][0]["application_id"], other["application_id"], "newest first");
    let cursor = page1["next_cursor"].as_str().expect("a second page");
    let page2 = h.get(&format!("/v1/applications?limit=2&cursor={cursor}"), &anna).await.expect(200).body;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());
    assert_eq!(page2["items"][0]["application_id"], id);

    h.get("/v1/applications?status=lost", &anna).await.problem(400, "validation_failed");
    h.post("/v1/applications", json!({"service_code": "teleportation"}), &anna).await.problem(422, "validation_failed");
    h.post("/v1/applications", json!({"service_code": "mfc-appointment", "form": [1]}), &anna).await.problem(400, "validation_failed");
    h.call("POST", "/v1/applications", Some(json!({"service_code": "mfc-appointment"})), None, &[]).await.problem(401, "unauthorized");
}

#[tokio::test]
async fn another_citizens_application_is_not_found() {
    let (h, anna) = Harness::with_citizen().await;
    let boris = h.citizen("simplified").await;
    let draft = h.create(&anna, "mfc-appointment").await;
    let id = id_of(&draft);
    h.get(&format!("/v1/applications/{id}"), &boris).await.problem(404, "not_found");
    h.call("PATCH", &format!("/v1/applications/{id}"), Some(json!({"form": {}})), Some(&boris.token), &[]).await.problem(404, "not_found");
    h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&boris.token), &[]).await.problem(404, "not_found");
    h.get(&format!("/v1/applications/{id}/messages"), &boris).await.problem(404, "not_found");
    h.get("/v1/applications/not-an-id", &anna).await.problem(404, "not_found");
    assert_eq!(h.get("/v1/applications", &boris).await.body["items"], json!([]));
    assert_eq!(h.application(&anna, &id).await, draft, "nothing changed");
}

// ---------------------------------------------------------------------------------------------
// Submission
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn submit_assigns_a_number_and_commits_a_status_event() {
    let (h, anna) = Harness::with_citizen().await;
    let first = h.submitted(&anna, "mfc-appointment").await;
    let second = h.submitted(&anna, "mfc-appointment").await;
    for app in [&first, &second] {
        assert_eq!((app["status"].as_str(), app["status_title"].as_str()), (Some("submitted"), Some("Отправлено")));
        let number = app["number"].as_str().expect("number");
        let year = chrono::Utc::now().format("%Y").to_string();
        assert!(number.len() == 12 && number.starts_with(&format!("{year}-")), "{number}");
        assert!(app["submitted_at"].is_string() && app["expected_completion_date"].is_string());
        assert_eq!(statuses(app), ["draft", "submitted"]);
        assert_eq!(app["version"], 2);
    }
    assert_ne!(first["number"], second["number"]);
    let events = h.events().await;
    let changes: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ApplicationStatusChanged { application_id, status, status_title, number, service_title, .. } => {
                assert_eq!(e.user_id.as_deref(), Some(anna.user_id.as_str()));
                assert_eq!(service_title, "Запись на приём в МФЦ");
                Some((application_id.clone(), *status, status_title.clone(), number.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0], (id_of(&first), ApplicationStatus::Submitted, "Отправлено".into(), first["number"].as_str().map(str::to_owned)));
    let left: Vec<_> = h.kv.query(Query::partition("OUTBOX")).await.unwrap().items;
    assert!(left.is_empty(), "relayed events leave the outbox");
}

#[tokio::test]
async fn submit_reports_every_schema_and_document_problem_and_changes_nothing() {
    let h = Harness::embedded().await;
    let anna = h.citizen("standard").await;
    let boris = h.citizen("standard").await;
    let pending = h.document(&anna.user_id, "passport", "pending_upload").await;
    let borrowed = h.document(&boris.user_id, "photo", "available").await;
    let draft = h
        .post(
            "/v1/applications",
            json!({"service_code": "passport-replacement", "form": {"reason": "age_50", "first_name": "Анна", "birth_date": "17.05.1988"}, "document_ids": [pending, borrowed]}),
            &anna,
        )
        .await
        .expect(201)
        .body;
    let id = id_of(&draft);
    let refused = h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&anna.token), &[]).await.problem(422, "validation_failed");
    let errors: Vec<(String, String)> =
        refused.body["errors"].as_array().unwrap().iter().map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned())).collect();
    for expected in [
        ("/form/reason", "enum"),
        ("/form/birth_date", "format"),
        ("/form/last_name", "required"),
        ("/form/birth_place", "required"),
        ("/form/registration_address", "required"),
        ("/document_ids/0", "document_not_available"),
        ("/document_ids/1", "document_not_found"),
    ] {
        assert!(errors.contains(&(expected.0.to_owned(), expected.1.to_owned())), "missing {expected:?} in {errors:?}");
    }
    let missing: Vec<_> = refused.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == "missing_document")
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(missing.len(), 2, "neither the passport (pending) nor the photo (someone else's) counts: {missing:?}");
    assert!(missing.iter().any(|m| m.contains("Фотография")));
    assert_eq!(h.application(&anna, &id).await, draft);
    assert!(h.events().await.is_empty());
}

#[tokio::test]
async fn submit_checks_the_accounts_current_level_not_the_tokens() {
    let (h, anna) = Harness::with_citizen().await;
    let boasting = common::Citizen { user_id: anna.user_id.clone(), token: h.token(&anna.user_id, "confirmed") };
    let passport = h.document(&anna.user_id, "passport", "available").await;
    let photo = h.document(&anna.user_id, "photo", "available").await;
    let form = h.state.catalogue.get("passport-replacement").unwrap().form_example.clone();
    let draft = h
        .post("/v1/applications", json!({"service_code": "passport-replacement", "form": form, "document_ids": [passport, photo]}), &boasting)
        .await
        .expect(201)
        .body;
    let id = id_of(&draft);
    h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&boasting.token), &[]).await.problem(403, "level_insufficient");
    assert_eq!(h.application(&anna, &id).await["status"], "draft");

    h.set_level(&anna.user_id, Level::Standard).await;
    let submitted = h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&anna.token), &[]).await.expect(200).body;
    assert_eq!(submitted["status"], "submitted");
    assert_eq!(submitted["document_ids"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn only_drafts_can_be_patched_or_submitted() {
    let (h, anna) = Harness::with_citizen().await;
    let app = h.submitted(&anna, "mfc-appointment").await;
    let id = id_of(&app);
    h.call("PATCH", &format!("/v1/applications/{id}"), Some(json!({"form": {}})), Some(&anna.token), &[]).await.problem(409, "invalid_transition");
    h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&anna.token), &[]).await.problem(409, "invalid_transition");
    h.post(&format!("/v1/applications/{id}/supplement"), json!({"document_ids": [], "comment": "вот"}), &anna).await.problem(409, "invalid_transition");
    assert_eq!(h.application(&anna, &id).await, app);
}

#[tokio::test]
async fn if_match_pins_the_version_and_a_stale_one_is_precondition_failed() {
    let (h, anna, draft, id) = Harness::with_draft().await;
    let path = format!("/v1/applications/{id}");
    h.call("PATCH", &path, Some(json!({"form": {"office": "А"}})), Some(&anna.token), &[("if-match", "\"7\"")]).await.problem(412, "precondition_failed");
    assert_eq!(h.application(&anna, &id).await, draft);
    let patched = h.call("PATCH", &path, Some(json!({"form": {"office": "Б"}})), Some(&anna.token), &[("if-match", "\"1\"")]).await.expect(200);
    assert_eq!(patched.headers["etag"], "\"2\"");
    h.call("POST", &format!("{path}/submit"), None, Some(&anna.token), &[("if-match", "\"1\"")]).await.problem(412, "precondition_failed");
    h.call("POST", &format!("{path}/withdraw"), None, Some(&anna.token), &[("if-match", "\"2\"")]).await.problem(409, "invalid_transition");
}

#[tokio::test]
async fn withdrawal_is_final_and_keeps_the_reason() {
    let (h, anna) = Harness::with_citizen().await;
    let app = h.submitted(&anna, "mfc-appointment").await;
    let id = id_of(&app);
    let withdrawn = h.post(&format!("/v1/applications/{id}/withdraw"), json!({"reason": "Записался по телефону"}), &anna).await.expect(200).body;
    assert_eq!((withdrawn["status"].as_str(), withdrawn["status_title"].as_str()), (Some("withdrawn"), Some("Отозвано")));
    assert_eq!(withdrawn["history"][2]["comment"], "Записался по телефону");
    h.call("POST", &format!("/v1/applications/{id}/withdraw"), None, Some(&anna.token), &[]).await.problem(409, "invalid_transition");
    h.agency_sets("mfc", &id, "accepted", json!({})).await.problem(409, "invalid_transition");
    let draft = h.create(&anna, "mfc-appointment").await;
    h.call("POST", &format!("/v1/applications/{}/withdraw", id_of(&draft)), None, Some(&anna.token), &[]).await.problem(409, "invalid_transition");
}

// ---------------------------------------------------------------------------------------------
// The journey with the agency
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn agency_webhooks_and_a_supplement_carry_an_application_to_approval() {
    let (h, anna) = Harness::with_citizen().await;
    let app = h.submitted(&anna, "mfc-appointment").await;
    let id = id_of(&app);
    let employee = json!({"name": "Смирнова О. В.", "position": "специалист МФЦ"});
    h.agency_sets("mfc", &id, "accepted", json!({"employee": employee, "expected_completion_date": "2030-01-15"})).await.expect(200);
    h.agency_sets("mfc", &id, "in_progress", json!({})).await.expect(200);
    let asked = h.agency_sets("mfc", &id, "info_requested", json!({"comment": "Приложите скан паспорта", "employee": employee})).await.expect(200);
    assert_eq!(asked.body, json!({"result": "applied"}));

    let scan = h.document(&anna.user_id, "passport", "available").await;
    let supplemented =
        h.post(&format!("/v1/applications/{id}/supplement"), json!({"document_ids": [scan], "comment": "Приложила"}), &anna).await.expect(200).body;
    assert_eq!(supplemented["status"], "in_progress");
    assert_eq!(supplemented["document_ids"], json!([scan]));

    let result = h.document(&anna.user_id, "result", "available").await;
    h.agency_sets("mfc", &id, "approved", json!({"result_document_ids": [result], "comment": "Запись подтверждена"})).await.expect(200);
    let done = h.application(&anna, &id).await;
    assert_eq!((done["status"].as_str(), done["status_title"].as_str()), (Some("approved"), Some("Одобрено")));
    assert_eq!(done["result_document_ids"], json!([result]));
    assert_eq!(done["expected_completion_date"], "2030-01-15");
    assert_eq!(statuses(&done), ["draft", "submitted", "accepted", "in_progress", "info_requested", "in_progress", "approved"]);
    assert_eq!(done["version"], 7, "one version per write");
    let history = done["history"].as_array().unwrap();
    assert_eq!(history[2]["actor"], json!({"type": "agency", "name": "Смирнова О. В.", "position": "специалист МФЦ"}));
    assert_eq!(history[3]["actor"], json!({"type": "agency", "name": "МФЦ «Мои документы»"}));
    assert_eq!(history[4]["comment"], "Приложите скан паспорта");
    assert_eq!(history[4]["status_title"], "Ожидание дополнений");
    assert_eq!(history[5]["actor"], json!({"type": "citizen"}));
    assert_eq!(history[5]["comment"], "Приложила");

    let titles: Vec<String> = h
        .events_where(|payload| match payload {
            EventPayload::ApplicationStatusChanged { status_title, .. } => Some(status_title),
            _ => None,
        })
        .await;
    assert_eq!(titles, ["Отправлено", "Принято", "В работе", "Ожидание дополнений", "В работе", "Одобрено"]);
    h.agency_sets("mfc", &id, "rejected", json!({"rejection": {"reason": "поздно"}})).await.problem(409, "invalid_transition");
}

#[tokio::test]
async fn rejection_needs_a_reason_and_is_shown_to_the_citizen() {
    let (h, anna, id) = Harness::with_submitted_application().await;
    h.agency_sets("mfc", &id, "rejected", json!({})).await.problem(422, "validation_failed");
    h.agency_sets("mfc", &id, "rejected", json!({"rejection": {"reason": "  "}})).await.problem(422, "validation_failed");
    h.agency_sets("mfc", &id, "accepted", json!({"rejection": {"reason": "x"}})).await.problem(422, "validation_failed");
    assert_eq!(h.application(&anna, &id).await["status"], "submitted");
    h.agency_sets("mfc", &id, "rejected", json!({"rejection": {"reason": "Нет свободных окон", "recommendations": "Выберите другой офис"}})).await.expect(200);
    let app = h.application(&anna, &id).await;
    assert_eq!(app["rejection"], json!({"reason": "Нет свободных окон", "recommendations": "Выберите другой офис"}));
    assert_eq!(app["status_title"], "Отклонено");
}

#[tokio::test]
async fn result_documents_must_be_the_citizens_result_documents() {
    let (h, anna) = Harness::with_citizen().await;
    let boris = h.citizen("simplified").await;
    let id = id_of(&h.submitted(&anna, "mfc-appointment").await);
    h.agency_sets("mfc", &id, "accepted", json!({})).await.expect(200);
    h.agency_sets("mfc", &id, "in_progress", json!({})).await.expect(200);
    let foreign = h.document(&boris.user_id, "result", "available").await;
    let scan = h.document(&anna.user_id, "passport", "available").await;
    let rejected = h.document(&anna.user_id, "result", "rejected").await;
    let refused = h.agency_sets("mfc", &id, "approved", json!({"result_document_ids": [foreign, scan, rejected]})).await.problem(422, "validation_failed");
    let codes: Vec<&str> = refused.body["errors"].as_array().unwrap().iter().filter_map(|e| e["code"].as_str()).collect();
    assert_eq!(codes, ["document_not_found", "not_a_result", "document_not_available"]);
    assert_eq!(h.application(&anna, &id).await["status"], "in_progress");
}

#[tokio::test]
async fn agencies_can_address_applications_by_number() {
    let (h, anna) = Harness::with_citizen().await;
    let app = h.submitted(&anna, "mfc-appointment").await;
    let number = app["number"].as_str().unwrap();
    let body = json!({"type": "application.status_changed", "data": {"number": number, "status": "accepted"}});
    h.webhook("mfc", "by-number-1", &body).await.expect(200);
    assert_eq!(h.application(&anna, &id_of(&app)).await["status"], "accepted");
    let body = json!({"type": "application.status_changed", "data": {"number": "2020-9999999", "status": "in_progress"}});
    h.webhook("mfc", "by-number-2", &body).await.problem(404, "not_found");
}

#[tokio::test]
async fn an_agency_cannot_see_or_move_another_agencys_application_or_a_draft() {
    let (h, anna) = Harness::with_citizen().await;
    let app = h.submitted(&anna, "mfc-appointment").await;
    let id = id_of(&app);
    h.agency_sets("gibdd", &id, "accepted", json!({})).await.problem(404, "not_found");
    let by_number = json!({"type": "application.status_changed", "data": {"number": app["number"], "status": "accepted"}});
    h.webhook("fns", "other-agency-number", &by_number).await.problem(404, "not_found");
    let message = json!({"type": "application.message", "data": {"application_id": id, "text": "Здравствуйте"}});
    h.webhook("gibdd", "other-agency-message", &message).await.problem(404, "not_found");
    let draft = h.create(&anna, "mfc-appointment").await;
    h.agency_sets("mfc", &id_of(&draft), "accepted", json!({})).await.problem(404, "not_found");
    assert_eq!(h.application(&anna, &id).await, app);
    assert!(h.get(&format!("/v1/applications/{id}/messages"), &anna).await.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_deliveries_are_unprocessable() {
    let (h, anna, id) = Harness::with_submitted_application().await;
    h.webhook("mfc", "bad-1", &json!({"type": "application.teleported", "data": {}})).await.problem(422, "validation_failed");
    h.webhook("mfc", "bad-2", &json!({"type": "application.status_changed", "data": {"application_id": id}})).await.problem(422, "validation_failed");
    h.agency_sets("mfc", &id, "lost", json!({})).await.problem(422, "validation_failed");
    h.agency_sets("mfc", &id, "accepted", json!({"expected_completion_date": "скоро"})).await.problem(422, "validation_failed");
    h.agency_sets("mfc", &id, "approved", json!({})).await.problem(409, "invalid_transition");
    assert_eq!(h.application(&anna, &id).await["version"], 2);
}

// ---------------------------------------------------------------------------------------------
// Signatures and redeliveries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_redelivered_webhook_gets_the_first_answer_and_applies_nothing_twice() {
    let (h, anna, id) = Harness::with_submitted_application().await;
    h.events().await;

    let accept = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted"}});
    let first = h.webhook("mfc", "msg_accept", &accept).await.expect(200);
    let again = h.webhook("mfc", "msg_accept", &accept).await.expect(200);
    assert_eq!(first.body, again.body);
    let app = h.application(&anna, &id).await;
    assert_eq!((app["version"].as_u64(), statuses(&app).len()), (Some(3), 3));
    assert_eq!(h.events().await.len(), 1, "one event for one applied change");

    // A refusal is an answer too: replaying it repeats it even once the move became legal.
    let early = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "approved"}});
    let refused = h.webhook("mfc", "msg_early", &early).await.problem(409, "invalid_transition");
    h.agency_sets("mfc", &id, "in_progress", json!({})).await.expect(200);
    let replayed = h.webhook("mfc", "msg_early", &early).await.problem(409, "invalid_transition");
    assert_eq!(refused.body, replayed.body);
    assert_eq!(replayed.headers["content-type"], "application/problem+json");
    assert_eq!(h.application(&anna, &id).await["status"], "in_progress");

    // Messages are deduplicated the same way.
    let message = json!({"type": "application.message", "data": {"application_id": id, "text": "Ждём вас в 10:30"}});
    h.webhook("mfc", "msg_text", &message).await.expect(200);
    h.webhook("mfc", "msg_text", &message).await.expect(200);
    assert_eq!(h.get(&format!("/v1/applications/{id}/messages"), &anna).await.body["items"].as_array().unwrap().len(), 1);

    // The same id from another agency is another delivery.
    h.webhook("gibdd", "msg_accept", &accept).await.problem(404, "not_found");
}

#[tokio::test]
async fn concurrent_copies_of_one_delivery_apply_once() {
    let h = Arc::new(Harness::embedded().await);
    let anna = h.citizen("simplified").await;
    let id = id_of(&h.submitted(&anna, "mfc-appointment").await);
    let body = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted"}});
    let copies = (0..10).map(|_| {
        let (h, body) = (h.clone(), body.clone());
        tokio::spawn(async move { h.webhook("mfc", "msg_storm", &body).await })
    });
    for reply in futures::future::join_all(copies).await {
        let reply = reply.expect("task");
        assert_eq!((reply.status.as_u16(), &reply.body), (200, &json!({"result": "applied"})));
    }
    let app = h.application(&anna, &id).await;
    assert_eq!(statuses(&app), ["draft", "submitted", "accepted"]);
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_and_unknown_agencies_are_refused_without_effect() {
    let (h, anna) = Harness::with_citizen().await;
    let app = h.submitted(&anna, "mfc-appointment").await;
    let id = id_of(&app);
    let body = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted"}}).to_string();
    let now = chrono::Utc::now().timestamp();

    let by_gibdd = h.signature("gibdd", "sig-1", now, &body);
    h.webhook_raw("mfc", "sig-1", now, &by_gibdd, &body).await.problem(401, "signature_invalid");
    let valid = h.signature("mfc", "sig-2", now, &body);
    h.webhook_raw("mfc", "sig-2", now, &valid, &body.replace("accepted", "rejected")).await.problem(401, "signature_invalid");
    h.webhook_raw("mfc", "sig-2", now, "v1,", &body).await.problem(401, "signature_invalid");
    h.webhook_raw("nasa", "sig-2", now, &valid, &body).await.problem(401, "signature_invalid");
    let stale = now - 6 * 60;
    let stale_signature = h.signature("mfc", "sig-3", stale, &body);
    h.webhook_raw("mfc", "sig-3", stale, &stale_signature, &body).await.problem(401, "timestamp_out_of_tolerance");
    let req = axum::http::Request::builder().method("POST").uri("/v1/webhooks/agencies/mfc").body(axum::body::Body::from(body.clone())).unwrap();
    h.send(req).await.problem(401, "signature_invalid");
    assert_eq!(h.application(&anna, &id).await, app);

    // The refused ids were not remembered: a properly signed delivery with one of them applies.
    h.webhook_raw("mfc", "sig-2", now, &valid, &body).await.expect(200);
    assert_eq!(h.application(&anna, &id).await["status"], "accepted");
}

#[tokio::test]
async fn during_rotation_either_secret_of_the_agency_verifies() {
    let h = Harness::embedded().await;
    let anna = h.citizen("standard").await;
    let passport = h.document(&anna.user_id, "passport", "available").await;
    let form = h.state.catalogue.get("no-criminal-record-certificate").unwrap().form_example.clone();
    let draft = h
        .post("/v1/applications", json!({"service_code": "no-criminal-record-certificate", "form": form, "document_ids": [passport]}), &anna)
        .await
        .expect(201)
        .body;
    let id = id_of(&draft);
    h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&anna.token), &[]).await.expect(200);

    let seed: Value = serde_json::from_str(include_str!("../../../infra/local/seed/agencies.json")).unwrap();
    let mvd = seed["agencies"].as_array().unwrap().iter().find(|a| a["id"] == "mvd").unwrap();
    let previous = mvd["webhook_secrets"][0].as_str().expect("mvd is mid-rotation in the seed");
    let body = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted"}}).to_string();
    let now = chrono::Utc::now().timestamp();
    let old = standardwebhooks::Webhook::new(previous).unwrap().sign("rot-1", now, body.as_bytes()).unwrap();
    h.webhook_raw("mvd", "rot-1", now, &old, &body).await.expect(200);
    assert_eq!(h.application(&anna, &id).await["status"], "accepted");
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_thread_holds_citizen_and_agency_messages_in_order() {
    let (h, anna) = Harness::with_citizen().await;
    let draft = h.create(&anna, "mfc-appointment").await;
    h.post(&format!("/v1/applications/{}/messages", id_of(&draft)), json!({"text": "Алло"}), &anna).await.problem(409, "invalid_state");

    let id = id_of(&h.submitted(&anna, "mfc-appointment").await);
    h.events().await;
    let mine = h.post(&format!("/v1/applications/{id}/messages"), json!({"text": "  Можно перенести на 11:00?  "}), &anna).await.expect(201).body;
    assert_eq!(mine["text"], "Можно перенести на 11:00?");
    let reply = json!({"type": "application.message", "data": {"application_id": id, "text": "Да, перенесли", "employee": {"name": "Смирнова О. В."}}});
    h.webhook("mfc", "msg-reply", &reply).await.expect(200);
    h.post(&format!("/v1/applications/{id}/messages"), json!({"text": "   "}), &anna).await.problem(400, "validation_failed");

    let thread = h.get(&format!("/v1/applications/{id}/messages"), &anna).await.expect(200).body;
    let items = thread["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!((items[0]["author"]["type"].as_str(), items[1]["author"]["type"].as_str()), (Some("citizen"), Some("agency")));
    assert_eq!(items[1]["author"]["name"], "Смирнова О. В.");
    let page = h.get(&format!("/v1/applications/{id}/messages?limit=1"), &anna).await.expect(200).body;
    assert_eq!(page["items"][0]["text"], "Можно перенести на 11:00?");
    let next = page["next_cursor"].as_str().expect("second page");
    let page = h.get(&format!("/v1/applications/{id}/messages?limit=1&cursor={next}"), &anna).await.expect(200).body;
    assert_eq!(page["items"][0]["text"], "Да, перенесли");

    let from_agency: Vec<bool> = h
        .events_where(|payload| match payload {
            EventPayload::ApplicationMessage { from_agency, .. } => Some(from_agency),
            _ => None,
        })
        .await;
    assert_eq!(from_agency, [false, true]);
}

// ---------------------------------------------------------------------------------------------
// Identity levels
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn registry_verification_raises_simplified_to_standard_with_an_event() {
    let h = Harness::embedded().await;
    let anna = h.citizen_with_profile("simplified").await;
    let request_id = h.verification_request(&anna.user_id).await;
    let verdict = json!({"type": "identity.verification_completed", "data": {"user_id": anna.user_id, "request_id": request_id, "result": "verified"}});
    h.webhook("mvd", "verify-mvd", &verdict).await.problem(403, "forbidden");
    assert_eq!(h.level_of(&anna.user_id).await, "simplified");
    h.webhook("sfr", "verify-1", &verdict).await.expect(200);
    assert_eq!(h.level_of(&anna.user_id).await, "standard");
    let (account, _) = shared::identity::load(h.kv.as_ref(), &anna.user_id).await.unwrap().unwrap();
    assert_eq!(account.profile.map(|p| p.verification.status), Some(shared::identity::VerificationStatus::Verified));
    // The request is answered: the same verdict again under a new webhook-id changes nothing.
    h.webhook("sfr", "verify-2", &verdict).await.problem(409, "verification_outdated");

    let changes: Vec<(Level, Level)> = h
        .events_where(|payload| match payload {
            EventPayload::IdentityLevelChanged { level, previous_level, .. } => Some((previous_level, level)),
            _ => None,
        })
        .await;
    assert_eq!(changes, [(Level::Simplified, Level::Standard)]);

    let confirm = json!({"type": "identity.confirmed", "data": {"user_id": anna.user_id, "method": "mfc"}});
    h.webhook("sfr", "confirm-by-sfr", &confirm).await.problem(403, "forbidden");
    h.webhook("mfc", "confirm-1", &confirm).await.expect(200);
    assert_eq!(h.level_of(&anna.user_id).await, "confirmed");
    let by_post = json!({"type": "identity.confirmed", "data": {"user_id": anna.user_id, "method": "post"}});
    h.webhook("pochta", "confirm-2", &by_post).await.problem(409, "invalid_transition");
}

#[tokio::test]
async fn identity_verdicts_need_a_profile_a_known_user_and_a_known_result() {
    let h = Harness::embedded().await;
    let bare = h.citizen("simplified").await;
    let verified = |user: &str| json!({"type": "identity.verification_completed", "data": {"user_id": user, "request_id": "01J0000000000000000000000R", "result": "verified"}});
    h.webhook("sfr", "v-1", &verified(&bare.user_id)).await.problem(422, "validation_failed");
    h.webhook("sfr", "v-2", &verified("01J0000000000000000000000A")).await.problem(404, "not_found");
    let anna = h.citizen_with_profile("simplified").await;
    let request_id = h.verification_request(&anna.user_id).await;
    let unnamed = json!({"type": "identity.verification_completed", "data": {"user_id": anna.user_id, "result": "verified"}});
    h.webhook("sfr", "v-0", &unnamed).await.problem(422, "validation_failed");
    let odd = json!({"type": "identity.verification_completed", "data": {"user_id": anna.user_id, "request_id": request_id, "result": "maybe"}});
    h.webhook("sfr", "v-3", &odd).await.problem(422, "validation_failed");
    let rejected = json!({"type": "identity.verification_completed", "data": {"user_id": anna.user_id, "request_id": request_id, "result": "rejected", "reason": "Паспорт недействителен"}});
    h.webhook("sfr", "v-4", &rejected).await.expect(200);
    let (account, _) = shared::identity::load(h.kv.as_ref(), &anna.user_id).await.unwrap().unwrap();
    let profile = account.profile.expect("profile");
    assert_eq!(
        (profile.verification.status, profile.verification.reason.as_deref()),
        (shared::identity::VerificationStatus::Rejected, Some("Паспорт недействителен"))
    );
    assert_eq!(account.level, Level::Simplified);
    let notices: Vec<(Level, LevelChangeReason)> = h
        .events_where(|payload| match payload {
            EventPayload::IdentityLevelChanged { level, reason, .. } => Some((level, reason)),
            _ => None,
        })
        .await;
    assert_eq!(notices, [(Level::Simplified, LevelChangeReason::RegistryRejected)], "the citizen hears of the rejection");
    let confirm = json!({"type": "identity.confirmed", "data": {"user_id": anna.user_id, "method": "mfc"}});
    h.webhook("mfc", "c-1", &confirm).await.problem(409, "invalid_transition");
    assert_eq!(h.level_of(&bare.user_id).await, "simplified");
}

// ---------------------------------------------------------------------------------------------
// The outbox when the queue is down
// ---------------------------------------------------------------------------------------------

/// Delegates to a real queue, but refuses to send while `down` is set.
struct FlakyQueue {
    inner: Arc<dyn Queue>,
    down: AtomicBool,
}

#[async_trait::async_trait]
impl Queue for FlakyQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError::Backend("queue unreachable (test)".into()));
        }
        self.inner.send(body).await
    }
    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.inner.receive(max, visibility, wait).await
    }
    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.ack(receipt).await
    }
    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        self.inner.release(receipt, delay).await
    }
    async fn dead_letter_count(&self) -> Result<usize, QueueError> {
        self.inner.dead_letter_count().await
    }
    async fn peek_dead_letters(&self, max: usize) -> Result<Vec<String>, QueueError> {
        self.inner.peek_dead_letters(max).await
    }
}

#[tokio::test]
async fn a_change_committed_while_the_queue_is_down_is_relayed_later_by_the_sweep() {
    let (kv, db, dir) = embedded_kv();
    let real: Arc<dyn Queue> = Arc::new(shared::adapters::embedded::queue::RedbQueue::open(db, "events", 5).await.unwrap());
    let flaky = Arc::new(FlakyQueue { inner: real.clone(), down: AtomicBool::new(true) });
    let h = Harness::build(kv.clone(), flaky.clone(), real, vec![dir]);
    let anna = h.citizen("simplified").await;
    let app = h.submitted(&anna, "mfc-appointment").await;
    assert_eq!(app["status"], "submitted", "the change commits although relaying failed");
    assert!(h.events().await.is_empty());
    let staged = kv.query(Query::partition("OUTBOX")).await.unwrap().items;
    assert_eq!(staged.len(), 1, "the event waits in the outbox");

    flaky.down.store(false, Ordering::SeqCst);
    let relayed = shared::outbox::Relay::new(kv.clone(), flaky.clone()).sweep(Duration::ZERO).await.expect("sweep");
    assert_eq!(relayed, 1);
    let events = h.events().await;
    assert!(
        matches!(&events[..], [e] if matches!(&e.payload, EventPayload::ApplicationStatusChanged { status, .. } if *status == ApplicationStatus::Submitted)),
        "{events:?}"
    );
    assert!(kv.query(Query::partition("OUTBOX")).await.unwrap().items.is_empty());
}

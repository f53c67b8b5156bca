//! Input limits at the edge (SPEC §2): bounded, clean text with value-free errors, strict PATCH
//! bodies, a bounded webhook body, the citizen's write budget and `Cache-Control: no-store`.

mod common;

use serde_json::json;

use common::{Harness, Reply, id_of};

/// The answer, raw, must not contain what was sent.
fn assert_no_echo(reply: &Reply, value: &str) {
    assert!(!reply.body.to_string().contains(value), "the answer echoes the submitted value: {reply:?}");
}

fn field_codes(reply: &Reply) -> Vec<(String, String)> {
    reply.body["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| (e["field"].as_str().unwrap_or("").to_owned(), e["code"].as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Citizen text
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn citizen_messages_with_control_or_invisible_characters_are_refused() {
    let (h, anna, id) = Harness::with_submitted_application().await;
    let path = format!("/v1/applications/{id}/messages");
    for text in ["тайна\u{0}после", "тайна\u{202E}txt.exe", "тайна\u{200B}", "тайна\u{1B}[31m", "тайна\u{FEFF}"] {
        let reply = h.post(&path, json!({ "text": text }), &anna).await.problem(400, "validation_failed");
        assert_eq!(field_codes(&reply), [("/text".to_owned(), "forbidden_characters".to_owned())]);
        assert_no_echo(&reply, "тайна");
    }
    h.post(&path, json!({"text": "Первая строка\nвторая\tс табуляцией"}), &anna).await.expect(201);
    let long = "ы".repeat(4001);
    let reply = h.post(&path, json!({ "text": long }), &anna).await.problem(400, "validation_failed");
    assert_eq!(field_codes(&reply), [("/text".to_owned(), "too_long".to_owned())]);
    assert_no_echo(&reply, &"ы".repeat(20));
    assert_eq!(h.get(&path, &anna).await.body["items"].as_array().map(Vec::len), Some(1), "only the clean message is stored");
}

#[tokio::test]
async fn withdraw_reasons_and_supplement_comments_are_bounded_and_clean() {
    let (h, anna, id) = Harness::with_submitted_application().await;
    let withdraw = format!("/v1/applications/{id}/withdraw");
    let reply = h.post(&withdraw, json!({"reason": "передумал\u{0}"}), &anna).await.problem(400, "validation_failed");
    assert_eq!(field_codes(&reply), [("/reason".to_owned(), "forbidden_characters".to_owned())]);
    let reply = h.post(&withdraw, json!({"reason": "я".repeat(2001)}), &anna).await.problem(400, "validation_failed");
    assert_eq!(field_codes(&reply), [("/reason".to_owned(), "too_long".to_owned())]);
    // A wrongly typed reason is named by its path, without the value.
    let reply = h.post(&withdraw, json!({"reason": {"секрет": 1}}), &anna).await.problem(400, "validation_failed");
    assert_no_echo(&reply, "секрет");

    h.agency_sets("mfc", &id, "accepted", json!({})).await.expect(200);
    h.agency_sets("mfc", &id, "in_progress", json!({})).await.expect(200);
    h.agency_sets("mfc", &id, "info_requested", json!({"comment": "Нужна копия паспорта"})).await.expect(200);
    let supplement = format!("/v1/applications/{id}/supplement");
    let reply = h.post(&supplement, json!({"document_ids": [], "comment": "вот\u{202E}"}), &anna).await.problem(400, "validation_failed");
    assert_eq!(field_codes(&reply), [("/comment".to_owned(), "forbidden_characters".to_owned())]);
    let reply = h.post(&supplement, json!({"document_ids": ["x".repeat(65)]}), &anna).await.problem(400, "validation_failed");
    assert_eq!(field_codes(&reply), [("/document_ids/0".to_owned(), "invalid".to_owned())]);
    let app = h.application(&anna, &id).await;
    assert_eq!(app["status"], "info_requested", "nothing was applied");
}

#[tokio::test]
async fn overlong_ids_and_form_strings_with_control_characters_are_refused_on_drafts() {
    let (h, anna) = Harness::with_citizen().await;
    let code = "c".repeat(65);
    let reply = h.post("/v1/applications", json!({ "service_code": code }), &anna).await.problem(400, "validation_failed");
    assert_eq!(field_codes(&reply), [("/service_code".to_owned(), "too_long".to_owned())]);
    assert_no_echo(&reply, &code);
    let reply = h
        .post("/v1/applications", json!({"service_code": "mfc-appointment", "form": {"office": "МФЦ\u{202E}"}}), &anna)
        .await
        .problem(400, "validation_failed");
    assert_eq!(field_codes(&reply), [("/form/office".to_owned(), "forbidden_characters".to_owned())]);
    assert_eq!(h.get("/v1/applications", &anna).await.body["items"], json!([]), "nothing stored");
}

// ---------------------------------------------------------------------------------------------
// PATCH
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn patch_refuses_non_objects_and_unknown_fields_and_a_no_op_keeps_the_version() {
    let (h, anna, draft, id) = Harness::with_draft().await;
    let path = format!("/v1/applications/{id}");
    for body in [json!([]), json!("form"), json!(null), json!({"status": "approved"}), json!({"form": {}, "number": "1"})] {
        h.call("PATCH", &path, Some(body.clone()), Some(&anna.token), &[]).await.problem(400, "validation_failed");
    }
    let reply = h.call("PATCH", &path, Some(json!({"секретное_поле": 1})), Some(&anna.token), &[]).await.problem(400, "validation_failed");
    assert_no_echo(&reply, "секретное_поле");
    assert_eq!(h.application(&anna, &id).await, draft, "refused patches change nothing");

    let same = h.call("PATCH", &path, Some(json!({})), Some(&anna.token), &[]).await.expect(200).body;
    assert_eq!(same["version"], draft["version"], "an empty patch changes nothing");
    let same = h.call("PATCH", &path, Some(json!({"form": draft["form"], "document_ids": []})), Some(&anna.token), &[]).await.expect(200).body;
    assert_eq!(same["version"], draft["version"], "a patch to the current values changes nothing");
    assert_eq!(h.application(&anna, &id).await, draft);

    let changed = h.call("PATCH", &path, Some(json!({"form": {"office": "МФЦ Арбат"}})), Some(&anna.token), &[]).await.expect(200).body;
    assert_eq!(changed["version"].as_u64(), draft["version"].as_u64().map(|v| v + 1));
}

// ---------------------------------------------------------------------------------------------
// Agency webhooks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_signed_webhook_with_a_huge_invalid_field_is_refused_without_echo() {
    let (h, anna, id) = Harness::with_submitted_application().await;

    // Larger than any real delivery: refused before parsing, and the refusal is a stable answer.
    let huge = "Z".repeat(300 * 1024);
    let body = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted", "employee": huge}});
    let first = h.webhook("mfc", "msg_huge", &body).await.problem(413, "payload_too_large");
    assert_no_echo(&first, "ZZZZZZZZ");

    // A wrongly typed field: 422 naming the field, not its value, and replayed as stored.
    let odd = "Q".repeat(8 * 1024);
    let body = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted", "employee": odd}});
    let reply = h.webhook("mfc", "msg_odd", &body).await.problem(422, "validation_failed");
    assert_eq!(field_codes(&reply), [("/data/employee".to_owned(), "invalid_type".to_owned())]);
    assert_no_echo(&reply, "QQQQQQQQ");
    let again = h.webhook("mfc", "msg_odd", &body).await.problem(422, "validation_failed");
    assert_eq!(again.body, reply.body);

    let body = json!({"type": "application.status_changed", "data": {"application_id": id, "status": 7}});
    let reply = h.webhook("mfc", "msg_type", &body).await.problem(422, "validation_failed");
    assert_eq!(field_codes(&reply), [("/data/status".to_owned(), "invalid_type".to_owned())]);
    let reply =
        h.webhook("mfc", "msg_missing", &json!({"type": "application.message", "data": {"application_id": id}})).await.problem(422, "validation_failed");
    assert_eq!(field_codes(&reply), [("/data/text".to_owned(), "required".to_owned())]);
    assert_eq!(h.application(&anna, &id).await["status"], "submitted");
}

#[tokio::test]
async fn agency_text_is_bounded_and_clean_with_422() {
    let (h, anna, id) = Harness::with_submitted_application().await;
    let cases = [
        (json!({"type": "application.message", "data": {"application_id": id, "text": "Приходите\u{0}"}}), "/data/text", "forbidden_characters"),
        (json!({"type": "application.message", "data": {"application_id": id, "text": "ж".repeat(4001)}}), "/data/text", "too_long"),
        (
            json!({"type": "application.message", "data": {"application_id": id, "text": "ok", "employee": {"name": "И".repeat(101)}}}),
            "/data/employee/name",
            "too_long",
        ),
        (
            json!({"type": "application.message", "data": {"application_id": id, "text": "ok", "employee": {"name": "Иван\u{2066}"}}}),
            "/data/employee/name",
            "forbidden_characters",
        ),
        (
            json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted", "comment": "к\u{200F}"}}),
            "/data/comment",
            "forbidden_characters",
        ),
        (
            json!({"type": "application.status_changed", "data": {"application_id": id, "status": "rejected", "rejection": {"reason": "р".repeat(2001)}}}),
            "/data/rejection/reason",
            "too_long",
        ),
        (json!({"type": "application.status_changed", "data": {"application_id": "A".repeat(65), "status": "accepted"}}), "/data/application_id", "too_long"),
    ];
    for (index, (body, field, code)) in cases.into_iter().enumerate() {
        let reply = h.webhook("mfc", &format!("msg_text_{index}"), &body).await.problem(422, "validation_failed");
        assert_eq!(field_codes(&reply), [(field.to_owned(), code.to_owned())], "case {index}");
    }
    let app = h.application(&anna, &id).await;
    assert_eq!((app["status"].as_str(), app["version"].as_u64()), (Some("submitted"), Some(2)));
    assert_eq!(h.get(&format!("/v1/applications/{id}/messages"), &anna).await.body["items"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// Write budget
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_burst_of_drafts_runs_into_the_citizens_write_budget() {
    let (h, anna) = Harness::with_citizen().await;
    let boris = h.citizen("simplified").await;
    let mut refused = None;
    for attempt in 0..100 {
        let reply = h.post("/v1/applications", json!({"service_code": "mfc-appointment"}), &anna).await;
        if reply.status != 201 {
            refused = Some((attempt, reply));
            break;
        }
    }
    let (attempt, reply) = refused.expect("100 drafts in a burst must not all be accepted");
    assert_eq!(attempt as u64, applications::DRAFTS_PER_HOUR, "the hourly draft cap");
    let reply = reply.problem(429, "rate_limited");
    let retry_after: u64 = reply.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=3600).contains(&retry_after));

    // Every write endpoint spends from the per-minute budget, refused ones included.
    let id = id_of(&h.get("/v1/applications?limit=1", &anna).await.expect(200).body["items"][0]);
    let path = format!("/v1/applications/{id}");
    let mut writes = attempt + 1;
    while h.call("PATCH", &path, Some(json!({"form": {"n": writes}})), Some(&anna.token), &[]).await.status != 429 {
        writes += 1;
        assert!(writes <= 30, "more than 30 writes a minute accepted");
    }
    let reply = h.call("POST", &format!("{path}/submit"), None, Some(&anna.token), &[]).await.problem(429, "rate_limited");
    assert!(reply.headers["retry-after"].to_str().expect("ascii").parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)));
    h.post(&format!("{path}/withdraw"), json!({}), &anna).await.problem(429, "rate_limited");
    h.post(&format!("{path}/supplement"), json!({"document_ids": []}), &anna).await.problem(429, "rate_limited");
    h.post(&format!("{path}/messages"), json!({"text": "?"}), &anna).await.problem(429, "rate_limited");
    h.get("/v1/applications", &anna).await.expect(200);
    h.create(&boris, "mfc-appointment").await;
}

// ---------------------------------------------------------------------------------------------
// Caching
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn application_answers_are_not_stored_by_caches() {
    let (h, anna) = Harness::with_citizen().await;
    let created = h.post("/v1/applications", json!({"service_code": "mfc-appointment"}), &anna).await.expect(201);
    assert_eq!(created.headers["cache-control"], "no-store");
    let id = id_of(&created.body);
    assert_eq!(h.get(&format!("/v1/applications/{id}"), &anna).await.expect(200).headers["cache-control"], "no-store");
    assert_eq!(h.get("/v1/applications", &anna).await.expect(200).headers["cache-control"], "no-store");
    assert_eq!(h.call("GET", "/v1/applications", None, None, &[]).await.expect(401).headers["cache-control"], "no-store");
}

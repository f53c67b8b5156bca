//! What agencies are told and shown (SPEC §4.5, §4.6), on both key-value adapters: every citizen
//! change an agency must hear of stages exactly one delivery in the change's own transaction
//! (its id the event's id, its body fixed), and the agency API lists the agency's applications
//! oldest change first, for the agency's own token only. The DynamoDB variants need an emulator
//! (`AWS_ENDPOINT_URL`, e.g. moto); without one they print that they are skipped unless
//! `REQUIRE_AWS_EMULATOR=1`.

mod common;

use serde_json::{Value, json};

use common::{Harness, id_of};
use shared::events::EventPayload;
use shared::ports::{Condition, Item};

macro_rules! on_both_adapters {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Harness::embedded().await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(harness) = super::Harness::dynamodb().await else { return };
                    super::$name(harness).await;
                }
            )*
        }
    };
}

on_both_adapters!(
    a_submission_stages_one_delivery_with_the_application_the_applicant_and_the_documents,
    a_failed_commit_stages_no_delivery,
    a_withdrawal_a_supplement_and_a_message_each_stage_one_delivery_with_the_version_written,
    the_agency_lists_its_applications_oldest_change_first_by_status_time_and_cursor,
    agency_paths_answer_only_the_agencys_own_token,
);

/// The ids of the status-change and message events published since the last call.
async fn event_ids(h: &Harness) -> Vec<String> {
    h.events()
        .await
        .into_iter()
        .filter(|e| matches!(e.payload, EventPayload::ApplicationStatusChanged { .. } | EventPayload::ApplicationMessage { .. }))
        .map(|e| e.id)
        .collect()
}

/// The citizen's application as they see it, without `history`: what `application.submitted`
/// repeats.
fn without_history(app: &Value) -> Value {
    let mut app = app.clone();
    app.as_object_mut().expect("an object").remove("history");
    app
}

async fn a_submission_stages_one_delivery_with_the_application_the_applicant_and_the_documents(h: Harness) {
    let anna = h.citizen("simplified").await;
    // An unconfirmed phone is never told; the confirmed email is.
    let (mut account, version) = shared::identity::load(h.kv.as_ref(), &anna.user_id).await.expect("load").expect("account");
    account.phone = Some(shared::domain::Phone::parse("+7 916 123-45-67").expect("phone"));
    account.phone_confirmed = false;
    let item = Item::json(shared::identity::user_pk(&anna.user_id), shared::identity::ACCOUNT_SK, &account).expect("item");
    h.kv.put(item, Condition::VersionIs(version)).await.expect("store");
    let document = h.document(&anna.user_id, "passport", "available").await;
    let form = h.state.catalogue.get("mfc-appointment").expect("service").form_example.clone();
    let draft = h.post("/v1/applications", json!({"service_code": "mfc-appointment", "form": form, "document_ids": [document]}), &anna).await.expect(201).body;
    assert!(h.deliveries("mfc").await.is_empty(), "a draft tells the agency nothing");
    let id = id_of(&draft);
    h.events().await;

    let submitted = h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&anna.token), &[]).await.expect(200).body;
    let deliveries = h.deliveries("mfc").await;
    assert_eq!(deliveries.len(), 1, "exactly one delivery");
    assert_eq!(h.due_count("mfc").await, 1, "due at once in the agency's lane");
    let (delivery, body) = &deliveries[0];
    assert_eq!(event_ids(&h).await, vec![delivery.delivery_id.clone()], "the delivery's id is the event's id");
    assert_eq!((delivery.status, delivery.attempts, delivery.agency_id.as_str()), (shared::deliveries::DeliveryStatus::Pending, 0, "mfc"));
    assert_eq!(body["type"], "application.submitted");
    assert!(body["timestamp"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()), "{body}");

    let data = &body["data"];
    let mut expected = without_history(&submitted);
    let fields = expected.as_object_mut().expect("object");
    fields.insert(
        "applicant".into(),
        json!({"user_id": anna.user_id, "level": "simplified", "profile": null, "phone": null, "email": format!("{}@example.ru", anna.user_id.to_lowercase())}),
    );
    fields.insert(
        "documents".into(),
        json!([{"document_id": document, "type": "passport", "file_name": "scan.pdf", "content_type": "application/pdf", "size_bytes": 2048, "sha256": "5f".repeat(32)}]),
    );
    assert_eq!(data, &expected);
    assert_eq!((data["status"].as_str(), data["version"].as_u64()), (Some("submitted"), submitted["version"].as_u64()));
    assert!(data["number"].as_str().is_some_and(|n| !n.is_empty()));

    // Other agencies hear nothing.
    for other in ["mvd", "fns", "sfr", "gibdd"] {
        assert!(h.deliveries(other).await.is_empty(), "{other}");
    }
}

async fn a_failed_commit_stages_no_delivery(h: Harness) {
    let anna = h.citizen("simplified").await;
    let id = id_of(&h.create(&anna, "mfc-appointment").await);
    // The number the submission will draw is already taken, so its transaction fails whole.
    let year = chrono::Utc::now().format("%Y").to_string();
    let (pk, sk) = applications::store::number_key(&applications::store::format_number(&year, 1));
    let taken = Item::json(pk, sk, &json!({"application_id": "01JOTHERAPPLICATION0000000"})).expect("item");
    h.kv.put(taken, Condition::NotExists).await.expect("store");
    h.events().await;

    let refused = h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&anna.token), &[]).await;
    assert_eq!(refused.status.as_u16(), 409, "{refused:?}");
    assert!(h.deliveries("mfc").await.is_empty(), "no delivery without the change");
    assert_eq!(h.due_count("mfc").await, 0);
    assert!(event_ids(&h).await.is_empty());
    assert_eq!(h.application(&anna, &id).await["status"], "draft");
    let listed = h.call("GET", "/v1/agency/mfc/applications", None, Some(&h.agency_token("mfc")), &[]).await.expect(200).body;
    assert_eq!(listed["items"], json!([]), "nor is it listed for the agency");
}

async fn a_withdrawal_a_supplement_and_a_message_each_stage_one_delivery_with_the_version_written(h: Harness) {
    let anna = h.citizen("simplified").await;
    let id = id_of(&h.submitted(&anna, "mfc-appointment").await);
    let number = h.application(&anna, &id).await["number"].clone();
    h.events().await;
    let staged_before = h.deliveries("mfc").await.len();

    let message = h.post(&format!("/v1/applications/{id}/messages"), json!({"text": "Можно прийти пораньше?"}), &anna).await.expect(201).body;
    let version = h.application(&anna, &id).await["version"].clone();
    let told = last_new(&h, staged_before).await;
    assert_eq!(event_ids(&h).await, vec![told.0.clone()]);
    assert_eq!(told.1["type"], "application.message");
    assert_eq!(
        told.1["data"],
        json!({"application_id": id, "number": number, "message_id": message["message_id"], "text": "Можно прийти пораньше?", "at": message["at"], "version": version})
    );

    // The agency's own changes are not sent back to it.
    for status in ["accepted", "in_progress", "info_requested"] {
        h.agency_sets("mfc", &id, status, json!({})).await.expect(200);
    }
    assert_eq!(h.deliveries("mfc").await.len(), staged_before + 1);
    h.events().await;

    let document = h.document(&anna.user_id, "other", "available").await;
    let supplemented =
        h.post(&format!("/v1/applications/{id}/supplement"), json!({"document_ids": [document], "comment": "Прилагаю справку"}), &anna).await.expect(200).body;
    let told = last_new(&h, staged_before + 1).await;
    assert_eq!(event_ids(&h).await, vec![told.0.clone()]);
    assert_eq!(told.1["type"], "application.supplemented");
    assert_eq!(
        told.1["data"],
        json!({"application_id": id, "number": number, "document_ids": [document], "comment": "Прилагаю справку", "version": supplemented["version"]})
    );

    let withdrawn = h.post(&format!("/v1/applications/{id}/withdraw"), json!({"reason": "Уже не нужно"}), &anna).await.expect(200).body;
    let told = last_new(&h, staged_before + 2).await;
    assert_eq!(event_ids(&h).await, vec![told.0.clone()]);
    assert_eq!(told.1["type"], "application.withdrawn");
    assert_eq!(told.1["data"], json!({"application_id": id, "number": number, "reason": "Уже не нужно", "version": withdrawn["version"]}));

    // A refused change stages nothing.
    h.post(&format!("/v1/applications/{id}/withdraw"), json!({}), &anna).await.problem(409, "invalid_transition");
    assert_eq!(h.deliveries("mfc").await.len(), staged_before + 3);
    assert_eq!(h.due_count("mfc").await, staged_before + 3);
}

async fn pause() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

/// The one delivery staged after the first `before`: its id and body (ULIDs of one process
/// sort by time).
async fn last_new(h: &Harness, before: usize) -> (String, Value) {
    let deliveries = h.deliveries("mfc").await;
    assert_eq!(deliveries.len(), before + 1, "exactly one new delivery");
    let (delivery, body) = deliveries.into_iter().last().expect("one");
    (delivery.delivery_id, body)
}

async fn the_agency_lists_its_applications_oldest_change_first_by_status_time_and_cursor(h: Harness) {
    let (anna, boris) = (h.citizen("simplified").await, h.citizen("standard").await);
    // Apart by more than a millisecond, the index's resolution.
    let first = id_of(&h.submitted(&anna, "mfc-appointment").await);
    pause().await;
    let second = id_of(&h.submitted(&boris, "mfc-appointment").await);
    pause().await;
    let third = id_of(&h.submitted(&anna, "mfc-appointment").await);
    h.create(&anna, "mfc-appointment").await; // a draft: never listed
    h.submitted(&boris, "fine-dispute").await; // another agency's
    let mfc = h.agency_token("mfc");
    let list = |query: &str| format!("/v1/agency/mfc/applications{query}");

    let all = h.call("GET", &list(""), None, Some(&mfc), &[]).await.expect(200).body;
    let ids: Vec<String> = all["items"].as_array().expect("items").iter().map(id_of).collect();
    assert_eq!(ids, vec![first.clone(), second.clone(), third.clone()]);
    assert!(all["next_cursor"].is_null());
    let item = &all["items"][1];
    assert_eq!(item["applicant"]["user_id"], boris.user_id.as_str());
    assert_eq!(item["history"].as_array().map(Vec::len), Some(2), "with the history: {item}");
    assert_eq!(without_history(item)["documents"], json!([]));
    let citizen_view = h.application(&boris, &second).await;
    for (field, value) in citizen_view.as_object().expect("object") {
        assert_eq!(&item[field], value, "{field} as in the citizen's view");
    }

    // A change moves the application to the end: the agency's own (the webhook path) as well.
    pause().await;
    h.agency_sets("mfc", &first, "accepted", json!({})).await.expect(200);
    let all = h.call("GET", &list(""), None, Some(&mfc), &[]).await.expect(200).body;
    let ids: Vec<String> = all["items"].as_array().expect("items").iter().map(id_of).collect();
    assert_eq!(ids, vec![second.clone(), third.clone(), first.clone()], "one entry per application, oldest change first");
    let moved = &all["items"][2];
    assert_eq!((moved["status"].as_str(), moved["version"].as_u64()), (Some("accepted"), Some(3)));

    let accepted = h.call("GET", &list("?status=accepted"), None, Some(&mfc), &[]).await.expect(200).body;
    assert_eq!(accepted["items"].as_array().map(|items| items.iter().map(id_of).collect::<Vec<_>>()), Some(vec![first.clone()]));

    // `updated_since` is inclusive: from the third application's last change on.
    let since = all["items"][1]["updated_at"].as_str().expect("updated_at").to_owned();
    let encoded = since.replace('+', "%2B").replace(':', "%3A");
    let recent = h.call("GET", &list(&format!("?updated_since={encoded}")), None, Some(&mfc), &[]).await.expect(200).body;
    assert_eq!(recent["items"].as_array().map(|items| items.iter().map(id_of).collect::<Vec<_>>()), Some(vec![third.clone(), first.clone()]));
    let future = h.call("GET", &list("?updated_since=2999-01-01T00:00:00Z"), None, Some(&mfc), &[]).await.expect(200).body;
    assert_eq!(future["items"], json!([]));

    // Pages of one, in order, to the end.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=1&cursor={}", c.replace('#', "%23")),
            None => "?limit=1".to_owned(),
        };
        let page = h.call("GET", &list(&query), None, Some(&mfc), &[]).await.expect(200).body;
        paged.extend(page["items"].as_array().expect("items").iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(paged.len() <= 3, "pages end");
    }
    assert_eq!(paged, vec![second.clone(), third.clone(), first.clone()]);

    let one = h.call("GET", &format!("/v1/agency/mfc/applications/{first}"), None, Some(&mfc), &[]).await.expect(200).body;
    assert_eq!(one, all["items"][2]);

    for bad in ["?status=lost", "?limit=0", "?limit=101", "?cursor=../x", "?updated_since=yesterday"] {
        h.call("GET", &list(bad), None, Some(&mfc), &[]).await.problem(400, "validation_failed");
    }
}

async fn agency_paths_answer_only_the_agencys_own_token(h: Harness) {
    let anna = h.citizen("standard").await;
    let mfc_application = id_of(&h.submitted(&anna, "mfc-appointment").await);
    let gibdd_application = id_of(&h.submitted(&anna, "fine-dispute").await);
    let draft = id_of(&h.create(&anna, "mfc-appointment").await);
    let (mfc, gibdd) = (h.agency_token("mfc"), h.agency_token("gibdd"));
    h.call("GET", &format!("/v1/agency/mfc/applications/{mfc_application}"), None, Some(&mfc), &[]).await.expect(200);

    let paths =
        ["/v1/agency/mfc/applications".to_owned(), format!("/v1/agency/mfc/applications/{mfc_application}"), format!("/v1/agency/mfc/applications/{draft}")];
    for path in &paths {
        h.call("GET", path, None, None, &[]).await.problem(401, "unauthorized");
        h.call("GET", path, None, Some(&anna.token), &[]).await.problem(401, "invalid_token");
        h.call("GET", path, None, Some("not-a-token"), &[]).await.problem(401, "invalid_token");
        h.call("GET", path, None, Some(&gibdd), &[]).await.problem(404, "not_found");
    }
    h.call("GET", &format!("/v1/agency/mfc/applications/{draft}"), None, Some(&mfc), &[]).await.problem(404, "not_found");
    h.call("GET", &format!("/v1/agency/mfc/applications/{gibdd_application}"), None, Some(&mfc), &[]).await.problem(404, "not_found");
    h.call("GET", &format!("/v1/agency/gibdd/applications/{mfc_application}"), None, Some(&gibdd), &[]).await.problem(404, "not_found");
    h.call("GET", "/v1/agency/mfc/applications/01JNOSUCHAPPLICATION000000", None, Some(&mfc), &[]).await.problem(404, "not_found");
    let theirs = h.call("GET", "/v1/agency/gibdd/applications", None, Some(&gibdd), &[]).await.expect(200).body;
    assert_eq!(theirs["items"].as_array().map(|items| items.iter().map(id_of).collect::<Vec<_>>()), Some(vec![gibdd_application]));
}

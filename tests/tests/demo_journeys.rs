//! The demo agencies (SPEC §7) as a newcomer meets them: submit an application with curl alone
//! and watch a demo agency decide it, with a PDF decision; fill in a profile and watch the demo
//! registry agency verify it.
//!
//! They cross the whole loop of issue 9: the applications and auth functions stage
//! `application.submitted` / `identity.verification_requested` deliveries, the deliveries
//! worker in the local runner posts them to the simulator, which answers through the real
//! signed webhooks and the agency result upload.

use std::time::{Duration, Instant};

use e2e::{Api, Runner, strong_password};
use serde_json::{Value, json};

/// The simulator's pause per step: short, so a decision takes a second or two.
const DEMO_ENV: [(&str, &str); 2] = [("DEMO_AGENCIES", "1"), ("DEMO_AGENCY_DELAY_MS", "200")];
/// What SPEC §7's newcomer is promised: a decision within a minute.
const WITHIN: Duration = Duration::from_secs(60);

async fn citizen(runner: &Runner) -> (Api, String) {
    let phone = e2e::TestPhone::random();
    let tokens = runner.api().register_and_confirm(&phone.e164, &strong_password()).await;
    (runner.api().bearer(&tokens.access_token), phone.e164)
}

/// Polls `path` until `done` holds, for at most [`WITHIN`]; the last body on timeout.
async fn poll(api: &Api, path: &str, done: impl Fn(&Value) -> bool) -> Result<Value, Value> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let reply = api.get(path).await;
        reply.expect(200);
        if done(&reply.body) {
            return Ok(reply.body);
        }
        if Instant::now() > deadline {
            return Err(reply.body);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_demo_agency_approves_a_submitted_application_with_a_pdf_decision() {
    let runner = Runner::start_with(&DEMO_ENV).await;
    let (anna, phone) = citizen(&runner).await;

    let service = anna.get("/v1/services/mfc-appointment").await;
    service.expect(200);
    let created = anna.post_json("/v1/applications", &json!({"service_code": "mfc-appointment", "form": service.body["form_example"]})).await;
    created.expect(201);
    let id = created.str_at("/application_id");
    let submitted = anna.post_empty(&format!("/v1/applications/{id}/submit")).await;
    submitted.expect(200);
    let number = submitted.str_at("/number");

    let started = Instant::now();
    let path = format!("/v1/applications/{id}");
    let approved = poll(&anna, &path, |app| matches!(app["status"].as_str(), Some("approved" | "rejected" | "withdrawn" | "info_requested")))
        .await
        .unwrap_or_else(|last| panic!("no decision within {WITHIN:?}: {last}\n{}", runner.log()));
    eprintln!("decided in {:?}", started.elapsed());
    assert_eq!((approved["status"].as_str(), approved["status_title"].as_str()), (Some("approved"), Some("Одобрено")), "{approved}");
    let steps: Vec<(&str, &str)> = approved["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (h["status"].as_str().unwrap_or(""), h["actor"]["type"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        steps,
        [("draft", "citizen"), ("submitted", "citizen"), ("accepted", "agency"), ("in_progress", "agency"), ("approved", "agency")],
        "{approved}"
    );
    assert!(approved["expected_completion_date"].is_string(), "the agency named a date: {approved}");

    // The decision: the citizen's own `result` document, a PDF naming the application.
    let results = approved["result_document_ids"].as_array().expect("result_document_ids");
    assert_eq!(results.len(), 1, "{approved}");
    let document = anna.get(&format!("/v1/documents/{}", results[0].as_str().expect("an id"))).await;
    document.expect(200);
    assert_eq!((document.body["type"].as_str(), document.body["status"].as_str()), (Some("result"), Some("available")), "{document}");
    let url = document.body["download"]["url"].as_str().expect("a download URL");
    let bytes = reqwest::get(url).await.expect("download").bytes().await.expect("bytes");
    assert!(bytes.starts_with(b"%PDF-"), "a PDF");
    let pdf = lopdf::Document::load_mem(&bytes).expect("a PDF lopdf reads");
    let text = pdf.extract_text(&[1]).expect("text on page 1");
    assert!(text.contains(&format!("Решение по заявлению № {number}")), "{text}");
    assert!(text.contains(service.body["title"].as_str().expect("title")), "{text}");

    // The citizen heard of it: in the inbox and by SMS (applications: sms + inbox by default).
    let approval = |n: &Value| {
        let text = format!("{} {}", n["title"].as_str().unwrap_or(""), n["body"].as_str().unwrap_or(""));
        text.contains(&number) && text.contains("Одобрено")
    };
    let inbox = poll(&anna, "/v1/me/notifications", |page| page["items"].as_array().is_some_and(|items| items.iter().any(approval)))
        .await
        .unwrap_or_else(|last| panic!("no approval in the inbox: {last}"));
    assert!(inbox["items"].as_array().is_some_and(|items| items.len() >= 4), "submitted, accepted, in progress, approved: {inbox}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut messages = runner.api().outbox(&phone).await;
    while !messages.iter().any(approval) {
        assert!(Instant::now() < deadline, "no approval SMS: {messages:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
        messages = runner.api().outbox(&phone).await;
    }
}

#[tokio::test]
async fn the_demo_registry_agency_verifies_a_profile_to_standard() {
    let runner = Runner::start_with(&DEMO_ENV).await;
    let (anna, _) = citizen(&runner).await;
    let stored = anna.put_profile(&e2e::example_profile()).await;
    let request_id = stored.str_at("/verification/request_id");

    let me =
        poll(&anna, "/v1/me", |me| me["level"] == "standard").await.unwrap_or_else(|last| panic!("not verified within {WITHIN:?}: {last}\n{}", runner.log()));
    assert_eq!(me["profile"]["verification"]["status"], "verified", "{me}");
    assert_eq!(me["profile"]["verification"]["request_id"].as_str(), Some(request_id.as_str()), "{me}");

    // Now a `standard` service goes through to the demo agency too.
    let service = anna.get("/v1/services/income-certificate-2ndfl").await;
    let created = anna.post_json("/v1/applications", &json!({"service_code": "income-certificate-2ndfl", "form": service.body["form_example"]})).await;
    created.expect(201);
    anna.post_empty(&format!("/v1/applications/{}/submit", created.str_at("/application_id"))).await.expect(200);
}

#[tokio::test]
async fn with_demo_agencies_on_the_runner_starts_and_serves_as_before() {
    // The simulator binds its own loopback listener and points the seed agencies at it before
    // anything is served; the portal's API is unchanged by it.
    let runner = Runner::start_with(&DEMO_ENV).await;
    runner.api().get("/health").await.expect(200);
    let (anna, _) = citizen(&runner).await;
    anna.get("/v1/me").await.expect(200);
    assert!(runner.log().contains("demo agencies answer deliveries"), "{}", runner.log());
}

/// A process killed between committing a submission (and its delivery) and attempting the
/// delivery loses nothing: the next process's deliverer finds the delivery in the agency's due
/// lane, and the agency hears of the application exactly once.
#[tokio::test]
async fn a_delivery_committed_by_a_killed_process_reaches_the_agency_after_restart() {
    // The first pass runs at start, the next in an hour: a submission made now is committed and
    // never attempted, exactly as if the process had died right after the commit.
    let runner = Runner::start_with(&[DEMO_ENV[0], DEMO_ENV[1], ("DELIVERY_SWEEP_INTERVAL", "1h")]).await;
    let citizen = runner.api().new_citizen().await;
    let anna = runner.api().bearer(&citizen.tokens.access_token);
    let service = anna.get("/v1/services/mfc-appointment").await;
    let created = anna.post_json("/v1/applications", &json!({"service_code": "mfc-appointment", "form": service.body["form_example"]})).await;
    created.expect(201);
    let id = created.str_at("/application_id");
    anna.post_empty(&format!("/v1/applications/{id}/submit")).await.expect(200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let path = format!("/v1/applications/{id}");
    assert_eq!(anna.get(&path).await.body["status"], "submitted", "the agency must not have heard before the crash");

    // SIGKILL, then a normal process on the same data.
    let runner = runner.crash_and_restart(&[("DELIVERY_SWEEP_INTERVAL", "500ms")]).await;
    // A new process may serve on another port (another issuer): sign in again.
    let tokens = runner.api().login_with_sms(&citizen.phone.e164, &citizen.password).await;
    let anna = runner.api().bearer(&tokens.access_token);
    let decided = poll(&anna, &path, |app| app["status"] == "approved")
        .await
        .unwrap_or_else(|last| panic!("the delivery was lost across the crash: {last}\n{}", runner.log()));
    let accepted = decided["history"].as_array().expect("history").iter().filter(|h| h["status"] == "accepted").count();
    assert_eq!(accepted, 1, "the agency reacted once: {decided}");
}

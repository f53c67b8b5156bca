//! Applications end to end (SPEC §4): a citizen applies through the catalogue, the agency moves
//! the application with signed webhooks (Standard Webhooks v1, dev secrets from
//! `infra/local/seed/agencies.json`), the citizen supplements documents uploaded through the
//! documents API, and the agency approves with a result document it uploaded itself.

use std::time::{Duration, Instant};

use e2e::{Api, Citizen, Reply, Runner, TestPhone, strong_password};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An agency as the seed registry knows it, signing with its dev secret.
struct Agency {
    id: &'static str,
    secret: String,
}

impl Agency {
    fn seed(id: &'static str) -> Agency {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/local/seed/agencies.json");
        let seed: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read the agency seed")).expect("agency seed is JSON");
        let secret = seed["agencies"]
            .as_array()
            .expect("agencies")
            .iter()
            .find(|a| a["id"] == id)
            .and_then(|a| a["webhook_secret"].as_str())
            .unwrap_or_else(|| panic!("no seed agency {id}"))
            .to_owned();
        Agency { id, secret }
    }

    fn sign(&self, webhook_id: &str, timestamp: i64, body: &str) -> String {
        standardwebhooks::Webhook::new(&self.secret).expect("seed secret").sign(webhook_id, timestamp, body.as_bytes()).expect("sign")
    }

    /// A correctly signed delivery to `path` (the webhook by default) with this `webhook-id`.
    async fn deliver_to(&self, api: &Api, path: &str, webhook_id: &str, body: &Value) -> Reply {
        let text = body.to_string();
        let now = chrono::Utc::now().timestamp();
        let signature = self.sign(webhook_id, now, &text);
        signed_post(api, path, webhook_id, now, &signature, &text).await
    }

    async fn deliver(&self, api: &Api, webhook_id: &str, body: &Value) -> Reply {
        self.deliver_to(api, &format!("/v1/webhooks/agencies/{}", self.id), webhook_id, body).await
    }

    async fn set_status(&self, api: &Api, application_id: &str, status: &str, extra: Value) -> Reply {
        let mut data = json!({"application_id": application_id, "status": status});
        if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
            data.extend(extra.clone());
        }
        self.deliver(api, &fresh_id(), &json!({"type": "application.status_changed", "data": data})).await
    }
}

async fn signed_post(api: &Api, path: &str, webhook_id: &str, timestamp: i64, signature: &str, body: &str) -> Reply {
    let timestamp = timestamp.to_string();
    api.post_raw(path, body, &[("webhook-id", webhook_id), ("webhook-timestamp", &timestamp), ("webhook-signature", signature)]).await
}

fn fresh_id() -> String {
    format!("msg_{}_{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(), rand_suffix())
}

fn rand_suffix() -> u32 {
    use rand::Rng as _;
    rand::thread_rng().r#gen()
}

/// A registered citizen (phone account, `simplified`) and a client carrying their token.
async fn citizen(runner: &Runner) -> (Api, TestPhone) {
    let phone = TestPhone::random();
    let tokens = runner.api().register_and_confirm(&phone.e164, &strong_password()).await;
    (runner.api().bearer(&tokens.access_token), phone)
}

/// A draft of `service` filled with the catalogue's own example form.
async fn draft(api: &Api, service: &str) -> Value {
    let service = api.get(&format!("/v1/services/{service}")).await;
    service.expect(200);
    let created = api.post_json("/v1/applications", &json!({"service_code": service.body["code"], "form": service.body["form_example"]})).await;
    created.expect(201);
    created.body
}

async fn submitted(api: &Api, service: &str) -> Value {
    let id = draft(api, service).await["application_id"].as_str().expect("id").to_owned();
    let submitted = api.post_empty(&format!("/v1/applications/{id}/submit")).await;
    submitted.expect(200);
    submitted.body
}

async fn application(api: &Api, id: &str) -> Value {
    let reply = api.get(&format!("/v1/applications/{id}")).await;
    reply.expect(200);
    reply.body
}

fn id_of(app: &Value) -> String {
    app["application_id"].as_str().expect("application_id").to_owned()
}

fn history(app: &Value) -> Vec<(String, String)> {
    app["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (h["status"].as_str().unwrap_or("").to_owned(), h["status_title"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// A small but well-formed PDF, so the documents function's content sniffing accepts it.
fn pdf(label: &str) -> Vec<u8> {
    e2e::one_page_pdf(b"%PDF-1.4\n", &format!("BT /F1 12 Tf 50 800 Td ({label}) Tj ET"), false)
}

/// PUTs `bytes` to a slot's presigned upload.
async fn upload(api: &Api, slot: &Value, bytes: &[u8]) {
    let response = api.put_presigned(&slot["upload"], bytes).await;
    assert!(response.status().is_success(), "upload refused: {}", response.status());
}

/// A citizen's document, uploaded and verified (status `available`).
async fn available_document(api: &Api, doc_type: &str, file_name: &str) -> String {
    let bytes = pdf(file_name);
    let slot = api
        .post_json(
            "/v1/documents",
            &json!({"type": doc_type, "file_name": file_name, "content_type": "application/pdf", "size_bytes": bytes.len(), "purpose": "application"}),
        )
        .await;
    slot.expect(201);
    upload(api, &slot.body, &bytes).await;
    let id = slot.str_at("/document_id");
    let deadline = Instant::now() + if e2e::is_aws_backend() { Duration::from_secs(30) } else { Duration::from_secs(10) };
    loop {
        let doc = api.get(&format!("/v1/documents/{id}")).await;
        doc.expect(200);
        if doc.body["status"] == "available" {
            return id;
        }
        assert!(doc.body["status"] == "pending_upload" && Instant::now() < deadline, "document never became available: {doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Journeys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn citizen_applies_and_the_agency_carries_the_application_to_approval() {
    let runner = Runner::start().await;
    let (anna, _) = citizen(&runner).await;
    let mfc = Agency::seed("mfc");

    let catalogue = runner.api().get("/v1/services?category=mfc").await;
    catalogue.expect(200);
    assert!(catalogue.body["items"].as_array().expect("items").iter().any(|s| s["code"] == "mfc-appointment"), "{catalogue}");

    let draft = draft(&anna, "mfc-appointment").await;
    assert_eq!((draft["status"].as_str(), draft["status_title"].as_str()), (Some("draft"), Some("Черновик")));
    let id = id_of(&draft);
    let submitted = anna.post_empty(&format!("/v1/applications/{id}/submit")).await;
    submitted.expect(200);
    let number = submitted.str_at("/number");
    assert_eq!(submitted.body["status_title"], "Отправлено");
    e2e::parse_utc(&submitted.body["submitted_at"]);

    let employee = json!({"name": "Смирнова Ольга Викторовна", "position": "ведущий специалист"});
    let accepted = mfc.set_status(&runner.api(), &id, "accepted", json!({"employee": employee, "expected_completion_date": "2030-03-16"})).await;
    accepted.expect(200);
    assert_eq!(accepted.body, json!({"result": "applied"}));
    mfc.set_status(&runner.api(), &id, "in_progress", json!({})).await.expect(200);
    // Addressed by number this time, as agencies' own systems often do.
    let ask = json!({"type": "application.status_changed", "data": {"number": number, "status": "info_requested", "comment": "Приложите скан паспорта", "employee": employee}});
    mfc.deliver(&runner.api(), &fresh_id(), &ask).await.expect(200);
    assert_eq!(application(&anna, &id).await["status_title"], "Ожидание дополнений");

    let scan = available_document(&anna, "passport", "passport.pdf").await;
    let supplemented = anna.post_json(&format!("/v1/applications/{id}/supplement"), &json!({"document_ids": [scan], "comment": "Скан приложила"})).await;
    supplemented.expect(200);
    assert_eq!(supplemented.body["status"], "in_progress");

    // The agency uploads the result document into the citizen's cabinet, then approves.
    let result_pdf = pdf("talon.pdf");
    let slot = mfc
        .deliver_to(
            &runner.api(),
            "/v1/agency/mfc/documents",
            &fresh_id(),
            &json!({"application_id": id, "file_name": "talon.pdf", "content_type": "application/pdf", "size_bytes": result_pdf.len()}),
        )
        .await;
    slot.expect(201);
    upload(&runner.api(), &slot.body, &result_pdf).await;
    let result_id = slot.str_at("/document_id");
    mfc.set_status(&runner.api(), &id, "approved", json!({"result_document_ids": [result_id], "comment": "Талон на приём сформирован"})).await.expect(200);

    let done = application(&anna, &id).await;
    assert_eq!((done["status"].as_str(), done["status_title"].as_str()), (Some("approved"), Some("Одобрено")));
    assert_eq!(done["result_document_ids"], json!([result_id]));
    assert_eq!(done["document_ids"], json!([scan]));
    assert_eq!(done["expected_completion_date"], "2030-03-16");
    assert_eq!(done["version"], 7);
    let expected = [
        ("draft", "Черновик"),
        ("submitted", "Отправлено"),
        ("accepted", "Принято"),
        ("in_progress", "В работе"),
        ("info_requested", "Ожидание дополнений"),
        ("in_progress", "В работе"),
        ("approved", "Одобрено"),
    ];
    assert_eq!(history(&done), expected.map(|(s, t)| (s.to_owned(), t.to_owned())));
    let actors: Vec<&Value> = done["history"].as_array().unwrap().iter().map(|h| &h["actor"]).collect();
    assert_eq!(actors[1], &json!({"type": "citizen"}));
    assert_eq!(actors[2], &json!({"type": "agency", "name": "Смирнова Ольга Викторовна", "position": "ведущий специалист"}));
    assert_eq!(actors[3], &json!({"type": "agency", "name": "МФЦ «Мои документы»"}));
    assert_eq!(actors[5], &json!({"type": "citizen"}));
    assert_eq!(done["history"][4]["comment"], "Приложите скан паспорта");
    assert_eq!(done["history"][6]["comment"], "Талон на приём сформирован");

    let listed = anna.get("/v1/applications?status=approved").await;
    listed.expect(200);
    assert_eq!(listed.body["items"][0]["application_id"], json!(id));
    let result = anna.get(&format!("/v1/documents/{result_id}")).await;
    result.expect(200);
    assert_eq!(result.body["type"], "result", "the result sits in the citizen's documents: {result}");
}

#[tokio::test]
async fn a_replayed_webhook_gets_the_same_answer_and_changes_nothing() {
    let runner = Runner::start().await;
    let (anna, _) = citizen(&runner).await;
    let mfc = Agency::seed("mfc");
    let id = id_of(&submitted(&anna, "mfc-appointment").await);

    let body = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted"}});
    let first = mfc.deliver(&runner.api(), "msg_replay_1", &body).await;
    first.expect(200);
    let after_first = application(&anna, &id).await;
    let again = mfc.deliver(&runner.api(), "msg_replay_1", &body).await;
    again.expect(200);
    assert_eq!(again.body, first.body);
    assert_eq!(application(&anna, &id).await, after_first, "nothing applied twice");

    let message = json!({"type": "application.message", "data": {"application_id": id, "text": "Ждём вас в 10:30, окно 5"}});
    mfc.deliver(&runner.api(), "msg_replay_2", &message).await.expect(200);
    mfc.deliver(&runner.api(), "msg_replay_2", &message).await.expect(200);
    let thread = anna.get(&format!("/v1/applications/{id}/messages")).await;
    thread.expect(200);
    assert_eq!(thread.body["items"].as_array().expect("items").len(), 1, "{thread}");
    assert_eq!(thread.body["items"][0]["author"]["type"], "agency");
}

#[tokio::test]
async fn bad_signatures_unknown_agencies_and_stale_timestamps_are_refused_and_change_nothing() {
    let runner = Runner::start().await;
    let (anna, _) = citizen(&runner).await;
    let mfc = Agency::seed("mfc");
    let gibdd = Agency::seed("gibdd");
    let app = submitted(&anna, "mfc-appointment").await;
    let id = id_of(&app);
    let body = json!({"type": "application.status_changed", "data": {"application_id": id, "status": "accepted"}}).to_string();
    let now = chrono::Utc::now().timestamp();
    let path = "/v1/webhooks/agencies/mfc";

    signed_post(&runner.api(), path, "bad-1", now, &gibdd.sign("bad-1", now, &body), &body).await.assert_problem(401, "signature_invalid");
    let tampered = body.replace("accepted", "rejected");
    signed_post(&runner.api(), path, "bad-2", now, &mfc.sign("bad-2", now, &body), &tampered).await.assert_problem(401, "signature_invalid");
    signed_post(&runner.api(), "/v1/webhooks/agencies/roscosmos", "bad-3", now, &mfc.sign("bad-3", now, &body), &body)
        .await
        .assert_problem(401, "signature_invalid");
    let stale = now - 10 * 60;
    signed_post(&runner.api(), path, "bad-4", stale, &mfc.sign("bad-4", stale, &body), &body).await.assert_problem(401, "timestamp_out_of_tolerance");
    runner.api().post_raw(path, &body, &[]).await.assert_problem(401, "signature_invalid");
    assert_eq!(application(&anna, &id).await, app);
}

#[tokio::test]
async fn another_agency_gets_404_and_an_illegal_transition_gets_409() {
    let runner = Runner::start().await;
    let (anna, _) = citizen(&runner).await;
    let (boris, _) = citizen(&runner).await;
    let app = submitted(&anna, "mfc-appointment").await;
    let id = id_of(&app);

    Agency::seed("gibdd").set_status(&runner.api(), &id, "accepted", json!({})).await.assert_problem(404, "not_found");
    Agency::seed("mfc").set_status(&runner.api(), &id, "approved", json!({})).await.assert_problem(409, "invalid_transition");
    Agency::seed("mfc").set_status(&runner.api(), &id, "rejected", json!({})).await.assert_problem(422, "validation_failed");
    assert_eq!(application(&anna, &id).await, app);

    boris.get(&format!("/v1/applications/{id}")).await.assert_problem(404, "not_found");
    boris.post_empty(&format!("/v1/applications/{id}/withdraw")).await.assert_problem(404, "not_found");
    anna.put_json(&format!("/v1/applications/{id}"), &json!({})).await.assert_problem(405, "method_not_allowed");
    let patch = anna.send(reqwest::Method::PATCH, &format!("/v1/applications/{id}"), Some(&json!({"form": {}})), &[]).await;
    patch.assert_problem(409, "invalid_transition");
    let stale = anna.send(reqwest::Method::POST, &format!("/v1/applications/{id}/withdraw"), Some(&json!({})), &[("if-match", "\"1\"")]).await;
    stale.assert_problem(412, "precondition_failed");
    let withdrawn =
        anna.send(reqwest::Method::POST, &format!("/v1/applications/{id}/withdraw"), Some(&json!({"reason": "Передумала"})), &[("if-match", "\"2\"")]).await;
    withdrawn.expect(200);
    assert_eq!(withdrawn.body["status_title"], "Отозвано");
    Agency::seed("mfc").set_status(&runner.api(), &id, "accepted", json!({})).await.assert_problem(409, "invalid_transition");
}

#[tokio::test]
async fn a_standard_service_is_level_insufficient_until_the_registry_verifies_the_profile() {
    let runner = Runner::start().await;
    let (anna, _) = citizen(&runner).await;
    let id = id_of(&draft(&anna, "income-certificate-2ndfl").await);
    let refused = anna.post_empty(&format!("/v1/applications/{id}/submit")).await;
    refused.assert_problem(403, "level_insufficient");

    let me = anna.get("/v1/me").await;
    me.expect(200);
    let user_id = me.str_at("/user_id");
    let stored = anna.put_profile(&e2e::example_profile()).await;
    assert_eq!(stored.body["verification"]["status"], "pending");
    let request_id = stored.str_at("/verification/request_id");

    let verdict = json!({"type": "identity.verification_completed", "data": {"user_id": user_id, "request_id": request_id, "result": "verified"}});
    Agency::seed("mvd").deliver(&runner.api(), &fresh_id(), &verdict).await.assert_problem(403, "forbidden");
    assert_eq!(anna.get("/v1/me").await.body["level"], "simplified");
    Agency::seed("sfr").deliver(&runner.api(), &fresh_id(), &verdict).await.expect(200);
    assert_eq!(anna.get("/v1/me").await.body["level"], "standard");

    let submitted = anna.post_empty(&format!("/v1/applications/{id}/submit")).await;
    submitted.expect(200);
    assert_eq!(submitted.body["status"], "submitted", "the current level counts, not the token's claim");

    let confirm = json!({"type": "identity.confirmed", "data": {"user_id": user_id, "method": "mfc"}});
    Agency::seed("mfc").deliver(&runner.api(), &fresh_id(), &confirm).await.expect(200);
    assert_eq!(anna.get("/v1/me").await.body["level"], "confirmed");
    Agency::seed("pochta")
        .deliver(&runner.api(), &fresh_id(), &json!({"type": "identity.confirmed", "data": {"user_id": user_id, "method": "post"}}))
        .await
        .assert_problem(409, "invalid_transition");
}

/// The High finding of the security review, step by step: a citizen asks for verification of
/// his own data, swaps in another person's SNILS and passport, and the verdict on his first
/// request arrives. It must neither verify the swapped data nor move the victim's SNILS login.
#[tokio::test]
async fn a_verdict_on_an_outdated_request_verifies_nothing_and_never_moves_a_snils_login() {
    let runner = Runner::start().await;
    let registry = Agency::seed("sfr");
    let person = |last_name: &str, snils: &str, passport_number: &str| {
        json!({
            "last_name": last_name, "first_name": "Анна", "birth_date": "1988-05-17", "gender": "female", "snils": snils,
            "passport": {"series": "4506", "number": passport_number, "issued_at": "2015-03-20", "issued_by": "ОВД Тверского района г. Москвы", "division_code": "772-001"}
        })
    };
    let verdict = |user_id: &str, request_id: &str| json!({"type": "identity.verification_completed", "data": {"user_id": user_id, "request_id": request_id, "result": "verified"}});

    let (victims_snils, attackers_snils) = (random_snils(), random_snils());
    // The victim's SNILS is verified for her account and is one of her logins.
    let (victim, victim_id, victim_password) = signed_in(&runner).await;
    let victim_profile = victim.put_profile(&person("Петрова", &victims_snils, "123456")).await;
    registry.deliver(&runner.api(), &fresh_id(), &verdict(&victim_id, &victim_profile.str_at("/verification/request_id"))).await.expect(200);
    assert_eq!(victim.get("/v1/me").await.body["level"], "standard");

    // The attacker asks for his own data to be verified, then swaps in the victim's.
    let (attacker, attacker_id, attacker_password) = signed_in(&runner).await;
    let own = attacker.put_profile(&person("Сидоров", &attackers_snils, "654321")).await;
    let first_request = own.str_at("/verification/request_id");
    let swapped = attacker.put_profile(&person("Петрова", &victims_snils, "123456")).await;
    let second_request = swapped.str_at("/verification/request_id");
    assert_ne!(first_request, second_request, "changed data is a new request");

    // The verdict on the first request arrives: outdated, nothing changes.
    registry.deliver(&runner.api(), &fresh_id(), &verdict(&attacker_id, &first_request)).await.assert_problem(409, "verification_outdated");
    let me = attacker.get("/v1/me").await;
    assert_eq!((me.body["level"].as_str(), me.body["profile"]["verification"]["status"].as_str()), (Some("simplified"), Some("pending")), "{}", me.body);
    runner.api().login(&victims_snils, &attacker_password).await.assert_problem(401, "invalid_credentials");

    // Even a verdict on the latest request never takes the SNILS login from the victim.
    registry.deliver(&runner.api(), &fresh_id(), &verdict(&attacker_id, &second_request)).await.expect(200);
    runner.api().login(&victims_snils, &attacker_password).await.assert_problem(401, "invalid_credentials");
    runner.api().login(&victims_snils, &victim_password).await.expect(200);
}

/// A new citizen, signed in: their API, user id and password.
async fn signed_in(runner: &Runner) -> (Api, String, String) {
    let Citizen { password, tokens, .. } = runner.api().new_citizen().await;
    let api = runner.api().bearer(&tokens.access_token);
    let user_id = api.get("/v1/me").await.str_at("/user_id");
    (api, user_id, password)
}

/// A checksum-valid SNILS nobody else in a shared stack uses (SPEC §3.1).
fn random_snils() -> String {
    use rand::Rng as _;
    let digits: Vec<u32> = (0..9).map(|_| rand::thread_rng().gen_range(0..10)).collect();
    let sum: u32 = digits.iter().enumerate().map(|(i, d)| d * (9 - i as u32)).sum();
    let check = match sum % 101 {
        100 => 0,
        n => n,
    };
    format!("{}{check:02}", digits.iter().map(u32::to_string).collect::<String>())
}

/// The citizen's SMS about applications in the dev outbox, oldest first.
async fn application_sms(runner: &Runner, phone: &TestPhone) -> Vec<String> {
    let mut texts: Vec<String> = runner
        .api()
        .outbox(&phone.e164)
        .await
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .filter(|body| body.starts_with("Заявление №"))
        .collect();
    texts.reverse();
    texts
}

async fn wait_for<F, Fut, T>(mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + e2e::outbox_wait() * 2;
    loop {
        let value = probe().await;
        if done(&value) || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_status_change_reaches_the_inbox_and_sms_until_the_citizen_switches_sms_off() {
    let runner = Runner::start().await;
    let (anna, phone) = citizen(&runner).await;
    let mfc = Agency::seed("mfc");
    let app = submitted(&anna, "mfc-appointment").await;
    let id = id_of(&app);
    mfc.set_status(&runner.api(), &id, "accepted", json!({})).await.expect(200);
    mfc.set_status(&runner.api(), &id, "in_progress", json!({})).await.expect(200);

    // submitted, accepted, in_progress: one SMS and one inbox entry each (applications → sms + inbox by default).
    let sms = wait_for(|| application_sms(&runner, &phone), |t| t.len() >= 3).await;
    assert_eq!(sms.len(), 3, "{sms:?}");
    assert!(sms[1].contains("«Принято»") && sms[2].contains("«В работе»"), "{sms:?}");
    let inbox = |api: Api| async move { api.get("/v1/me/notifications").await.body["items"].as_array().cloned().unwrap_or_default() };
    let entries = wait_for(|| inbox(anna.clone()), |items| items.iter().filter(|n| n["category"] == "applications").count() >= 3).await;
    assert_eq!(entries.iter().filter(|n| n["category"] == "applications").count(), 3, "{entries:?}");

    let off = anna.put_json("/v1/me/notification-settings", &json!({"categories": {"applications": {"sms": false}}})).await;
    off.expect(200);
    mfc.set_status(&runner.api(), &id, "info_requested", json!({"comment": "Приложите скан паспорта"})).await.expect(200);
    let entries = wait_for(|| inbox(anna.clone()), |items| items.iter().filter(|n| n["category"] == "applications").count() >= 4).await;
    assert_eq!(entries.iter().filter(|n| n["category"] == "applications").count(), 4, "the inbox still gets the change");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(application_sms(&runner, &phone).await.len(), 3, "no SMS once the citizen switched SMS off for applications");
}

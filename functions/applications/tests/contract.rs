//! The OpenAPI document generated from `applications::api`: it declares exactly the SPEC routes,
//! each one is served, every operation is complete (id, success body, problem+json errors),
//! and real answers of the router validate against the schemas it declares.

mod common;

use std::collections::HashSet;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::{Harness, Reply};
use shared::http::contract::{PROBLEM_CONTENT_TYPE, routes_of, split};

/// SPEC §4 (plus `GET /health` and `GET /openapi.json` of §2), of §4.6 the application reads.
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/services"),
    ("GET", "/v1/services/{code}"),
    ("GET", "/v1/applications"),
    ("POST", "/v1/applications"),
    ("GET", "/v1/applications/{id}"),
    ("PATCH", "/v1/applications/{id}"),
    ("POST", "/v1/applications/{id}/submit"),
    ("POST", "/v1/applications/{id}/withdraw"),
    ("POST", "/v1/applications/{id}/supplement"),
    ("GET", "/v1/applications/{id}/messages"),
    ("POST", "/v1/applications/{id}/messages"),
    ("POST", "/v1/webhooks/agencies/{agency_id}"),
    ("GET", "/v1/agency/{agency_id}/applications"),
    ("GET", "/v1/agency/{agency_id}/applications/{id}"),
];

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn document(h: &Harness) -> Value {
    serde_json::to_value(split(applications::api(h.state.clone()), "Applications").1).expect("document serializes")
}

/// Every `(METHOD, path, operation)` of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                out.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_declares_exactly_the_spec_routes_and_the_router_serves_each() {
    let h = Harness::embedded().await;
    let (router, doc) = split(applications::api(h.state.clone()), "Applications");
    let mut expected: Vec<(String, String)> = SPEC_ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    expected.sort();
    let declared = routes_of(&doc);
    assert_eq!(declared, expected);

    // Without a token or signature each route still reaches its handler: the shared fallbacks
    // would answer 404 `not_found` (no such path) or 405 (no such method).
    let app = shared::http::finish(router);
    let code = h.state.catalogue.services()[0].code.clone();
    for (method, path) in declared {
        let uri = path.replace("{code}", &code).replace("{id}", &ulid::Ulid::new().to_string()).replace("{agency_id}", "mvd");
        let response = app.clone().oneshot(Request::builder().method(method.as_str()).uri(&uri).body(Body::empty()).expect("request")).await.expect("answer");
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status != 405 && !(status == 404 && body["code"] == "not_found"), "{method} {path} is declared but not served: {status} {body}");
        let wanted = if ["/v1/applications", "/v1/webhooks", "/v1/agency"].iter().any(|p| path.starts_with(p)) { 401 } else { 200 };
        assert_eq!(status, wanted, "{method} {uri}: {body}");
    }
}

#[tokio::test]
async fn every_operation_has_an_id_a_success_body_and_problem_json_errors() {
    let h = Harness::embedded().await;
    let doc = document(&h);
    let mut ids = HashSet::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{method} {path}: no operationId");
        assert!(ids.insert(id.to_owned()), "{method} {path}: operationId {id} used twice");
        let responses = operation["responses"].as_object().expect("responses");
        let success = responses
            .iter()
            .any(|(status, response)| status.starts_with('2') && (status == "204" || response["content"]["application/json"]["schema"].is_object()));
        assert!(success, "{method} {path}: no 2xx answer with a body");
        for (status, response) in responses.iter().filter(|(status, _)| status.starts_with('4')) {
            let codes = &response["content"][PROBLEM_CONTENT_TYPE]["schema"]["allOf"][1]["properties"]["code"]["enum"];
            assert!(codes.as_array().is_some_and(|c| !c.is_empty()), "{method} {path} {status}: not problem+json with its codes");
        }
        if path.starts_with("/v1/applications") || path.starts_with("/v1/agency") {
            assert_eq!(operation["security"], json!([{"bearer": []}]), "{method} {path}: citizen and agency routes need the bearer token");
            assert!(responses.contains_key("401"), "{method} {path}: no 401");
        }
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            assert!(parameter["schema"].is_object(), "{method} {path}: parameter {} has no schema", parameter["name"]);
        }
    }
    let webhook = &doc["paths"]["/v1/webhooks/agencies/{agency_id}"]["post"];
    let headers: Vec<&str> =
        webhook["parameters"].as_array().expect("parameters").iter().filter(|p| p["in"] == "header").filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(headers, ["webhook-id", "webhook-timestamp", "webhook-signature"]);
    let withdrawal = &doc["paths"]["/v1/applications/{id}/withdraw"]["post"]["requestBody"];
    assert_eq!(withdrawal["required"], json!(false), "an empty body withdraws without a reason");
    assert_eq!(withdrawal["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ApplicationWithdrawal");
    assert_eq!(
        doc["paths"]["/v1/applications/{id}/submit"]["post"]["responses"]["412"]["content"][PROBLEM_CONTENT_TYPE]["schema"]["allOf"][1]["properties"]["code"]["enum"],
        json!(["precondition_failed"])
    );
    let application = &doc["components"]["schemas"]["Application"];
    for field in [
        "application_id",
        "number",
        "service_code",
        "agency_id",
        "status",
        "status_title",
        "form",
        "document_ids",
        "created_at",
        "submitted_at",
        "updated_at",
        "expected_completion_date",
        "rejection",
        "result_document_ids",
        "history",
        "version",
    ] {
        assert!(application["properties"][field].is_object(), "Application.{field} is not described");
        assert!(application["required"].as_array().expect("required").contains(&json!(field)), "Application.{field} is always present");
    }
}

/// Checks `reply` against the schema `doc` declares for `method path` answering its status.
fn assert_conforms(doc: &Value, method: &str, path: &str, reply: &Reply) {
    let errors = schema_errors(doc, method, path, reply.status.as_u16(), &reply.body);
    assert!(errors.is_empty(), "{method} {path} {} does not match its schema: {errors:?}\n{}", reply.status, reply.body);
}

/// What is wrong with `body` as the answer `status` of `method path`, by the document.
fn schema_errors(doc: &Value, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
    let response = &doc["paths"][path][method.to_lowercase()]["responses"][status.to_string()];
    assert!(response.is_object(), "{method} {path} does not declare {status}: {body}");
    let content_type = if (200..300).contains(&status) { "application/json" } else { PROBLEM_CONTENT_TYPE };
    let mut schema = response["content"][content_type]["schema"].clone();
    assert!(schema.is_object(), "{method} {path} {status}: no {content_type} schema");
    schema["components"] = doc["components"].clone();
    let validator = jsonschema::draft202012::options().build(&schema).expect("schema compiles");
    validator.iter_errors(body).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

#[tokio::test]
async fn answers_of_the_router_match_the_schemas_the_document_declares() {
    let h = Harness::embedded().await;
    let doc = document(&h);
    let anna = h.citizen("simplified").await;

    let services = h.call("GET", "/v1/services?limit=5", None, None, &[]).await.expect(200);
    assert_conforms(&doc, "GET", "/v1/services", &services);
    for service in h.state.catalogue.services() {
        let one = h.call("GET", &format!("/v1/services/{}", service.code), None, None, &[]).await.expect(200);
        assert_conforms(&doc, "GET", "/v1/services/{code}", &one);
    }
    assert_conforms(&doc, "GET", "/v1/services/{code}", &h.call("GET", "/v1/services/no-such", None, None, &[]).await.problem(404, "not_found"));
    assert_conforms(&doc, "GET", "/v1/services", &h.call("GET", "/v1/services?limit=0", None, None, &[]).await.problem(400, "validation_failed"));

    let form = h.state.catalogue.get("mfc-appointment").expect("service").form_example.clone();
    let created = h.post("/v1/applications", json!({"service_code": "mfc-appointment", "form": form}), &anna).await.expect(201);
    assert_conforms(&doc, "POST", "/v1/applications", &created);
    let id = created.body["application_id"].as_str().expect("id").to_owned();
    let unknown = h.post("/v1/applications", json!({"service_code": "no-such"}), &anna).await.problem(422, "validation_failed");
    assert_conforms(&doc, "POST", "/v1/applications", &unknown);
    assert_conforms(&doc, "GET", "/v1/applications", &h.call("GET", "/v1/applications", None, None, &[]).await.problem(401, "unauthorized"));

    let patched = h.call("PATCH", &format!("/v1/applications/{id}"), Some(json!({"form": form})), Some(&anna.token), &[]).await.expect(200);
    assert_conforms(&doc, "PATCH", "/v1/applications/{id}", &patched);
    let stale =
        h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&anna.token), &[("if-match", "\"99\"")]).await.problem(412, "precondition_failed");
    assert_conforms(&doc, "POST", "/v1/applications/{id}/submit", &stale);
    let submitted = h.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&anna.token), &[]).await.expect(200);
    assert_conforms(&doc, "POST", "/v1/applications/{id}/submit", &submitted);
    assert_conforms(
        &doc,
        "PATCH",
        "/v1/applications/{id}",
        &h.call("PATCH", &format!("/v1/applications/{id}"), Some(json!({})), Some(&anna.token), &[]).await.problem(409, "invalid_transition"),
    );

    let message = h.post(&format!("/v1/applications/{id}/messages"), json!({"text": "Когда можно прийти?"}), &anna).await.expect(201);
    assert_conforms(&doc, "POST", "/v1/applications/{id}/messages", &message);
    let applied = h.agency_sets("mfc", &id, "accepted", json!({"employee": {"name": "Иванова И. И.", "position": "специалист"}})).await.expect(200);
    assert_conforms(&doc, "POST", "/v1/webhooks/agencies/{agency_id}", &applied);
    let refused = h.agency_sets("mfc", &id, "approved", json!({})).await.problem(409, "invalid_transition");
    assert_conforms(&doc, "POST", "/v1/webhooks/agencies/{agency_id}", &refused);
    h.agency_sets("mfc", &id, "rejected", json!({"rejection": {"reason": "Нет свободного времени", "recommendations": "Запишитесь на другой день"}}))
        .await
        .expect(200);
    let unsigned = h.webhook_raw("mfc", "msg_unsigned", chrono::Utc::now().timestamp(), "v1,AAAA", "{}").await.problem(401, "signature_invalid");
    assert_conforms(&doc, "POST", "/v1/webhooks/agencies/{agency_id}", &unsigned);

    let rejected = h.get(&format!("/v1/applications/{id}"), &anna).await.expect(200);
    assert_eq!(rejected.body["status"], "rejected");
    assert_conforms(&doc, "GET", "/v1/applications/{id}", &rejected);
    // The check has teeth: a body off its schema, or a code the operation does not list, fails.
    let mut lost = rejected.body.clone();
    lost["history"][0]["actor"]["type"] = json!("robot");
    assert!(!schema_errors(&doc, "GET", "/v1/applications/{id}", 200, &lost).is_empty());
    let mut unlisted = unsigned.body.clone();
    unlisted["code"] = json!("invalid_token");
    assert!(!schema_errors(&doc, "POST", "/v1/webhooks/agencies/{agency_id}", 401, &unlisted).is_empty());
    assert_conforms(&doc, "GET", "/v1/applications", &h.get("/v1/applications?status=rejected", &anna).await.expect(200));
    assert_conforms(&doc, "GET", "/v1/applications/{id}/messages", &h.get(&format!("/v1/applications/{id}/messages"), &anna).await.expect(200));
    let withdrawn = h.call("POST", &format!("/v1/applications/{id}/withdraw"), None, Some(&anna.token), &[]).await.problem(409, "invalid_transition");
    assert_conforms(&doc, "POST", "/v1/applications/{id}/withdraw", &withdrawn);

    let draft = h.create(&anna, "mfc-appointment").await;
    let draft_id = draft["application_id"].as_str().expect("id");
    let withdraw_draft =
        h.post(&format!("/v1/applications/{draft_id}/withdraw"), json!({"reason": "Передумала"}), &anna).await.problem(409, "invalid_transition");
    assert_conforms(&doc, "POST", "/v1/applications/{id}/withdraw", &withdraw_draft);
    let no_thread = h.post(&format!("/v1/applications/{draft_id}/messages"), json!({"text": "?"}), &anna).await.problem(409, "invalid_state");
    assert_conforms(&doc, "POST", "/v1/applications/{id}/messages", &no_thread);
    let supplement = h
        .post(&format!("/v1/applications/{draft_id}/supplement"), json!({"document_ids": [], "comment": "Вот"}), &anna)
        .await
        .problem(409, "invalid_transition");
    assert_conforms(&doc, "POST", "/v1/applications/{id}/supplement", &supplement);

    // The agency API (SPEC §4.6), with a profile and documents to describe.
    let boris = h.citizen_with_profile("standard").await;
    let document = h.document(&boris.user_id, "passport", "available").await;
    let form = h.state.catalogue.get("mfc-appointment").expect("service").form_example.clone();
    let draft = h.post("/v1/applications", json!({"service_code": "mfc-appointment", "form": form, "document_ids": [document]}), &boris).await.expect(201);
    let boris_id = draft.body["application_id"].as_str().expect("id").to_owned();
    h.call("POST", &format!("/v1/applications/{boris_id}/submit"), None, Some(&boris.token), &[]).await.expect(200);
    let mfc = h.agency_token("mfc");
    let list = h.call("GET", "/v1/agency/mfc/applications?limit=10", None, Some(&mfc), &[]).await.expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(2));
    assert_conforms(&doc, "GET", "/v1/agency/{agency_id}/applications", &list);
    let one = h.call("GET", &format!("/v1/agency/mfc/applications/{boris_id}"), None, Some(&mfc), &[]).await.expect(200);
    assert_eq!(one.body["documents"][0]["document_id"], document.as_str());
    assert!(one.body["applicant"]["profile"]["snils"].is_string(), "{}", one.body);
    assert_conforms(&doc, "GET", "/v1/agency/{agency_id}/applications/{id}", &one);
    for (path, reply) in [
        (
            "/v1/agency/{agency_id}/applications",
            h.call("GET", "/v1/agency/mfc/applications?cursor=x", None, Some(&mfc), &[]).await.problem(400, "validation_failed"),
        ),
        ("/v1/agency/{agency_id}/applications", h.call("GET", "/v1/agency/mfc/applications", None, None, &[]).await.problem(401, "unauthorized")),
        ("/v1/agency/{agency_id}/applications", h.call("GET", "/v1/agency/gibdd/applications", None, Some(&mfc), &[]).await.problem(404, "not_found")),
        (
            "/v1/agency/{agency_id}/applications/{id}",
            h.call("GET", &format!("/v1/agency/mfc/applications/{boris_id}"), None, Some(&anna.token), &[]).await.problem(401, "invalid_token"),
        ),
        (
            "/v1/agency/{agency_id}/applications/{id}",
            h.call("GET", &format!("/v1/agency/mfc/applications/{draft_id}"), None, Some(&mfc), &[]).await.problem(404, "not_found"),
        ),
    ] {
        assert_conforms(&doc, "GET", path, &reply);
    }
}

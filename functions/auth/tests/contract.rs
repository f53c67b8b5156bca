//! The declared contract (`auth::api`): the OpenAPI document describes every operation fully,
//! lists exactly the routes the router serves, and documents the codes the handlers answer.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use shared::http::contract::{PROBLEM_CONTENT_TYPE, routes_of, split};

use common::{Harness, PASSWORD};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// The routes of SPEC §3 this function serves, plus the two every function serves (§2).
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("DELETE", "/v1/me/mfa/totp"),
    ("DELETE", "/v1/me/sessions/{id}"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/me"),
    ("GET", "/v1/me/login-history"),
    ("GET", "/v1/me/sessions"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/login/mfa"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/otp/resend"),
    ("POST", "/v1/auth/password/recover"),
    ("POST", "/v1/auth/password/recover/confirm"),
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/register/confirm"),
    ("POST", "/v1/auth/token/refresh"),
    ("POST", "/v1/me/mfa/totp"),
    ("POST", "/v1/me/mfa/totp/confirm"),
    ("POST", "/v1/me/password"),
    ("PUT", "/v1/me/mfa/sms"),
    ("PUT", "/v1/me/profile"),
];

fn document(h: &Harness) -> Value {
    serde_json::to_value(split(auth::api(h.state.clone()), "Auth").1).expect("the document serializes")
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method.to_lowercase()) {
                out.push((method.to_owned(), path.clone(), op));
            }
        }
    }
    out
}

/// The `code` values the document allows for `status` of an operation.
fn documented_codes(doc: &Value, method: &str, path: &str, status: u16) -> Vec<String> {
    let response = &doc["paths"][path][method.to_lowercase()]["responses"][status.to_string()];
    let schema = &response["content"][PROBLEM_CONTENT_TYPE]["schema"];
    schema["allOf"][1]["properties"]["code"]["enum"]
        .as_array()
        .map(|codes| codes.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema["properties"].as_object().expect("an object schema").keys().cloned().collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("an object").keys().cloned().collect()
}

async fn raw(h: &Harness, method: &str, uri: &str, content_type: Option<&str>, body: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let app = shared::http::finish_api(auth::api(h.state.clone()), "Auth");
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let response = app.oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "01JABCDEFGHJKMNPQRSTVWXYZ0")
}

#[tokio::test]
async fn every_operation_has_an_id_a_success_body_and_problem_json_errors() {
    let h = Harness::new().await;
    let doc = document(&h);
    assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3.1"));
    let operations = operations(&doc);
    assert_eq!(operations.len(), SPEC_ROUTES.len());
    let ids: BTreeSet<&str> = operations.iter().filter_map(|(_, _, op)| op["operationId"].as_str()).collect();
    assert_eq!(ids.len(), operations.len(), "operationIds are unique: {ids:?}");
    for (method, path, op) in operations {
        let name = format!("{method} {path}");
        assert!(op["operationId"].as_str().is_some_and(|id| !id.is_empty()), "{name}: operationId");
        let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{name}: responses"));
        let success = responses.iter().filter(|(status, _)| status.starts_with('2') || status.as_str() == "302");
        let described = success.clone().any(|(status, r)| {
            matches!(status.as_str(), "204" | "302") || r["content"].as_object().is_some_and(|c| c.values().any(|m| m["schema"].is_object()))
        });
        assert!(success.count() > 0 && described, "{name}: a 2xx answer with its body");
        for (status, response) in responses.iter().filter(|(status, _)| status.starts_with('4')) {
            assert!(response["content"][PROBLEM_CONTENT_TYPE]["schema"].is_object(), "{name} {status}: problem+json");
            assert!(!documented_codes(&doc, &method, &path, status.parse().unwrap()).is_empty(), "{name} {status}: its codes");
        }
        if path.starts_with("/v1/me") || path == "/v1/auth/logout" {
            assert_eq!(op["security"], json!([{"bearer": []}]), "{name}: needs a bearer token");
            assert_eq!(documented_codes(&doc, &method, &path, 401), ["unauthorized", "invalid_token", "session_expired"], "{name}");
        }
    }
    // Every schema the operations refer to is in the document.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(doc["components"]["schemas"][name].is_object(), "schema {name} is referenced but missing");
    }
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let h = Harness::new().await;
    let doc: utoipa::openapi::OpenApi = split(auth::api(h.state.clone()), "Auth").1;
    let declared = routes_of(&doc);
    let expected: Vec<(String, String)> = SPEC_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(declared, expected);
    let paths: BTreeSet<&str> = declared.iter().map(|(_, p)| p.as_str()).collect();
    for path in paths {
        for method in METHODS {
            let (status, body) = raw(&h, method, &concrete(path), None, "", None).await;
            if declared.contains(&(method.to_owned(), path.to_owned())) {
                // Served: anything but the fallbacks (a handler's own 404 carries a session check first).
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(status != StatusCode::NOT_FOUND || path.contains('{'), "{method} {path}: {body}");
            } else {
                assert_eq!((status, body["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")), "{method} {path} is not declared");
            }
        }
    }
}

/// A request: method, URI, content type, body, bearer token.
type Probe<'a> = (&'a str, &'a str, Option<&'a str>, String, Option<&'a str>);

/// Calls that end in errors, each answer checked against the operation's documented codes.
#[tokio::test]
async fn the_error_codes_answered_are_the_documented_ones() {
    let h = Harness::new().await;
    let doc = document(&h);
    let tokens = h.registered("contract@example.ru").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let json_ct = Some("application/json");
    let too_long = "я".repeat(321);
    let cases: Vec<Probe> = vec![
        ("POST", "/v1/auth/register", None, "{}".into(), None),
        ("POST", "/v1/auth/register", json_ct, "{".into(), None),
        ("POST", "/v1/auth/register", json_ct, json!({"email": "x@example.ru", "password": PASSWORD}).to_string(), None),
        (
            "POST",
            "/v1/auth/register",
            json_ct,
            json!({"email": "x@example.ru", "password": "short", "consents": {"terms": true, "personal_data": true}}).to_string(),
            None,
        ),
        ("POST", "/v1/auth/register", json_ct, json!({"phone": too_long, "password": PASSWORD}).to_string(), None),
        ("POST", "/v1/auth/register/confirm", json_ct, json!({"flow_id": "nope", "code": "123456"}).to_string(), None),
        ("POST", "/v1/auth/otp/resend", json_ct, json!({"flow_id": "nope"}).to_string(), None),
        ("POST", "/v1/auth/login", json_ct, json!({"login": "nobody@example.ru", "password": PASSWORD}).to_string(), None),
        ("POST", "/v1/auth/login", json_ct, json!({"login": "contract@example.ru"}).to_string(), None),
        ("POST", "/v1/auth/login/mfa", json_ct, json!({"flow_id": "nope", "method": "sms", "code": "1"}).to_string(), None),
        ("POST", "/v1/auth/password/recover", None, "".into(), None),
        ("POST", "/v1/auth/password/recover/confirm", json_ct, json!({"flow_id": "nope", "code": "1", "new_password": PASSWORD}).to_string(), None),
        ("POST", "/v1/auth/token/refresh", json_ct, json!({"refresh_token": "nope"}).to_string(), None),
        ("POST", "/v1/auth/logout", None, "".into(), Some("not-a-jwt")),
        ("GET", "/v1/me", None, "".into(), None),
        ("GET", "/v1/me/sessions?limit=x", None, "".into(), Some(&access)),
        ("DELETE", "/v1/me/sessions/nope", None, "".into(), Some(&access)),
        ("DELETE", "/v1/me/sessions/%FF", None, "".into(), Some(&access)),
        ("GET", "/v1/me/login-history?cursor=elsewhere", None, "".into(), Some(&access)),
        ("POST", "/v1/me/password", json_ct, json!({"current_password": "Wrong#Pass1", "new_password": PASSWORD}).to_string(), Some(&access)),
        ("POST", "/v1/me/password", json_ct, json!({"current_password": PASSWORD, "new_password": "short"}).to_string(), Some(&access)),
        ("PUT", "/v1/me/profile", json_ct, json!({}).to_string(), Some(&access)),
        ("POST", "/v1/me/mfa/totp/confirm", json_ct, json!({"code": "123456"}).to_string(), Some(&access)),
        ("DELETE", "/v1/me/mfa/totp", json_ct, json!({"code": "123456"}).to_string(), Some(&access)),
        ("PUT", "/v1/me/mfa/sms", json_ct, json!({"enabled": true}).to_string(), Some(&access)),
        ("PUT", "/v1/me/mfa/sms", None, "".into(), Some(&access)),
    ];
    for (method, uri, content_type, body, bearer) in cases {
        let (status, answer) = raw(&h, method, uri, content_type, &body, bearer).await;
        let path = uri.split('?').next().unwrap_or(uri);
        let template = if path.starts_with("/v1/me/sessions/") { "/v1/me/sessions/{id}" } else { path };
        assert!(status.is_client_error(), "{method} {uri}: {status} {answer}");
        let code = answer["code"].as_str().unwrap_or_default().to_owned();
        assert!(documented_codes(&doc, method, template, status.as_u16()).contains(&code), "{method} {uri}: {status} `{code}` is not documented");
    }
}

/// The schemas declared for shared types (`schemas.rs`) name the fields those types serialize.
#[tokio::test]
async fn the_schemas_of_shared_types_match_what_is_answered() {
    let h = Harness::new().await;
    let doc = document(&h);
    let schemas = &doc["components"]["schemas"];
    let passport = shared::domain::PassportInput {
        series: "4506".into(),
        number: "123456".into(),
        issued_at: "2015-03-20".into(),
        issued_by: "ОВД".into(),
        division_code: "772-001".into(),
    };
    let mut profile = shared::identity::Profile {
        last_name: "Иванова".into(),
        first_name: "Анна".into(),
        middle_name: None,
        birth_date: chrono::NaiveDate::from_ymd_opt(1990, 5, 17).unwrap(),
        gender: shared::identity::Gender::Female,
        snils: shared::domain::Snils::parse("112-233-445 95").unwrap(),
        inn: None,
        passport: shared::domain::Passport::parse_as_of(&passport, chrono::Utc::now().date_naive()).unwrap(),
        verification: shared::identity::Verification::requested("01J".into()),
        updated_at: chrono::Utc::now(),
    };
    profile.verification.reason = Some("mismatch".into());
    let answered = serde_json::to_value(&profile).unwrap();
    assert_eq!(property_names(&schemas["Profile"]), keys(&answered));
    assert_eq!(property_names(&schemas["Passport"]), keys(&answered["passport"]));
    assert_eq!(property_names(&schemas["Verification"]), keys(&answered["verification"]));
    let levels: BTreeSet<String> = [shared::identity::Level::Simplified, shared::identity::Level::Standard, shared::identity::Level::Confirmed]
        .iter()
        .map(|l| l.as_str().to_owned())
        .collect();
    let documented: BTreeSet<String> = schemas["Level"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(documented, levels);

    let (status, jwks) = raw(&h, "GET", "/.well-known/jwks.json", None, "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(property_names(&schemas["Jwks"]), keys(&jwks));
    assert_eq!(property_names(&schemas["Jwk"]), keys(&jwks["keys"][0]));
    let (_, discovery) = raw(&h, "GET", "/.well-known/openid-configuration", None, "", None).await;
    assert_eq!(property_names(&schemas["OpenIdConfiguration"]), keys(&discovery));
}

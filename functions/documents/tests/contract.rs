//! The HTTP contract of the documents function (SPEC §12): the OpenAPI document generated from
//! the one declaration in `documents::api`, checked for what clients and the property-based
//! tester rely on, and against the routes the router really serves.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use documents::{Api, Settings};
use shared::http::contract::{PROBLEM_CONTENT_TYPE, routes_of, split};

mod common;

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "PATCH"];

/// What SPEC §5, §4.4 and §4.6 bind for this function, plus `GET /health` and `GET /openapi.json` (§2):
/// each method with its paths, in order.
const EXPECTED_ROUTES: &[(&str, &[&str])] = &[
    ("DELETE", &["/v1/documents/{id}", "/v1/documents/{id}/shares/{share_id}"]),
    (
        "GET",
        &[
            "/health",
            "/openapi.json",
            "/v1/agency/{agency_id}/applications/{id}/documents/{document_id}",
            "/v1/documents",
            "/v1/documents/{id}",
            "/v1/documents/{id}/shares",
            "/v1/documents/{id}/versions",
            "/v1/shares/{token}",
        ],
    ),
    ("POST", &["/v1/agency/{agency_id}/documents", "/v1/documents", "/v1/documents/{id}/restore", "/v1/documents/{id}/shares"]),
];

/// `EXPECTED_ROUTES` as `(method, path)` pairs, sorted.
fn expected_routes() -> Vec<(&'static str, &'static str)> {
    EXPECTED_ROUTES.iter().flat_map(|(method, paths)| paths.iter().map(move |path| (*method, *path))).collect()
}

struct Fixture {
    api: Api,
    _backend: common::Backend,
}

async fn fixture() -> Fixture {
    let backend = common::Backend::open().await;
    let state = Arc::new(backend.state(backend.objects.clone(), Settings::default()));
    Fixture { api: common::api(state, &common::key_ring()), _backend: backend }
}

fn document(api: Api) -> Value {
    serde_json::to_value(split(documents::api(api), "Documents").1).unwrap()
}

/// Every `(method, path, operation)` of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method.to_ascii_lowercase()) {
                out.push((method.to_owned(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_operation_has_an_id_a_success_and_problem_json_errors() {
    let f = fixture().await;
    let doc = document(f.api.clone());
    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let at = format!("{method} {path}");
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{at} has no operationId"));
        assert!(ids.insert(id.to_owned()), "{at}: operationId {id} is used twice");
        let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{at} has no responses"));
        assert!(responses.keys().any(|status| status.starts_with('2') || status.starts_with('3')), "{at} has no 2xx/3xx response");
        for (status, response) in responses.iter().filter(|(status, _)| status.starts_with('4')) {
            let schema = &response["content"][PROBLEM_CONTENT_TYPE]["schema"];
            assert!(schema.is_object(), "{at} {status} is not problem+json");
            let codes = schema["allOf"][1]["properties"]["code"]["enum"].as_array().map_or(0, Vec::len);
            assert!(codes > 0, "{at} {status} lists no codes");
        }
        for name in path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')) {
            let declared = operation["parameters"].as_array().into_iter().flatten().any(|p| p["in"] == "path" && p["name"] == name);
            assert!(declared, "{at} does not declare its path parameter {name}");
        }
        let bearer = operation["security"].as_array().into_iter().flatten().any(|s| s.get("bearer").is_some());
        let agency_api = path.starts_with("/v1/agency/{agency_id}/applications");
        assert_eq!(bearer, path.starts_with("/v1/documents") || agency_api, "{at}: only the citizen's routes and the agency API take a bearer token");
    }
    assert_eq!(ids.len(), expected_routes().len());
}

#[tokio::test]
async fn every_schema_reference_resolves() {
    let f = fixture().await;
    let doc = document(f.api.clone());
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.contains("#/components/schemas/Document"), "{refs:?}");
    for reference in refs {
        let name = reference.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected reference {reference}"));
        assert!(doc["components"]["schemas"][name].is_object(), "{reference} is not in components");
    }
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.insert(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_declares_exactly_the_routes_the_router_serves() {
    let f = fixture().await;
    let (app, doc) = split(documents::api(f.api.clone()), "Documents");
    let declared = routes_of(&doc);
    let expected: Vec<(String, String)> = expected_routes().into_iter().map(|(m, p)| (m.to_owned(), p.to_owned())).collect();
    assert_eq!(declared, expected);

    // Without the shared fallbacks, an unrouted request gets axum's bare 404 or 405; every
    // handler answers something else (problem+json here, as no request is authorised).
    for path in declared.iter().map(|(_, p)| p).collect::<BTreeSet<_>>() {
        let concrete = concrete(path);
        for method in METHODS {
            let response = app.clone().oneshot(Request::builder().method(method).uri(&concrete).body(Body::empty()).unwrap()).await.unwrap();
            let served = response.status() != StatusCode::METHOD_NOT_ALLOWED && (response.status() != StatusCode::NOT_FOUND || is_problem(&response));
            let is_declared = declared.contains(&(method.to_owned(), path.clone()));
            assert_eq!(served, is_declared, "{method} {concrete} answered {}", response.status());
        }
    }

    let response = app.clone().oneshot(Request::builder().uri("/openapi.json").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(served, serde_json::to_value(&doc).unwrap(), "GET /openapi.json serves the declared document");
}

#[tokio::test]
async fn the_plain_router_serves_the_same_routes_without_health_and_document() {
    let f = fixture().await;
    let router = documents::router(f.api.clone());
    for (method, path) in expected_routes().into_iter().filter(|(_, p)| p.starts_with("/v1/")) {
        let response = router.clone().oneshot(Request::builder().method(method).uri(concrete(path)).body(Body::empty()).unwrap()).await.unwrap();
        assert!(is_problem(&response), "{method} {path} answered {} without a problem", response.status());
    }
    let response = router.oneshot(Request::builder().uri("/openapi.json").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// A path template with sample values in place of its parameters.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "01J00000000000000000000000")
        .replace("{share_id}", "01J00000000000000000000001")
        .replace("{document_id}", "01J00000000000000000000002")
        .replace("{token}", "no-such-token")
        .replace("{agency_id}", "mvd")
}

fn is_problem(response: &axum::response::Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v == PROBLEM_CONTENT_TYPE)
}

/// `cargo test -p documents --test contract -- --ignored --nocapture` prints the document.
#[tokio::test]
#[ignore = "prints the document for reading"]
async fn print_the_document() {
    let f = fixture().await;
    println!("{}", serde_json::to_string_pretty(&document(f.api.clone())).unwrap());
}

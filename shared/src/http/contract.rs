//! The HTTP contract declared once (SPEC §12): every function declares its routes with
//! utoipa-axum's `OpenApiRouter` and `routes!`, its types derive their schemas, and the router,
//! the route list the template check reads and `GET /openapi.json` all come from that one
//! declaration, so none of them can drift from the others.
//!
//! Errors are documented per operation with [`problems!`](crate::problems): each status with
//! the `code` values it may carry, as a problem+json schema whose `code` is that enum.

use std::collections::BTreeMap;

use axum::Router;
use axum::routing::get;
use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::{OpenApi, RefOr, Response, ResponseBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};

pub use utoipa;
pub use utoipa_axum;
pub use utoipa_axum::router::OpenApiRouter;
pub use utoipa_axum::routes;

use crate::domain::FieldError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Problem details (RFC 9457), the body of every error answer (SPEC §2). Schema only: answers
/// are built by `ApiError`.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// `/problems/{code}`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// Citizen-facing explanation in Russian; never echoes submitted values.
    pub detail: String,
    /// Stable snake_case error code (the operation lists the ones it may answer).
    pub code: String,
    /// One entry per broken rule of an input field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// The problem+json response of `status` that may carry `codes`.
pub fn problem_response(codes: &[&str]) -> Response {
    let code_enum =
        ObjectBuilder::new().property("code", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes.iter().copied()))).required("code").build();
    let schema = AllOfBuilder::new().item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"))).item(code_enum).build();
    let description = codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    ResponseBuilder::new().description(description).content(PROBLEM_CONTENT_TYPE, ContentBuilder::new().schema(Some(Schema::AllOf(schema))).build()).build()
}

/// Builds the `IntoResponses` map of a `problems!` declaration.
pub fn problem_responses(entries: &[(u16, &[&str])]) -> BTreeMap<String, RefOr<Response>> {
    entries.iter().map(|(status, codes)| (status.to_string(), RefOr::T(problem_response(codes)))).collect()
}

/// Declares a type documenting the error answers of an operation, for `responses(...)` of
/// `#[utoipa::path]`:
/// `problems!(LoginErrors { 400 => ["validation_failed"], 401 => ["invalid_credentials"] });`
#[macro_export]
macro_rules! problems {
    ($(#[$meta:meta])* $vis:vis $name:ident { $($status:literal => [$($code:literal),+ $(,)?]),+ $(,)? }) => {
        $(#[$meta])*
        $vis struct $name;
        impl $crate::http::contract::utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, $crate::http::contract::utoipa::openapi::RefOr<$crate::http::contract::utoipa::openapi::Response>> {
                $crate::http::contract::problem_responses(&[$(($status, &[$($code),+])),+])
            }
        }
    };
}

/// `{"status":"ok"}` from `GET /health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
}

/// `GET /health` (SPEC §2): the process is up.
#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, description = "Up", body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// The document's title and version, and the problem schema every error refers to.
pub fn base_document(title: &str) -> OpenApi {
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(utoipa::openapi::InfoBuilder::new().title(title).version(env!("CARGO_PKG_VERSION")).description(Some("The API contract of ../shared/SPEC.md, generated from the code. Errors are application/problem+json (RFC 9457); each operation lists its codes.")).build())
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert("Problem".into(), ProblemDoc::schema());
    components.schemas.insert("FieldError".into(), FieldError::schema());
    components.add_security_scheme(
        "bearer",
        utoipa::openapi::security::SecurityScheme::Http(
            utoipa::openapi::security::HttpBuilder::new().scheme(utoipa::openapi::security::HttpAuthScheme::Bearer).bearer_format("JWT").build(),
        ),
    );
    doc
}

/// Splits a declared router into the axum router and its document, adding `GET /health` and
/// `GET /openapi.json` (SPEC §2) to both.
pub fn split(api: OpenApiRouter, title: &str) -> (Router, OpenApi) {
    let api = OpenApiRouter::with_openapi(base_document(title)).merge(api).routes(routes!(health));
    let (router, mut doc) = api.split_for_parts();
    add_openapi_path(&mut doc);
    let served = doc.clone();
    let router = router.route("/openapi.json", get(move || std::future::ready(axum::Json(served.clone()))));
    (router, doc)
}

fn add_openapi_path(doc: &mut OpenApi) {
    let operation = utoipa::openapi::path::OperationBuilder::new()
        .tag("ops")
        .operation_id(Some("openapi"))
        .summary(Some("This document (OpenAPI 3.1)"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("The OpenAPI 3.1 document")
                .content("application/json", ContentBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::Object).build())).build())
                .build(),
        )
        .build();
    doc.paths.add_path_operation("/openapi.json", vec![utoipa::openapi::HttpMethod::Get], operation);
}

/// The `(METHOD, path)` pairs a document declares, sorted: what the template's routes must reach.
pub fn routes_of(doc: &OpenApi) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
        ];
        out.extend(methods.into_iter().filter(|(_, present)| *present).map(|(method, _)| (method.to_owned(), path.clone())));
    }
    out.sort();
    out
}

/// The schema of a string newtype with a pattern and an example (identifiers that parse).
pub fn string_schema(description: &str, pattern: Option<&str>, example: &str, max_length: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(pattern)
        .max_length(Some(max_length))
        .examples([serde_json::Value::String(example.to_owned())])
        .into()
}

/// Implements `ToSchema` for a string newtype: `string_schema!(Snils, "СНИЛС …", Some("^…$"), "112-233-445 95", 14);`
#[macro_export]
macro_rules! string_schema {
    ($ty:ty, $description:expr, $pattern:expr, $example:expr, $max:expr) => {
        impl $crate::http::contract::utoipa::PartialSchema for $ty {
            fn schema() -> $crate::http::contract::utoipa::openapi::RefOr<$crate::http::contract::utoipa::openapi::Schema> {
                $crate::http::contract::string_schema($description, $pattern, $example, $max)
            }
        }
        impl $crate::http::contract::utoipa::ToSchema for $ty {}
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    problems!(ExampleErrors { 400 => ["validation_failed", "weak_password"], 401 => ["invalid_credentials"] });

    #[utoipa::path(post, path = "/v1/example", tag = "example", responses((status = 204, description = "Done"), ExampleErrors))]
    async fn example() -> axum::http::StatusCode {
        axum::http::StatusCode::NO_CONTENT
    }

    #[test]
    fn the_document_lists_routes_with_their_error_codes_and_health() {
        let (_, doc) = split(OpenApiRouter::new().routes(routes!(example)), "test");
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
        let bad = &json["paths"]["/v1/example"]["post"]["responses"]["400"];
        assert_eq!(
            bad["content"][PROBLEM_CONTENT_TYPE]["schema"]["allOf"][1]["properties"]["code"]["enum"],
            serde_json::json!(["validation_failed", "weak_password"])
        );
        assert_eq!(routes_of(&doc), [("GET".to_owned(), "/health".to_owned()), ("GET".into(), "/openapi.json".into()), ("POST".into(), "/v1/example".into())]);
        assert!(json["components"]["schemas"]["Problem"].is_object());
    }
}

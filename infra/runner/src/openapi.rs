//! `GET /openapi.json`: the OpenAPI 3.1 document of every route the runner serves, assembled
//! from each function's route table so a new route cannot be served undocumented.

use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::{InfoBuilder, OpenApiBuilder, Paths, ResponseBuilder};

/// Routes served by the runner itself.
const LOCAL_ROUTES: &[(&str, &str)] = &[("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/dev/outbox")];

pub fn document() -> serde_json::Value {
    let mut paths = Paths::new();
    let tables: [(&str, &[(&str, &str)]); 5] = [("auth", auth::ROUTES), ("notifications", notifications::ROUTES), ("documents", documents::ROUTES), ("applications", applications::ROUTES), ("local", LOCAL_ROUTES)];
    for (tag, routes) in tables {
        for (method_name, path) in routes {
            let Some(method) = http_method(method_name) else { continue };
            let operation = OperationBuilder::new()
                .tag(tag)
                .operation_id(Some(format!("{}_{}", method_name.to_lowercase(), path.trim_start_matches('/').replace(['/', '.', '-', '{', '}'], "_"))))
                .response("default", ResponseBuilder::new().description("See SPEC.md; errors are application/problem+json (RFC 9457)").build())
                .build();
            paths.add_path_operation(*path, vec![method], operation);
        }
    }
    let doc = OpenApiBuilder::new()
        .info(InfoBuilder::new().title("Citizen services portal API (Gosuslugi/ESIA model)").version(env!("CARGO_PKG_VERSION")).build())
        .paths(paths)
        .build();
    serde_json::to_value(doc).unwrap_or_default()
}

fn http_method(method: &str) -> Option<HttpMethod> {
    Some(match method {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_openapi_3_1_and_lists_every_auth_route() {
        let doc = super::document();
        assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3.1"));
        for (method, path) in auth::ROUTES {
            assert!(doc["paths"][path][method.to_lowercase()].is_object(), "{method} {path} missing");
        }
    }

    #[test]
    fn document_lists_every_notifications_route() {
        let doc = super::document();
        for (method, path) in notifications::ROUTES {
            assert!(doc["paths"][path][method.to_lowercase()].is_object(), "{method} {path} missing");
        }
    }

    #[test]
    fn document_lists_every_documents_route() {
        let doc = super::document();
        for (method, path) in documents::ROUTES {
            assert!(doc["paths"][path][method.to_lowercase()].is_object(), "{method} {path} missing");
        }
    }

    #[test]
    fn document_lists_every_applications_route() {
        let doc = super::document();
        for (method, path) in applications::ROUTES {
            assert!(doc["paths"][path][method.to_lowercase()].is_object(), "{method} {path} missing");
        }
    }
}

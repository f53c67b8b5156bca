//! The HTTP kit every function uses: problem+json errors, request ids, a JSON extractor whose
//! rejections are problem+json, client IPs, rate limiting, `Cache-Control: no-store` and
//! bearer-token verification.

pub mod auth;
pub mod cache;
pub mod client;
pub mod contract;
pub mod extract;
pub mod json;
pub mod problem;
pub mod rate_limit;
pub mod request_id;

pub use auth::{AccessClaims, AgencyClient, Authenticated, ClientClaims, TokenVerifier};
pub use client::{ClientIp, UserAgent};
pub use extract::{ApiPath, ApiQuery};
pub use json::ApiJson;
pub use problem::ApiError;
pub use rate_limit::{Limit, RateLimiter, WriteBudget};

use axum::Router;

/// Where the portal may send citizens' data or redirect them: `https`, or plain `http` only to a
/// loopback address (local mode; RFC 8252 §7.3 for native-app redirects). Delivery URLs (SPEC
/// §4.5) and client redirect URIs (SPEC §8) follow this one rule.
pub fn is_https_or_loopback(url: &url::Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => loopback,
        _ => false,
    }
}

/// Declares a function's router state: a cheap-to-clone newtype over `Arc<State>` that derefs
/// to the state and hands `Authenticated` the state's `verifier: Arc<TokenVerifier>`.
///
/// ```ignore
/// shared::router_state!(AppState(AuthState));
/// ```
#[macro_export]
macro_rules! router_state {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(pub std::sync::Arc<$inner>);

        impl std::ops::Deref for $name {
            type Target = $inner;
            fn deref(&self) -> &$inner {
                &self.0
            }
        }

        impl axum::extract::FromRef<$name> for std::sync::Arc<$crate::http::TokenVerifier> {
            fn from_ref(state: &$name) -> Self {
                state.verifier.clone()
            }
        }
    };
}

/// A function's declared API, ready to serve: its routes plus `GET /health` and
/// `GET /openapi.json` (SPEC §2) under the layers of [`finish`].
pub fn finish_api(api: contract::OpenApiRouter, title: &str) -> Router {
    finish(contract::split(api, title).0)
}

/// Wraps a function's routes with the layers every API answer needs: request ids (echoed or
/// generated), request tracing without bodies, problem+json for unknown routes, and
/// `Cache-Control: no-store` on everything that may carry personal data.
pub fn finish(router: Router) -> Router {
    let router = router.fallback(problem::not_found_fallback).method_not_allowed_fallback(problem::method_not_allowed_fallback);
    request_id::layer(router.layer(axum::middleware::from_fn(cache::no_store)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use axum::routing::get;
    use tower::ServiceExt;

    async fn cache_control(app: &Router, path: &str) -> Option<String> {
        let response = app.clone().oneshot(Request::builder().uri(path).body(Body::empty()).unwrap()).await.unwrap();
        response.headers().get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn personal_answers_are_no_store_and_public_documents_keep_their_own_policy() {
        let app = finish(
            Router::new()
                .route("/v1/me", get(|| async { axum::Json(serde_json::json!({"user_id": "01J", "phone": "+79990000000"})) }))
                .route("/v1/me/fails", get(|| async { ApiError::unauthorized() }))
                .route("/oauth2/token", get(|| async { "token" }))
                .route("/dev/outbox", get(|| async { "codes" }))
                .route("/.well-known/jwks.json", get(|| async { ([(header::CACHE_CONTROL, "public, max-age=300")], "keys") }))
                .route("/health", get(|| async { "ok" })),
        );
        for path in ["/v1/me", "/v1/me/fails", "/oauth2/token", "/dev/outbox", "/v1/nowhere"] {
            assert_eq!(cache_control(&app, path).await.as_deref(), Some("no-store"), "{path}");
        }
        assert_eq!(cache_control(&app, "/.well-known/jwks.json").await.as_deref(), Some("public, max-age=300"));
        assert_eq!(cache_control(&app, "/health").await, None);
    }
}

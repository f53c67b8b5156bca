//! `Cache-Control: no-store` on every answer that may carry personal data (SPEC §2), so no
//! browser, proxy or CDN keeps a copy of a citizen's applications, codes or tokens.
//!
//! Default-deny: every answer gets it unless its handler chose its own `Cache-Control` (the
//! JWKS is public and cacheable) or its path is one of the few public documents below.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Paths whose answers hold nothing personal; everything else (`/v1/`, `/oauth2/`, `/dev/`,
/// object downloads, unknown routes) is `no-store`.
const PUBLIC_PATHS: &[&str] = &["/health", "/openapi.json"];
const PUBLIC_PREFIXES: &[&str] = &["/.well-known/"];

pub async fn no_store(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let public = PUBLIC_PATHS.contains(&path) || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p));
    let mut response = next.run(request).await;
    if !public && !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

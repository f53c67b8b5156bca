//! The HTTP kit every function uses: problem+json errors, request ids, a JSON extractor whose
//! rejections are problem+json, client IPs, rate limiting and bearer-token verification.

pub mod auth;
pub mod client;
pub mod extract;
pub mod json;
pub mod problem;
pub mod rate_limit;
pub mod request_id;

pub use auth::{AccessClaims, Authenticated, TokenVerifier};
pub use client::{ClientIp, UserAgent};
pub use extract::{ApiPath, ApiQuery};
pub use json::ApiJson;
pub use problem::ApiError;
pub use rate_limit::RateLimiter;

use axum::Router;

/// Wraps a function's routes with the layers every API answer needs: request ids (echoed or
/// generated), request tracing without bodies, and problem+json for unknown routes.
pub fn finish(router: Router) -> Router {
    request_id::layer(router.fallback(problem::not_found_fallback).method_not_allowed_fallback(problem::method_not_allowed_fallback))
}

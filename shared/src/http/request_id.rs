//! `x-request-id` on every answer: echoed when the caller sent a sane one, else a new ULID.
//! The id is also recorded on the request's tracing span so logs correlate.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone, Copy, Default)]
struct MakeUlid;

impl MakeRequestId for MakeUlid {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&ulid::Ulid::new().to_string()).ok().map(RequestId::new)
    }
}

pub fn layer(router: Router) -> Router {
    // Outermost last: sanitise, then set, then trace, then propagate onto the response.
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<axum::body::Body>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            // The route template only: concrete paths carry share tokens and ids, query
            // strings personal data (e.g. `?to=` on the dev outbox).
            let route = req.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str()).unwrap_or("unmatched");
            tracing::info_span!("request", method = %req.method(), route = %route, request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeUlid))
        .layer(axum::middleware::from_fn(drop_unsafe_request_id))
}

/// Replaces caller-supplied ids that are too long or not printable ASCII, so logs stay clean.
async fn drop_unsafe_request_id(mut req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let unsafe_id = req.headers().get(REQUEST_ID).map(|v| v.len() > 128 || !v.as_bytes().iter().all(|b| b.is_ascii_graphic())).unwrap_or(false);
    if unsafe_id && let Ok(v) = HeaderValue::from_str(&ulid::Ulid::new().to_string()) {
        req.headers_mut().insert(REQUEST_ID, v);
    }
    next.run(req).await
}

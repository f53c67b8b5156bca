//! HTTP handlers: the citizen's notification settings and inbox (SPEC §6).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use shared::http::{ApiError, ApiJson, ApiPath, ApiQuery, Authenticated};

use crate::ApiState;
use crate::inbox::{self, Page};
use crate::preferences::{self, Preferences};

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

shared::problems!(Unauthenticated { 401 => ["unauthorized", "invalid_token", "session_expired"] });
shared::problems!(UpdateErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 409 => ["concurrent_update"], 413 => ["payload_too_large"], 415 => ["unsupported_media_type"], 422 => ["validation_failed"] });
shared::problems!(ListErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"] });
shared::problems!(MarkReadErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"] });

/// `GET /v1/me/notification-settings`: every category with every channel.
#[utoipa::path(get, path = "/v1/me/notification-settings", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, description = "Every category with every channel", body = Preferences), Unauthenticated))]
pub async fn settings(State(state): State<ApiState>, auth: Authenticated) -> Result<ApiJson<Preferences>, ApiError> {
    Ok(ApiJson(preferences::load(state.kv.as_ref(), auth.user_id()).await?))
}

/// `PUT /v1/me/notification-settings`: the GET shape, whole or in part (unnamed settings keep
/// their values); 200 with the resulting settings. Unknown names → 400; switching a security
/// channel off → 422 and nothing changes.
#[utoipa::path(put, path = "/v1/me/notification-settings", tag = "notifications", security(("bearer" = [])),
    request_body(content = Preferences, description = "The GET shape, whole or in part"),
    responses((status = 200, description = "The resulting settings", body = Preferences), UpdateErrors))]
pub async fn update_settings(State(state): State<ApiState>, auth: Authenticated, ApiJson(body): ApiJson<Value>) -> Result<ApiJson<Preferences>, ApiError> {
    Ok(ApiJson(preferences::update(state.kv.as_ref(), auth.user_id(), &body, state.ticker.now()).await?))
}

/// `DELETE /v1/me/notification-settings`: back to the defaults; 200 with them, so a client
/// needs no second request to show what now applies.
#[utoipa::path(delete, path = "/v1/me/notification-settings", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, description = "The defaults, now in force", body = Preferences), Unauthenticated))]
pub async fn reset_settings(State(state): State<ApiState>, auth: Authenticated) -> Result<ApiJson<Preferences>, ApiError> {
    Ok(ApiJson(preferences::reset(state.kv.as_ref(), auth.user_id()).await?))
}

/// Raw query parameters, parsed by hand so bad values get problem+json like everything else.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `true`: only unread entries.
    #[param(value_type = Option<bool>)]
    unread: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 64)]
    cursor: Option<String>,
    /// 1–100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// `GET /v1/me/notifications?unread=&cursor=&limit=`: newest first.
#[utoipa::path(get, path = "/v1/me/notifications", tag = "notifications", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "The inbox, newest first", body = Page), ListErrors))]
pub async fn list(State(state): State<ApiState>, auth: Authenticated, ApiQuery(params): ApiQuery<ListParams>) -> Result<ApiJson<Page>, ApiError> {
    let unread = match params.unread.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::field("unread", "invalid", "Ожидается true или false")),
    };
    let limit = match params.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(limit) if (1..=MAX_PAGE).contains(&limit) => limit,
            _ => return Err(ApiError::field("limit", "invalid", "Ожидается число от 1 до 100")),
        },
    };
    let cursor = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) if inbox::is_valid_id(cursor) => Some(cursor),
        Some(_) => return Err(ApiError::field("cursor", "invalid", "Некорректный курсор")),
    };
    Ok(ApiJson(inbox::list(state.kv.as_ref(), auth.user_id(), unread, cursor, limit).await?))
}

/// `POST /v1/me/notifications/{id}/read` → 204; an id the citizen does not have → 404.
#[utoipa::path(post, path = "/v1/me/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path, description = "Inbox entry id", max_length = 64)),
    responses((status = 204, description = "Marked read"), MarkReadErrors))]
pub async fn mark_read(State(state): State<ApiState>, auth: Authenticated, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    if inbox::mark_read(state.kv.as_ref(), auth.user_id(), &id, state.ticker.now()).await? { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::not_found()) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, header};
    use shared::http::{AccessClaims, TokenVerifier};
    use shared::keys::KeyRing;
    use tower::ServiceExt;

    const ISSUER: &str = "http://127.0.0.1:3000";
    const AUDIENCE: &str = "gosuslugi-api";

    #[tokio::test]
    async fn the_citizens_settings_and_inbox_are_not_stored_by_caches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = shared::adapters::embedded::open_database(&dir.path().join("data.redb")).expect("open redb");
        let kv: Arc<dyn shared::ports::KeyValue> = Arc::new(shared::adapters::embedded::RedbKv::new(db).expect("kv"));
        let keys = KeyRing::from_json(&KeyRing::generate_json().expect("keys")).expect("ring");
        let verifier = Arc::new(TokenVerifier::new(ISSUER, AUDIENCE, &keys));
        let app = shared::http::finish(crate::router(Arc::new(crate::NotificationsState::new(kv, verifier))));
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: ISSUER.into(),
            sub: "01JCITIZEN0000000000000000".into(),
            aud: AUDIENCE.into(),
            exp: now + 900,
            iat: now,
            jti: ulid::Ulid::new().to_string(),
            sid: ulid::Ulid::new().to_string(),
            lvl: "simplified".into(),
            amr: vec!["pwd".into()],
        };
        let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        jwt_header.kid = Some(keys.current().kid.clone());
        let token = jsonwebtoken::encode(&jwt_header, &claims, &keys.current().encoding).expect("sign");
        for (path, status) in [("/v1/me/notification-settings", 200), ("/v1/me/notifications", 200)] {
            let request = Request::builder().uri(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).expect("request");
            let response = app.clone().oneshot(request).await.expect("answer");
            assert_eq!(response.status().as_u16(), status, "{path}");
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store", "{path}");
        }
        let anonymous = app.oneshot(Request::builder().uri("/v1/me/notifications").body(Body::empty()).expect("request")).await.expect("answer");
        assert_eq!(anonymous.status().as_u16(), 401);
        assert_eq!(anonymous.headers()[header::CACHE_CONTROL], "no-store");
    }
}

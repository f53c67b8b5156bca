//! Every answer of the token endpoint, mapped once (RFC 6749 §5.1, §5.2): JSON, never
//! problem+json, with `Cache-Control: no-store` and `Pragma: no-cache`; `WWW-Authenticate: Basic`
//! on a 401 to a client that tried HTTP Basic; `Retry-After` on 429.
//!
//! Also the document side: [`oauth_errors!`](crate::oauth_errors) declares, per status, the
//! `error` values an operation may answer, as problems! does for problem+json.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, ResponseBuilder, Schema};

use crate::domain::TokenError;

/// A successful token answer (RFC 6749 §5.1).
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT (EdDSA) the resource servers verify against `/.well-known/jwks.json`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(pattern = "^Bearer$")]
    pub token_type: String,
    /// Seconds until the access token expires (600).
    pub expires_in: i64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// An error answer (RFC 6749 §5.2). Schema only; answers are built by [`OAuthError`].
#[derive(Serialize, ToSchema)]
#[schema(as = OAuthError)]
pub struct OAuthErrorDoc {
    /// RFC 6749 error code (the operation lists the ones it may answer).
    pub error: String,
    /// Human-readable ASCII text for the client's developer; never echoes submitted values.
    pub error_description: String,
}

/// What leaves the token endpoint when it does not issue a token.
#[derive(Debug)]
pub enum OAuthError {
    Token(TokenError),
    /// Too many failed client authentications for this client id.
    RateLimited {
        retry_after_seconds: u64,
    },
    /// The store or the signing failed (logged; `server_error` / `temporarily_unavailable`).
    Server {
        unavailable: bool,
    },
}

impl From<TokenError> for OAuthError {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

/// The shared kit's errors (store, signing) at the edge of the token endpoint.
impl From<shared::http::ApiError> for OAuthError {
    fn from(e: shared::http::ApiError) -> Self {
        match (e.status, e.retry_after_seconds) {
            (StatusCode::TOO_MANY_REQUESTS, Some(seconds)) => Self::RateLimited { retry_after_seconds: seconds },
            (StatusCode::SERVICE_UNAVAILABLE, _) => Self::Server { unavailable: true },
            _ => Self::Server { unavailable: false },
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            Self::Token(e @ TokenError::InvalidClient { .. }) => (StatusCode::UNAUTHORIZED, e.code(), e.description()),
            Self::Token(e) => (StatusCode::BAD_REQUEST, e.code(), e.description()),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many failed client authentications, retry later"),
            Self::Server { unavailable: true } => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "the service is temporarily unavailable"),
            Self::Server { unavailable: false } => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error, retry later"),
        };
        let mut response = json(status, &OAuthErrorDoc { error: error.to_owned(), error_description: description.to_owned() });
        let headers = response.headers_mut();
        match self {
            Self::Token(TokenError::InvalidClient { basic: true, .. }) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"oauth2\", charset=\"UTF-8\""));
            }
            Self::RateLimited { retry_after_seconds } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds.max(1)));
            }
            _ => {}
        }
        response
    }
}

/// A JSON answer with the headers RFC 6749 §5.1 requires of every token endpoint answer.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The JSON error response of a status that may carry `errors`.
pub fn error_responses(entries: &[(u16, &[&str])]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    entries
        .iter()
        .map(|(status, errors)| {
            let error_enum = ObjectBuilder::new()
                .property("error", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(errors.iter().copied())))
                .required("error")
                .build();
            let schema = AllOfBuilder::new().item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("OAuthError"))).item(error_enum).build();
            let description = errors.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", ContentBuilder::new().schema(Some(Schema::AllOf(schema))).build())
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// Declares the RFC 6749 error answers of an operation for `responses(...)`:
/// `oauth_errors!(TokenErrors { 400 => ["invalid_request"], 401 => ["invalid_client"] });`
#[macro_export]
macro_rules! oauth_errors {
    ($vis:vis $name:ident { $($status:literal => [$($code:literal),+ $(,)?]),+ $(,)? }) => {
        $vis struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
                $crate::answer::error_responses(&[$(($status, &[$($code),+])),+])
            }
        }
    };
}

//! RFC 9457 problem details. Every error leaves the API through `ApiError`, mapped once here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::FieldError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable snake_case code from SPEC; frontends branch on it.
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_seconds: Option<u64>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), errors: Vec::new(), retry_after_seconds: None }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", "Запрос содержит ошибки").with_errors(errors)
    }

    pub fn field(field: &str, code: &str, message: &str) -> Self {
        Self::validation(vec![FieldError { field: field.to_owned(), code: code.to_owned(), message: message.to_owned() }])
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Требуется вход в систему")
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Ресурс не найден")
    }

    pub fn rate_limited(retry_after_seconds: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Слишком много запросов, повторите позже");
        e.retry_after_seconds = Some(retry_after_seconds.max(1));
        e
    }

    /// A write kept losing races with other writes (`persist::Contended`); the client may retry.
    pub fn concurrent_update() -> Self {
        Self::new(StatusCode::CONFLICT, "concurrent_update", "Запрос конфликтует с другим изменением, повторите попытку")
    }

    /// An unexpected failure: the cause is logged, the client sees a generic 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Внутренняя ошибка, повторите попытку позже")
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "dependency unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "Сервис временно недоступен")
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            type_uri: format!("/problems/{}", self.code),
            title: self.title(),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            errors: &self.errors,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<crate::ports::KvError> for ApiError {
    fn from(e: crate::ports::KvError) -> Self {
        match e {
            crate::ports::KvError::Backend(_) => Self::unavailable(e),
            _ => Self::internal(e),
        }
    }
}

/// Every round of an optimistic write lost its race (`persist::retry`): 409, try again.
impl From<crate::persist::Contended> for ApiError {
    fn from(_: crate::persist::Contended) -> Self {
        Self::concurrent_update()
    }
}

pub async fn not_found_fallback() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Метод не поддерживается")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn problem_has_rfc9457_shape_and_retry_after() {
        let response = ApiError::rate_limited(42).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        let bytes = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "rate_limited");
        assert_eq!(body["status"], 429);
        assert_eq!(body["type"], "/problems/rate_limited");
        assert!(body.get("errors").is_none());
    }

    #[tokio::test]
    async fn validation_problem_lists_fields() {
        let response = ApiError::field("phone", "invalid_phone", "Неверный номер").into_response();
        let bytes = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["errors"][0]["field"], "phone");
    }
}

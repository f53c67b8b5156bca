//! `ApiJson<T>`: axum's `Json` with rejections turned into problem+json, so malformed input
//! gets the same error shape as every other failure. A body of the wrong shape is reported by
//! the path of the field (`/document_ids/0`) and what is wrong with it, never by its value:
//! serde's own messages quote the values and keys they refuse.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::domain::FieldError;

pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(map_rejection(rejection)),
        }
    }
}

impl<T: DeserializeOwned> ApiJson<T> {
    /// Parses bytes already read (e.g. the raw body of a signed request) with the extractor's
    /// error shape.
    pub fn from_bytes(bytes: &[u8]) -> Result<T, ApiError> {
        axum::Json::<T>::from_bytes(bytes).map(|axum::Json(value)| value).map_err(map_rejection)
    }
}

fn map_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Ожидается Content-Type: application/json")
        }
        JsonRejection::JsonDataError(e) => ApiError::validation(vec![shape_error(&e.body_text())]),
        JsonRejection::JsonSyntaxError(_) => ApiError::validation(vec![FieldError {
            field: "body".into(),
            code: "malformed_json".into(),
            message: "Тело запроса не является корректным JSON".into(),
        }]),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Тело запроса слишком велико")
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", other.body_text()),
    }
}

/// Where the body is missing a field, has one too many or one of the wrong type, from axum's
/// text `…target type: [<path>: ]<serde message>`. Only the path and serde's category are
/// kept: the message quotes values and unknown keys, and the path is kept only when it is
/// made of field names and indexes (a map key from the request could be anything).
fn shape_error(text: &str) -> FieldError {
    const PREFIX: &str = "Failed to deserialize the JSON body into the target type: ";
    let rest = text.strip_prefix(PREFIX).unwrap_or(text);
    // The serde message starts right after the first ": " that is followed by one.
    let split = (!is_serde_message(rest)).then(|| rest.match_indices(": ").map(|(i, _)| i).find(|&i| is_serde_message(&rest[i + 2..]))).flatten();
    let (raw_path, inner) = match split {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => ("", rest),
    };
    // An unknown key is the last segment of its path; report where it sits, not the key.
    let raw_path = if inner.starts_with("unknown field") { raw_path.rsplit_once('.').map_or("", |(parent, _)| parent) } else { raw_path };
    let path = if is_field_path(raw_path) { pointer(raw_path) } else { String::new() };
    let at = |path: &str| if path.is_empty() { "body".to_owned() } else { path.to_owned() };
    if let Some(name) = inner.strip_prefix("missing field `").and_then(|r| r.split_once('`')).map(|(name, _)| name).filter(|n| is_field_path(n)) {
        return FieldError::new(format!("{path}/{name}"), "required", "Обязательное поле не заполнено");
    }
    if inner.starts_with("unknown field") {
        return FieldError::new(at(&path), "unexpected_field", "Тело запроса содержит неизвестное поле");
    }
    if inner.starts_with("invalid type") {
        return FieldError::new(at(&path), "invalid_type", "Неверный тип значения");
    }
    FieldError::new(at(&path), "invalid", "Недопустимое значение")
}

fn is_serde_message(text: &str) -> bool {
    ["missing field", "unknown field", "invalid type", "invalid value", "invalid length", "unknown variant", "duplicate field"]
        .iter()
        .any(|p| text.starts_with(p))
}

fn is_field_path(path: &str) -> bool {
    !path.is_empty() && path.len() <= 200 && path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']'))
}

/// `document_ids[0]` / `employee.name` as a JSON pointer: `/document_ids/0`, `/employee/name`.
fn pointer(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for segment in path.split(['.', '[']) {
        let segment = segment.trim_end_matches(']');
        if !segment.is_empty() {
            out.push('/');
            out.push_str(segment);
        }
    }
    out
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        text: String,
        #[serde(default)]
        ids: Vec<u32>,
        #[serde(default)]
        employee: Option<Employee>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Employee {
        name: String,
    }

    fn refusal(body: &str) -> (String, String, String) {
        let error = ApiJson::<Body>::from_bytes(body.as_bytes()).expect_err("refused");
        assert_eq!((error.status, error.code), (StatusCode::BAD_REQUEST, "validation_failed"));
        let field = error.errors.into_iter().next().expect("one field error");
        (field.field, field.code, field.message)
    }

    #[test]
    fn shape_errors_name_the_path_and_never_the_value() {
        let (field, code, message) = refusal(r#"{"text": "секрет", "ids": [1, "секрет2"]}"#);
        assert_eq!((field.as_str(), code.as_str()), ("/ids/1", "invalid_type"));
        assert!(!message.contains("секрет"));
        assert_eq!(refusal(r#"{"text": 12345678}"#).0, "/text");
        assert!(!refusal(r#"{"text": 12345678}"#).2.contains("12345678"));
        let codes = |body: &str| {
            let (field, code, _) = refusal(body);
            (field, code)
        };
        assert_eq!(codes(r#"{"text": "x", "employee": {}}"#), ("/employee/name".into(), "required".into()));
        let (field, code, message) = refusal(r#"{"text": "x", "секретный_ключ": 1}"#);
        assert_eq!((field.as_str(), code.as_str()), ("body", "unexpected_field"));
        assert!(!message.contains("секретный"));
        assert_eq!(codes("[]"), ("body".into(), "invalid".into()));
        assert_eq!(codes("{}"), ("/text".into(), "required".into()));
        assert_eq!(codes("{"), ("body".into(), "malformed_json".into()));
        assert_eq!(ApiJson::<Body>::from_bytes(br#"{"text": "ok"}"#).expect("parses").text, "ok");
    }
}

//! `ApiJson<T>`: axum's `Json` with rejections turned into problem+json, so malformed input
//! gets the same error shape as every other failure.

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

fn map_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Ожидается Content-Type: application/json",
        ),
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field and the expectation but never echoes values.
            ApiError::validation(vec![FieldError { field: "body".into(), code: "invalid".into(), message: e.body_text() }])
        }
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

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

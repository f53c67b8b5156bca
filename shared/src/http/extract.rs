//! `ApiPath<T>` and `ApiQuery<T>`: axum's `Path` and `Query` with rejections turned into
//! problem+json, so a malformed id or query string gets the same error shape as everything else.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::domain::FieldError;

pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            // An undecodable path segment names nothing that exists.
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::not_found()),
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            // serde's message quotes the refused value; the query string is personal data often.
            Err(_) => Err(ApiError::validation(vec![FieldError::new("query", "invalid", "Неверные параметры запроса")])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct Paging {
        #[allow(dead_code)]
        limit: Option<usize>,
    }

    async fn call(uri: &str) -> (StatusCode, String) {
        let app = Router::new()
            .route("/items/{id}", get(|ApiPath(id): ApiPath<String>| async move { id }))
            .route("/items", get(|ApiQuery(_p): ApiQuery<Paging>| async { "ok" }));
        let response = app.oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
        (status, content_type)
    }

    #[tokio::test]
    async fn malformed_path_and_query_answer_problem_json() {
        assert_eq!(call("/items/%FF").await, (StatusCode::NOT_FOUND, super::super::problem::PROBLEM_CONTENT_TYPE.to_owned()));
        assert_eq!(call("/items?limit=abc").await, (StatusCode::BAD_REQUEST, super::super::problem::PROBLEM_CONTENT_TYPE.to_owned()));
        assert_eq!(call("/items?limit=5").await.0, StatusCode::OK);
    }
}

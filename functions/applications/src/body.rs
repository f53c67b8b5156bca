//! The application as its citizen sees it (SPEC §4.3), answered with its `ETag`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;

use shared::vocabulary::ApplicationStatus;

use crate::domain::{Actor, Application, Rejection};

/// An application answer with its `ETag`, so clients can send it back as `If-Match`.
pub fn application_response(status: StatusCode, app: &Application) -> Response {
    let mut response = (status, axum::Json(ApplicationBody::from(app))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", app.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// An application as its citizen sees it (SPEC §4.3).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Application)]
pub struct ApplicationBody {
    #[schema(max_length = 26, example = "01JD3Q0Z8X4ZK6V5W7Y9A1B2C3")]
    pub application_id: String,
    /// Human-readable unique number (`YYYY-NNNNNNN`), given on submission.
    #[schema(required = true, example = "2026-0000123")]
    pub number: Option<String>,
    /// The catalogue service applied for.
    pub service_code: String,
    /// The agency that handles the service.
    pub agency_id: String,
    pub status: ApplicationStatus,
    /// The status in Russian, as citizens see it («Черновик», «Отправлено»…).
    pub status_title: &'static str,
    /// The form; checked against the service's `form_schema` on submission.
    #[schema(value_type = Object)]
    pub form: Value,
    /// Attached documents (ids from the documents function).
    pub document_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Set on submission from the service's processing days; the agency may move it.
    #[schema(required = true)]
    pub expected_completion_date: Option<NaiveDate>,
    /// Why the agency refused, when `status` is `rejected`.
    #[schema(required = true)]
    pub rejection: Option<Rejection>,
    /// Documents the agency issued as the result.
    pub result_document_ids: Vec<String>,
    /// Every status the application has had, oldest first.
    pub history: Vec<HistoryBody>,
    /// Bumped by every write; send it back as `If-Match: "<version>"`.
    pub version: u64,
}

/// One step of an application's history.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ApplicationHistoryEntry)]
pub struct HistoryBody {
    pub status: ApplicationStatus,
    /// The status in Russian.
    pub status_title: &'static str,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// The actor's comment or reason, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl From<&Application> for ApplicationBody {
    /// The owner's id stays inside.
    fn from(app: &Application) -> Self {
        let history = app
            .history
            .iter()
            .map(|h| HistoryBody { status: h.status, status_title: h.status.title(), at: h.at, actor: h.actor.clone(), comment: h.comment.clone() })
            .collect();
        Self {
            application_id: app.application_id.clone(),
            number: app.number.clone(),
            service_code: app.service_code.clone(),
            agency_id: app.agency_id.clone(),
            status: app.status,
            status_title: app.status.title(),
            form: app.form.clone(),
            document_ids: app.document_ids.clone(),
            created_at: app.created_at,
            submitted_at: app.submitted_at,
            updated_at: app.updated_at,
            expected_completion_date: app.expected_completion_date,
            rejection: app.rejection.clone(),
            result_document_ids: app.result_document_ids.clone(),
            history,
            version: app.version,
        }
    }
}

//! Result documents uploaded by agencies (SPEC §4.4): `POST /v1/agency/{agency_id}/documents`
//! signed like the webhooks (Standard Webhooks v1). The document belongs to the application's
//! citizen, with type `result` and purpose `application`; only the agency the application was
//! sent to may upload for it (anything else is 404, as for a citizen). A redelivery with the
//! same `webhook-id` gets the first answer again and creates nothing.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use shared::agencies::{self, Decision, RawBody, StoredAnswer};
use shared::domain::FieldError;
use shared::domain::text;
use shared::http::{ApiError, ApiPath};
use shared::records;

use super::documents::{SlotView, check_file, prepare_slot, slot_view};
use crate::Api;
use crate::domain::NewDocument;
use crate::policy::{Purpose, RESULT_TYPE};
use crate::store::Source;

shared::problems!(CreateErrors {
    400 => ["validation_failed"],
    401 => ["signature_invalid", "timestamp_out_of_tolerance"],
    404 => ["not_found"],
    409 => ["concurrent_update"],
    413 => ["payload_too_large"],
    415 => ["unsupported_media_type"],
});

/// A result document for an application sent to the agency.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AgencyResultUpload)]
pub struct ResultUpload {
    #[schema(value_type = String, required = true, min_length = 1, max_length = 64)]
    application_id: Option<String>,
    /// One line, no `/` or `\`, no control or bidirectional characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255, example = "решение.pdf")]
    file_name: Option<String>,
    /// PDF, JPEG or PNG.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255, example = "application/pdf")]
    content_type: Option<String>,
    /// At most 10 MiB.
    #[schema(value_type = i64, required = true, minimum = 0, example = 482133)]
    size_bytes: Option<i64>,
}

/// `POST /v1/agency/{agency_id}/documents` → 201 `{"document_id", "status", "upload"}`.
#[utoipa::path(post, path = "/v1/agency/{agency_id}/documents", tag = "agencies", operation_id = "create_agency_result_document",
    params(
        ("agency_id" = String, Path, description = "The agency's id in the registry", max_length = 64),
        ("webhook-id" = String, Header, description = "Standard Webhooks message id; a redelivery with the same id gets the first answer again", min_length = 1, max_length = 128),
        ("webhook-timestamp" = i64, Header, description = "Standard Webhooks timestamp (Unix seconds, within 5 minutes of the portal's clock)"),
        ("webhook-signature" = String, Header, description = "Standard Webhooks signature(s), `v1,<base64>` separated by spaces"),
    ),
    request_body = ResultUpload,
    responses((status = 201, description = "The pending result document and where to PUT its bytes", body = SlotView), CreateErrors))]
pub async fn create(State(api): State<Api>, ApiPath(agency_id): ApiPath<String>, headers: HeaderMap, RawBody(body): RawBody) -> Response {
    let agency = match api.agencies.verify(&agency_id, &headers, &body) {
        Ok(agency) => agency,
        Err(error) => return error.into_response(),
    };
    let webhook_id = match agencies::webhook_id(&headers) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let agency_id = agency.id.as_str();
    agencies::apply_once(api.kv.as_ref(), &api.relay, agency_id, webhook_id, api.now(), || decide(&api, agency_id, &body)).await
}

async fn decide(api: &Api, agency_id: &str, body: &[u8]) -> Result<Decision, ApiError> {
    let request: ResultUpload =
        serde_json::from_slice(body).map_err(|_| ApiError::field("body", "malformed_json", "Тело запроса не является корректным JSON-объектом"))?;
    let mut problems = Vec::new();
    let application_id = request.application_id.unwrap_or_default();
    if application_id.is_empty() {
        problems.push(FieldError::new("application_id", "required", "Укажите заявление"));
    } else if application_id.chars().take(text::ID_MAX_CHARS + 1).count() > text::ID_MAX_CHARS || text::has_forbidden_characters(&application_id, false) {
        // Bounded here, before the store is asked; ids that merely do not exist answer 404 below.
        problems.push(FieldError::new(
            "application_id",
            "invalid",
            format!("Номер заявления: не длиннее {} символов, без управляющих символов", text::ID_MAX_CHARS),
        ));
    }
    let file = check_file(request.file_name.as_deref(), request.content_type.as_deref(), request.size_bytes, &mut problems);
    let (Some(file), true) = (file, problems.is_empty()) else {
        return Err(ApiError::validation(problems));
    };
    let application = records::load_application(api.kv.as_ref(), &application_id).await?;
    // Drafts were never sent to the agency, so for it they do not exist.
    let Some(application) = application.filter(|a| a.agency_id == agency_id && a.status != "draft") else {
        return Err(ApiError::not_found());
    };
    let new = NewDocument {
        owner_user_id: application.user_id.clone(),
        doc_type: RESULT_TYPE.to_owned(),
        purpose: Purpose::Application,
        file: file.accept(Purpose::Application)?,
        source: Source::Agency { agency_id: agency_id.to_owned(), application_id: application.application_id.clone() },
        enforce_quota: false,
    };
    let (doc, ops) = prepare_slot(api, &new, &api.ticker.id()).await?;
    let slot = slot_view(api, &doc).await?;
    let answer = serde_json::to_value(&slot).map_err(ApiError::internal)?;
    tracing::info!(agency_id, application_id = %application.application_id, document_id = %doc.document_id, "agency result document slot");
    Ok(Decision::Apply { ops, events: Vec::new(), answer: StoredAnswer::json(StatusCode::CREATED, &answer) })
}

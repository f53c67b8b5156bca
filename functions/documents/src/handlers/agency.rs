//! The agency's side of documents.
//!
//! Result documents uploaded by agencies (SPEC §4.4): `POST /v1/agency/{agency_id}/documents`
//! signed like the webhooks (Standard Webhooks v1). The document belongs to the application's
//! citizen, with type `result` and purpose `application`; only the agency the application was
//! sent to may upload for it (anything else is 404, as for a citizen). A redelivery with the
//! same `webhook-id` gets the first answer again and creates nothing.
//!
//! Downloads of an application's documents (SPEC §4.6) with the agency's access token:
//! `GET /v1/agency/{agency_id}/applications/{id}/documents/{document_id}` redirects to a
//! presigned GET of 60 s, only for a document attached to (or issued as the result of) that
//! application of that agency; anything else is 404.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use shared::agencies::{self, Decision, RawBody, StoredAnswer};
use shared::domain::FieldError;
use shared::domain::text;
use shared::http::{AgencyClient, ApiError, ApiPath};
use shared::records;

use super::documents::{SlotView, check_file, prepare_slot, slot_view};
use crate::Api;
use crate::domain::NewDocument;
use crate::policy::{Purpose, RESULT_TYPE};
use crate::store::{self, DocumentStatus, Source};

/// How long the presigned GET an agency is redirected to lives (SPEC §4.6).
pub const DOWNLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(60);

shared::problems!(CreateErrors {
    400 => ["validation_failed"],
    401 => ["signature_invalid", "timestamp_out_of_tolerance"],
    404 => ["not_found"],
    409 => ["concurrent_update"],
    413 => ["payload_too_large"],
    415 => ["unsupported_media_type"],
});

shared::problems!(DownloadErrors { 401 => ["unauthorized", "invalid_token"], 403 => ["forbidden"], 404 => ["not_found"] });

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
    let agency = match api.agencies.verify(&agency_id, &headers, &body, api.now()) {
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

/// `GET /v1/agency/{agency_id}/applications/{id}/documents/{document_id}` → 302 to a presigned
/// GET (60 s) of a document attached to that application of that agency (or issued as its
/// result) while it is available; anything else is 404.
#[utoipa::path(get, path = "/v1/agency/{agency_id}/applications/{id}/documents/{document_id}", tag = "agencies",
    operation_id = "download_agency_application_document", security(("bearer" = [])),
    params(
        ("agency_id" = String, Path, description = "The agency's id (the token's client)", max_length = 64),
        ("id" = String, Path, description = "Application id", max_length = 64),
        ("document_id" = String, Path, description = "A document of the application", max_length = 64),
    ),
    responses(
        (status = 302, description = "Redirect to a presigned download of the file (valid for 60 s)",
            headers(("Location" = String, description = "The presigned GET URL"))),
        DownloadErrors))]
pub async fn download(
    State(api): State<Api>,
    _: AgencyClient,
    ApiPath((agency_id, application_id, document_id)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    // Drafts were never sent to the agency, so for it they do not exist.
    let application = records::load_application(api.kv.as_ref(), &application_id)
        .await?
        .filter(|a| a.agency_id == agency_id && a.status != "draft" && a.names_document(&document_id))
        .ok_or_else(ApiError::not_found)?;
    let doc = store::load_document(api.kv.as_ref(), &application.user_id, &document_id)
        .await?
        .map(|read| read.value)
        .filter(|doc| doc.status == DocumentStatus::Available)
        .ok_or_else(ApiError::not_found)?;
    let response = super::redirect_to_download(&api, &doc, DOWNLOAD_TTL).await?;
    tracing::info!(agency_id, application_id = %application.application_id, document_id = %doc.document_id, "agency document download");
    Ok(response)
}

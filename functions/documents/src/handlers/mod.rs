//! HTTP handlers, one module per resource, and the document view they all answer with.

pub mod agency;
pub mod documents;
pub mod shares;

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use shared::http::ApiError;
use shared::ports::{ObjectStoreError, PresignedRequest};

use crate::DocumentsState;
use crate::policy::{self, FileFormat, Purpose};
use crate::store::{Document, DocumentStatus, RejectionReason};

/// A document as the API shows it (SPEC §5, plus purpose, rejection and deletion details).
#[derive(Serialize, ToSchema)]
#[schema(as = Document)]
pub struct DocumentView {
    document_id: String,
    /// `passport`, `snils`, `inn`, `driver_license`, `oms_policy`, `birth_certificate`,
    /// `marriage_certificate`, `power_of_attorney`, `photo`, `other`, `result` (from an agency),
    /// or a type the portal itself stores (`receipt`, `export`).
    #[serde(rename = "type")]
    #[schema(example = "passport")]
    doc_type: String,
    purpose: Purpose,
    file_name: String,
    /// The canonical media type of the declared format.
    content_type: String,
    size_bytes: u64,
    /// Hex SHA-256 of the stored bytes, once verified.
    #[schema(required = true, pattern = "^[0-9a-f]{64}$")]
    sha256: Option<String>,
    status: DocumentStatus,
    /// Version within the vault series of its type (1 outside the vault).
    version: u32,
    /// Why verification refused the file (status `rejected` only).
    #[schema(required = true)]
    rejection_reason: Option<RejectionReason>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[schema(required = true)]
    deleted_at: Option<DateTime<Utc>>,
    /// Until when `POST …/restore` brings a deleted document back.
    #[schema(required = true)]
    restorable_until: Option<DateTime<Utc>>,
    /// A short-lived download URL while the document is `available`, else `null`.
    #[schema(required = true)]
    download: Option<Download>,
}

/// A presigned GET of the file.
#[derive(Serialize, ToSchema)]
#[schema(as = DocumentDownload)]
pub struct Download {
    url: String,
    expires_at: DateTime<Utc>,
}

impl DocumentView {
    /// The view of `doc`, with a fresh download URL when it is available.
    pub async fn build(state: &DocumentsState, doc: &Document) -> Result<Self, ApiError> {
        let download = match doc.status {
            DocumentStatus::Available => {
                let presigned =
                    state.objects.presign_get(&doc.object_key, state.settings.download_url_ttl, Some(&download_name(doc))).await.map_err(object_error)?;
                Some(Download { url: presigned.url, expires_at: presigned.expires_at })
            }
            _ => None,
        };
        Ok(Self {
            document_id: doc.document_id.clone(),
            doc_type: doc.doc_type.clone(),
            purpose: doc.purpose,
            file_name: doc.file_name.clone(),
            content_type: doc.content_type.clone(),
            size_bytes: doc.size_bytes,
            sha256: doc.sha256.clone(),
            status: doc.status,
            version: doc.version,
            rejection_reason: doc.rejection_reason,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
            deleted_at: doc.deleted_at,
            restorable_until: doc.deleted_at.map(|at| at + state.settings.restore_window),
            download,
        })
    }
}

impl DocumentView {
    pub async fn build_all(state: &DocumentsState, docs: &[Document]) -> Result<Vec<Self>, ApiError> {
        let mut views = Vec::with_capacity(docs.len());
        for doc in docs {
            views.push(Self::build(state, doc).await?);
        }
        Ok(views)
    }
}

/// The file name a download is saved under: neutral, because presigned URLs end up in
/// browser histories, proxies and logs; the real name stays in the API's JSON.
pub fn download_name(doc: &Document) -> String {
    let extension = match FileFormat::from_content_type(&doc.content_type) {
        Some(FileFormat::Pdf) => "pdf",
        Some(FileFormat::Jpeg) => "jpg",
        Some(FileFormat::Png) => "png",
        Some(FileFormat::Docx) => "docx",
        Some(FileFormat::Xml) => "xml",
        None => "bin",
    };
    format!("document-{}.{extension}", doc.document_id)
}

/// The upload part of a slot (SPEC §5 `upload`): PUT the bytes to `url` with `headers`.
#[derive(Serialize, ToSchema)]
#[schema(as = PresignedUpload)]
pub struct UploadView {
    #[schema(example = "PUT")]
    method: String,
    url: String,
    headers: std::collections::BTreeMap<String, String>,
    expires_at: DateTime<Utc>,
}

impl From<PresignedRequest> for UploadView {
    fn from(p: PresignedRequest) -> Self {
        Self { method: p.method, url: p.url, headers: p.headers, expires_at: p.expires_at }
    }
}

/// Schema of every document type (SPEC §5), from [`policy::DOCUMENT_TYPES`].
pub struct DocumentType;

impl PartialSchema for DocumentType {
    fn schema() -> RefOr<Schema> {
        type_enum("A document type", policy::DOCUMENT_TYPES.iter().copied())
    }
}

impl ToSchema for DocumentType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DocumentType")
    }
}

/// Schema of the document types a citizen may upload (all but the agencies' `result`).
pub struct CitizenDocumentType;

impl PartialSchema for CitizenDocumentType {
    fn schema() -> RefOr<Schema> {
        type_enum("A document type a citizen may upload", policy::DOCUMENT_TYPES.iter().copied().filter(|t| policy::citizen_may_upload(t)))
    }
}

impl ToSchema for CitizenDocumentType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CitizenDocumentType")
    }
}

fn type_enum<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).enum_values(Some(values)).into()
}

/// 302 to a fresh presigned GET of `doc` that lives `ttl`, saved under its neutral name.
pub async fn redirect_to_download(state: &DocumentsState, doc: &Document, ttl: std::time::Duration) -> Result<Response, ApiError> {
    let download = state.objects.presign_get(&doc.object_key, ttl, Some(&download_name(doc))).await.map_err(object_error)?;
    let location = HeaderValue::from_str(&download.url).map_err(ApiError::internal)?;
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The download itself carries nosniff and an attachment disposition (the object store's
    // presigned GET); the redirect says nosniff too so nothing on this hop is sniffed.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(response)
}

pub fn object_error(error: ObjectStoreError) -> ApiError {
    ApiError::unavailable(error)
}

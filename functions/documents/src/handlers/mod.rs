//! HTTP handlers, one module per resource, and the document view they all answer with.

pub mod agency;
pub mod documents;
pub mod shares;

use chrono::{DateTime, Utc};
use serde::Serialize;

use shared::http::ApiError;
use shared::ports::{KvError, ObjectStoreError, PresignedRequest};

use crate::DocumentsState;
use crate::policy::FileFormat;
use crate::store::{self, Document, DocumentStatus};

/// How often a read-modify-write is retried on a version conflict before answering 409.
pub const MAX_RETRIES: usize = 5;

/// A document as the API shows it (SPEC §5, plus purpose, rejection and deletion details).
#[derive(Serialize)]
pub struct DocumentView {
    document_id: String,
    #[serde(rename = "type")]
    doc_type: String,
    purpose: &'static str,
    file_name: String,
    content_type: String,
    size_bytes: u64,
    sha256: Option<String>,
    status: &'static str,
    version: u32,
    rejection_reason: Option<&'static str>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    restorable_until: Option<DateTime<Utc>>,
    download: Option<Download>,
}

#[derive(Serialize)]
pub struct Download {
    url: String,
    expires_at: DateTime<Utc>,
}

impl DocumentView {
    /// The view of `doc`, with a fresh download URL when it is available.
    pub async fn build(state: &DocumentsState, doc: &Document) -> Result<Self, ApiError> {
        let download = match doc.status {
            DocumentStatus::Available => {
                let presigned = state.objects.presign_get(&doc.object_key, state.settings.download_url_ttl, Some(&download_name(doc))).await.map_err(object_error)?;
                Some(Download { url: presigned.url, expires_at: presigned.expires_at })
            }
            _ => None,
        };
        Ok(Self {
            document_id: doc.document_id.clone(),
            doc_type: doc.doc_type.clone(),
            purpose: doc.purpose.as_str(),
            file_name: doc.file_name.clone(),
            content_type: doc.content_type.clone(),
            size_bytes: doc.size_bytes,
            sha256: doc.sha256.clone(),
            status: store::status_str(doc.status),
            version: doc.version,
            rejection_reason: doc.rejection_reason.map(|r| r.as_str()),
            created_at: doc.created_at,
            updated_at: doc.updated_at,
            deleted_at: doc.deleted_at,
            restorable_until: doc.deleted_at.map(|at| at + state.settings.restore_window),
            download,
        })
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

/// The upload part of a slot (SPEC §5 `upload`).
#[derive(Serialize)]
pub struct UploadView {
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

pub fn object_error(error: ObjectStoreError) -> ApiError {
    ApiError::unavailable(error)
}

/// Conflicts mean "read again and retry"; anything else is a failure for the caller.
pub fn is_conflict(error: &KvError) -> bool {
    matches!(error, KvError::ConditionFailed | KvError::TransactionConflict { .. })
}

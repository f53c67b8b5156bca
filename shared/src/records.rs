//! Read contracts between functions: the minimum one function may read of another's records
//! in the shared table. The owning function writes the full record; extra fields are ignored
//! here, so owners may grow their records freely but must keep these fields and keys.

use serde::{Deserialize, Serialize};

use crate::ports::{KeyValue, KvError};

/// Sessions (owned by functions/auth): `USER#<user_id>` / `SESSION#<session_id>`; present
/// while the session is alive (deleted on logout, revocation, reuse; expires at the absolute limit).
pub fn session_key(user_id: &str, session_id: &str) -> (String, String) {
    (crate::identity::user_pk(user_id), format!("SESSION#{session_id}"))
}

/// Documents (owned by functions/documents): `USER#<owner_user_id>` / `DOC#<document_id>`.
pub fn document_key(owner_user_id: &str, document_id: &str) -> (String, String) {
    (crate::identity::user_pk(owner_user_id), format!("DOC#{document_id}"))
}

pub use crate::vocabulary::DocumentStatus;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocumentRef {
    pub document_id: String,
    pub owner_user_id: String,
    /// `passport`, `snils`, … `result` (SPEC §5).
    #[serde(rename = "type")]
    pub doc_type: String,
    pub status: DocumentStatus,
    /// What agencies are told of an attached document (SPEC §4.5 `documents`); absent in records
    /// written before these were part of the contract.
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub size_bytes: Option<u64>,
    /// Hex SHA-256 of the verified content.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// The citizen's document, or `None` when absent or someone else's (keys are per owner).
pub async fn load_document(kv: &dyn KeyValue, owner_user_id: &str, document_id: &str) -> Result<Option<DocumentRef>, KvError> {
    if document_id.is_empty() || document_id.len() > 64 || !document_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let (pk, sk) = document_key(owner_user_id, document_id);
    kv.get(&pk, &sk).await?.map(|item| item.parse()).transpose()
}

/// Applications (owned by functions/applications): `APP#<application_id>` / `APP`.
pub fn application_key(application_id: &str) -> (String, String) {
    (format!("APP#{application_id}"), "APP".to_owned())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApplicationRef {
    pub application_id: String,
    pub user_id: String,
    pub agency_id: String,
    pub service_code: String,
    pub status: String,
    pub number: Option<String>,
    /// Documents the citizen attached (downloadable by the agency, SPEC §4.6).
    #[serde(default)]
    pub document_ids: Vec<String>,
    /// Documents the agency issued as the result.
    #[serde(default)]
    pub result_document_ids: Vec<String>,
}

impl ApplicationRef {
    /// Whether `document_id` is attached to this application or issued as its result.
    pub fn names_document(&self, document_id: &str) -> bool {
        self.document_ids.iter().chain(&self.result_document_ids).any(|id| id == document_id)
    }
}

pub async fn load_application(kv: &dyn KeyValue, application_id: &str) -> Result<Option<ApplicationRef>, KvError> {
    if application_id.is_empty() || application_id.len() > 64 || !application_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let (pk, sk) = application_key(application_id);
    kv.get(&pk, &sk).await?.map(|item| item.parse()).transpose()
}

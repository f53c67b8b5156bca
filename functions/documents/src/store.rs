//! What the documents function keeps in the key-value store, and how it is keyed.
//!
//! | pk                               | sk                                  | item                                   |
//! |----------------------------------|-------------------------------------|----------------------------------------|
//! | `USER#<owner>`                   | `DOC#<document_id>`                 | [`Document`] (read contract: `shared::records::DocumentRef`) |
//! | `USER#<owner>`                   | `DOCSERIES#<type>`                  | [`Series`]: last vault version number of a type |
//! | `USER#<owner>`                   | `DOCVER#<type>#<version:06>`        | [`VersionEntry`]: one vault version    |
//! | `USER#<owner>`                   | `DOCUSAGE`                          | [`Usage`]: bytes charged to the quota  |
//! | `USER#<owner>`                   | `DOCSHARE#<document_id>#<share_id>` | [`SharePointer`] (expires with the share) |
//! | `DOCID#<document_id>`            | `DOC`                               | [`DocOwner`]: whose document an object key is |
//! | `SHARE#<sha256(token)>`          | `SHARE`                             | [`Share`] (expires with the share)     |
//! | `DOCPURGE#<yyyy-mm-dd>#<shard>`  | `DOC#<document_id>`                 | [`PurgeEntry`]: due for purge that day |
//! | `DOCPURGE`                       | `WATERMARK`                         | [`Watermark`]: first day not yet swept |
//!
//! Every change of a document goes through [`transition_ops`], which keeps the version entry,
//! the purge entry and the quota in step with the document in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use shared::identity::user_pk;
use shared::persist::{Versioned, condition_for, get, put_op, query_all};
use shared::ports::{Condition, KeyValue, KvError, Query, TxOp};
pub use shared::records::DocumentStatus;
pub use shared::vocabulary::RejectionReason;

use crate::policy::Purpose;

/// Purge entries of one day are spread over this many partitions, so no partition is hot.
pub const PURGE_SHARDS: u8 = 8;
/// Prefix of every object key; the rest is the document id, so keys carry no personal data.
pub const OBJECT_KEY_PREFIX: &str = "documents/";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub document_id: String,
    pub owner_user_id: String,
    #[serde(rename = "type")]
    pub doc_type: String,
    pub status: DocumentStatus,
    pub purpose: Purpose,
    pub file_name: String,
    /// Canonical media type of the declared format; the object is stored and served with it.
    pub content_type: String,
    /// Declared size; the upload URL is bound to it.
    pub size_bytes: u64,
    /// Hex SHA-256 of the verified content.
    #[serde(default)]
    pub sha256: Option<String>,
    /// 1 for everything but vault documents, which count up per type.
    pub version: u32,
    pub object_key: String,
    pub source: Source,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub verified_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rejection_reason: Option<RejectionReason>,
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// What a restore returns to.
    #[serde(default)]
    pub status_before_delete: Option<DocumentStatus>,
    /// When the purge may remove the document (pending uploads and deleted documents).
    #[serde(default)]
    pub purge_due: Option<DateTime<Utc>>,
    /// Bytes this document currently counts against the owner's quota.
    #[serde(default)]
    pub charged_bytes: u64,
}

/// Who put the document there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Citizen,
    Agency { agency_id: String, application_id: String },
}

/// The API shows and filters statuses by their wire names; `shared::records::DocumentStatus`
/// has no `as_str`/`parse` of its own yet.
impl Document {
    /// Vault documents form one series of versions per type.
    pub fn series(&self) -> Option<&str> {
        (self.purpose == Purpose::Vault).then_some(self.doc_type.as_str())
    }

    /// The status that counts once a deletion is undone (the status itself when not deleted).
    pub fn effective_status(&self) -> DocumentStatus {
        match self.status {
            DocumentStatus::Deleted => self.status_before_delete.unwrap_or(DocumentStatus::Rejected),
            other => other,
        }
    }
}

pub fn object_key(document_id: &str) -> String {
    format!("{OBJECT_KEY_PREFIX}{document_id}")
}

/// The document id an object key names, if it is one of ours.
pub fn document_id_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(OBJECT_KEY_PREFIX).filter(|id| is_document_id(id))
}

/// Ids are ULIDs; anything else names no document (and never reaches a key).
pub fn is_document_id(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= 64 && raw.chars().all(|c| c.is_ascii_alphanumeric())
}

pub fn document_sk(document_id: &str) -> String {
    format!("DOC#{document_id}")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Series {
    pub last_version: u32,
}

pub fn series_sk(doc_type: &str) -> String {
    format!("DOCSERIES#{doc_type}")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VersionEntry {
    pub document_id: String,
    pub version: u32,
    pub status: DocumentStatus,
}

pub fn version_prefix(doc_type: &str) -> String {
    format!("DOCVER#{doc_type}#")
}

pub fn version_sk(doc_type: &str, version: u32) -> String {
    format!("{}{version:06}", version_prefix(doc_type))
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Usage {
    pub bytes: u64,
}

pub const USAGE_SK: &str = "DOCUSAGE";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocOwner {
    pub owner_user_id: String,
}

pub fn owner_key(document_id: &str) -> (String, String) {
    (format!("DOCID#{document_id}"), "DOC".to_owned())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Share {
    pub share_id: String,
    pub document_id: String,
    pub owner_user_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub fn share_key(token_hash: &str) -> (String, String) {
    (format!("SHARE#{token_hash}"), "SHARE".to_owned())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SharePointer {
    pub share_id: String,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub fn share_pointer_prefix(document_id: &str) -> String {
    format!("DOCSHARE#{document_id}#")
}

pub fn share_pointer_sk(document_id: &str, share_id: &str) -> String {
    format!("{}{share_id}", share_pointer_prefix(document_id))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PurgeEntry {
    pub owner_user_id: String,
    pub document_id: String,
}

pub fn purge_pk(day: NaiveDate, shard: u8) -> String {
    format!("DOCPURGE#{}#{shard}", day.format("%Y-%m-%d"))
}

pub fn purge_shard(document_id: &str) -> u8 {
    Sha256::digest(document_id.as_bytes())[0] % PURGE_SHARDS
}

pub fn purge_key(document_id: &str, due: DateTime<Utc>) -> (String, String) {
    (purge_pk(due.date_naive(), purge_shard(document_id)), document_sk(document_id))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Watermark {
    pub next_day: NaiveDate,
}

pub const WATERMARK_KEY: (&str, &str) = ("DOCPURGE", "WATERMARK");

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn load_document(kv: &dyn KeyValue, owner_user_id: &str, document_id: &str) -> Result<Option<Versioned<Document>>, KvError> {
    if !is_document_id(document_id) {
        return Ok(None);
    }
    get(kv, &user_pk(owner_user_id), &document_sk(document_id)).await
}

/// The document an id names, whoever owns it (for the object-created handler and the purge).
pub async fn load_document_anyone(kv: &dyn KeyValue, document_id: &str) -> Result<Option<Versioned<Document>>, KvError> {
    if !is_document_id(document_id) {
        return Ok(None);
    }
    let (pk, sk) = owner_key(document_id);
    let Some(owner) = get::<DocOwner>(kv, &pk, &sk).await? else { return Ok(None) };
    load_document(kv, &owner.value.owner_user_id, document_id).await
}

/// The transaction ops that move a document from `before` (absent for a new one) to `after`,
/// with its version entry, purge entry and the owner's quota kept in step. `usage` must be the
/// owner's current usage record whenever `charged_bytes` changes.
pub fn transition_ops(before: Option<&Versioned<Document>>, after: &Document, usage: Option<&Versioned<Usage>>) -> Result<Vec<TxOp>, KvError> {
    let owner_pk = user_pk(&after.owner_user_id);
    let mut ops = vec![put_op(owner_pk.clone(), document_sk(&after.document_id), after, condition_for(before), None)?];

    let old = before.map(|b| &b.value);
    if let Some(series) = after.series()
        && old.is_none_or(|o| o.status != after.status)
    {
        let entry = VersionEntry { document_id: after.document_id.clone(), version: after.version, status: after.status };
        // A new version claims its number: two concurrent uploads cannot both take it.
        let condition = if old.is_none() { Condition::NotExists } else { Condition::None };
        ops.push(put_op(owner_pk.clone(), version_sk(series, after.version), &entry, condition, None)?);
    }

    let old_purge = old.and_then(|o| o.purge_due).map(|due| purge_key(&after.document_id, due));
    let new_purge = after.purge_due.map(|due| purge_key(&after.document_id, due));
    if old_purge != new_purge {
        if let Some((pk, sk)) = &old_purge {
            ops.push(TxOp::Delete { pk: pk.clone(), sk: sk.clone(), condition: Condition::None });
        }
        if let Some((pk, sk)) = new_purge {
            let entry = PurgeEntry { owner_user_id: after.owner_user_id.clone(), document_id: after.document_id.clone() };
            ops.push(put_op(pk, sk, &entry, Condition::None, None)?);
        }
    }

    let charged_before = old.map_or(0, |o| o.charged_bytes);
    if charged_before != after.charged_bytes {
        let current = usage.map_or(0, |u| u.value.bytes);
        let bytes = (current + after.charged_bytes).saturating_sub(charged_before);
        ops.push(put_op(owner_pk, USAGE_SK, &Usage { bytes }, condition_for(usage), None)?);
    }
    Ok(ops)
}

/// The ops that remove a purged document and everything that points at it.
pub fn removal_ops(document: &Versioned<Document>, usage: Option<&Versioned<Usage>>) -> Result<Vec<TxOp>, KvError> {
    let doc = &document.value;
    let owner_pk = user_pk(&doc.owner_user_id);
    let (owner_index_pk, owner_index_sk) = owner_key(&doc.document_id);
    let mut ops = vec![
        TxOp::Delete { pk: owner_pk.clone(), sk: document_sk(&doc.document_id), condition: Condition::VersionIs(document.version) },
        TxOp::Delete { pk: owner_index_pk, sk: owner_index_sk, condition: Condition::None },
    ];
    if let Some(series) = doc.series() {
        ops.push(TxOp::Delete { pk: owner_pk.clone(), sk: version_sk(series, doc.version), condition: Condition::None });
    }
    if let Some(due) = doc.purge_due {
        let (pk, sk) = purge_key(&doc.document_id, due);
        ops.push(TxOp::Delete { pk, sk, condition: Condition::None });
    }
    if doc.charged_bytes > 0 {
        let bytes = usage.map_or(0, |u| u.value.bytes).saturating_sub(doc.charged_bytes);
        ops.push(put_op(owner_pk, USAGE_SK, &Usage { bytes }, condition_for(usage), None)?);
    }
    Ok(ops)
}

pub async fn load_usage(kv: &dyn KeyValue, owner_user_id: &str) -> Result<Option<Versioned<Usage>>, KvError> {
    get(kv, &user_pk(owner_user_id), USAGE_SK).await
}

/// Every version entry of a vault series, newest first.
pub async fn versions(kv: &dyn KeyValue, owner_user_id: &str, doc_type: &str) -> Result<Vec<VersionEntry>, KvError> {
    let query = Query::partition(user_pk(owner_user_id)).prefix(version_prefix(doc_type)).descending().limit(100);
    Ok(query_all(kv, query).await?.into_iter().map(|entry| entry.value).collect())
}

/// Every share pointer of a document, expired ones included (their items may outlive the TTL).
pub async fn share_pointers(kv: &dyn KeyValue, owner_user_id: &str, document_id: &str) -> Result<Vec<SharePointer>, KvError> {
    let query = Query::partition(user_pk(owner_user_id)).prefix(share_pointer_prefix(document_id)).limit(100);
    Ok(query_all(kv, query).await?.into_iter().map(|pointer| pointer.value).collect())
}

/// The ops that revoke one share: its pointer and the token item.
pub fn revoke_share_ops(owner_user_id: &str, document_id: &str, pointer: &SharePointer) -> [TxOp; 2] {
    let (share_pk, share_sk) = share_key(&pointer.token_hash);
    [
        TxOp::Delete { pk: user_pk(owner_user_id), sk: share_pointer_sk(document_id, &pointer.share_id), condition: Condition::None },
        TxOp::Delete { pk: share_pk, sk: share_sk, condition: Condition::None },
    ]
}

#[cfg(test)]
mod tests {
    use shared::ports::Item;

    use super::*;

    /// The API writes these names by hand; the OpenAPI schemas are those of the serde forms.
    #[test]
    fn status_and_purpose_names_are_their_serialized_forms() {
        for status in DocumentStatus::ALL.iter().copied() {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str(), "{status:?}");
            assert_eq!(DocumentStatus::parse(status.as_str()), Some(status));
        }
        for purpose in [Purpose::Vault, Purpose::Identity, Purpose::Application] {
            assert_eq!(serde_json::to_value(purpose).unwrap(), purpose.as_str(), "{purpose:?}");
        }
    }

    fn document(purpose: Purpose) -> Document {
        crate::domain::tests::pending(purpose)
    }

    #[test]
    fn stored_documents_satisfy_the_shared_read_contract() {
        let item = Item::json("USER#u", "DOC#d", &document(Purpose::Vault)).expect("encode");
        let read: shared::records::DocumentRef = item.parse().expect("DocumentRef reads the record");
        assert_eq!(read.status, DocumentStatus::PendingUpload);
        assert_eq!(read.doc_type, "passport");
    }

    #[test]
    fn a_new_vault_document_claims_its_version_purge_day_and_quota() {
        let ops = transition_ops(None, &document(Purpose::Vault), None).expect("ops");
        let keys: Vec<(String, Condition)> = ops
            .iter()
            .map(|op| match op {
                TxOp::Put { item, condition } => (item.sk.clone(), *condition),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(keys[0], ("DOC#01JQ3B5N7X9K2M4P6R8T0V1W3Y".into(), Condition::NotExists));
        assert_eq!(keys[1], ("DOCVER#passport#000001".into(), Condition::NotExists));
        assert_eq!(keys[2].0, "DOC#01JQ3B5N7X9K2M4P6R8T0V1W3Y");
        assert_eq!(keys[3], (USAGE_SK.into(), Condition::NotExists));
    }

    #[test]
    fn moving_the_purge_day_replaces_the_entry_and_releasing_bytes_lowers_usage() {
        let before = Versioned { value: document(Purpose::Identity), version: 3 };
        let mut after = before.value.clone();
        after.status = DocumentStatus::Rejected;
        after.purge_due = None;
        after.charged_bytes = 0;
        let usage = Versioned { value: Usage { bytes: 250 }, version: 7 };
        let ops = transition_ops(Some(&before), &after, Some(&usage)).expect("ops");
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert!(matches!(&ops[1], TxOp::Delete { pk, .. } if pk.starts_with("DOCPURGE#")));
        match &ops[2] {
            TxOp::Put { item, condition } => {
                assert_eq!(*condition, Condition::VersionIs(7));
                assert_eq!(item.parse::<Usage>().expect("usage").bytes, 150);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn object_keys_name_only_our_documents() {
        assert_eq!(document_id_of_key("documents/01JQ3B5N7X9K2M4P6R8T0V1W3Y"), Some("01JQ3B5N7X9K2M4P6R8T0V1W3Y"));
        assert_eq!(document_id_of_key("documents/../etc"), None);
        assert_eq!(document_id_of_key("other/01JQ3B5N7X9K2M4P6R8T0V1W3Y"), None);
        assert_eq!(document_id_of_key("documents/"), None);
    }
}

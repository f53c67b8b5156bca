//! Verification of uploaded objects, driven by object-created notifications.
//!
//! For each created object the handler finds the document (object key → document id → owner),
//! then decides from the object itself: empty, larger than declared or than the purpose allows,
//! or a format (sniffed from the first bytes, with the end marker checked on the last ones)
//! other than the declared one, or hostile content (a PDF polyglot, XML with a DOCTYPE or
//! entities, a DOCX that would inflate too far or holds such XML; see `sniff`) → `rejected`;
//! otherwise `available` with the SHA-256 computed over 1 MiB ranges (the same pass scans PDF
//! and XML bytes, so they are read once). The verdict and its
//! `document.verdict` event commit in one transaction, conditional on the version read, so
//! concurrent or repeated deliveries apply it once. Rejected content is deleted right away.
//!
//! A notification for a document already verified is checked again: the same bytes change
//! nothing, while different bytes get a new verdict. Both stores refuse a second PUT through
//! an upload URL (412), so this is defence in depth against a store that would not.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use shared::events::{Event, EventPayload};
use shared::ports::{KvError, ObjectStoreError};
use shared::worker::{HandlerError, MessageHandler};

use crate::DocumentsState;
use crate::notification::{self, Notification};
use crate::policy::FileFormat;
use crate::sniff::{self, ContentScan, ScanFor, Sniffed};
use crate::store::{self, Document, DocumentStatus, RejectionReason, Versioned};

/// Bytes read per range while hashing.
pub const HASH_CHUNK_BYTES: u64 = 1024 * 1024;
const MAX_RETRIES: usize = 5;

/// What the content of an object says about its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Available { sha256: String },
    Rejected(RejectionReason),
}

/// What handling one object-created notification did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not one of our documents, or the object is gone.
    Ignored,
    /// The document already carries this verdict (a redelivery or a repeated identical PUT).
    Unchanged,
    Decided(Verdict),
}

/// The uploads-queue consumer: plug it into `shared::worker::run_consumer` (local runner,
/// containers) or `shared::worker::sqs_batch_handler` (Lambda).
pub struct UploadHandler {
    state: Arc<DocumentsState>,
}

#[async_trait]
impl MessageHandler for UploadHandler {
    async fn handle(&self, body: &str) -> Result<(), HandlerError> {
        let objects = match notification::parse(body) {
            Ok(Notification::Test) => {
                tracing::info!("S3 test notification acknowledged");
                return Ok(());
            }
            Ok(Notification::Created(objects)) => objects,
            Err(error) => return Err(HandlerError::Reject(error.to_string())),
        };
        let mut failure = None;
        for object in objects {
            // Every object gets its turn even if an earlier one has to be retried.
            if let Err(error) = self.process_object(&object.key).await {
                failure = Some(error);
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

impl UploadHandler {
    pub fn new(state: Arc<DocumentsState>) -> Self {
        Self { state }
    }

    /// Verifies the object at `key` and records the verdict on its document.
    pub async fn process_object(&self, key: &str) -> Result<Outcome, HandlerError> {
        let Some(document_id) = store::document_id_of_key(key) else {
            tracing::warn!("object-created notification for a key outside documents/; ignored");
            return Ok(Outcome::Ignored);
        };
        for _ in 0..MAX_RETRIES {
            let Some(doc) = store::load_document_anyone(self.state.kv.as_ref(), document_id).await.map_err(kv_retry)? else {
                tracing::warn!(document_id, "object-created notification for an unknown document; ignored");
                return Ok(Outcome::Ignored);
            };
            match self.decide(doc).await? {
                Some(outcome) => return Ok(outcome),
                None => continue,
            }
        }
        Err(HandlerError::Retry(format!("document {document_id}: concurrent updates")))
    }

    /// One attempt; `None` when the document changed under us and must be read again.
    async fn decide(&self, doc: Versioned<Document>) -> Result<Option<Outcome>, HandlerError> {
        let state = &self.state;
        let current = &doc.value;
        if current.effective_status() == DocumentStatus::Rejected {
            // Whatever arrives for a rejected document is discarded; deleting again is harmless.
            self.discard(current).await?;
            return Ok(Some(Outcome::Unchanged));
        }
        let Some(verdict) = verify(state, current).await? else {
            tracing::warn!(document_id = %current.document_id, "object-created notification but the object is gone; ignored");
            return Ok(Some(Outcome::Ignored));
        };
        let already = current.effective_status() == DocumentStatus::Available
            && matches!(&verdict, Verdict::Available { sha256 } if current.sha256.as_ref() == Some(sha256));
        if already {
            return Ok(Some(Outcome::Unchanged));
        }

        let after = apply(current, &verdict, state.now());
        let usage = if after.charged_bytes != current.charged_bytes {
            store::load_usage(state.kv.as_ref(), &current.owner_user_id).await.map_err(kv_retry)?
        } else {
            None
        };
        let ops = store::transition_ops(Some(&doc), &after, usage.as_ref()).map_err(kv_retry)?;
        // A deleted document learns its verdict silently; the citizen hears of it only if restored.
        let events = if current.status == DocumentStatus::Deleted { Vec::new() } else { vec![verdict_event(&after, &verdict)] };
        match state.commit(ops, events).await {
            Ok(()) => {}
            Err(KvError::ConditionFailed | KvError::TransactionConflict { .. }) => return Ok(None),
            Err(error) => return Err(kv_retry(error)),
        }
        match &verdict {
            Verdict::Available { .. } => tracing::info!(document_id = %after.document_id, size_bytes = after.size_bytes, "document verified: available"),
            Verdict::Rejected(reason) => {
                tracing::info!(document_id = %after.document_id, reason = reason.as_str(), "document verified: rejected");
                self.discard(&after).await?;
            }
        }
        Ok(Some(Outcome::Decided(verdict)))
    }

    async fn discard(&self, doc: &Document) -> Result<(), HandlerError> {
        self.state.objects.delete(&doc.object_key).await.map_err(object_retry)
    }
}

/// Reads the object behind `doc` and judges it; `None` when there is no object.
pub async fn verify(state: &DocumentsState, doc: &Document) -> Result<Option<Verdict>, HandlerError> {
    let objects = state.objects.as_ref();
    let key = doc.object_key.as_str();
    let Some(meta) = objects.head(key).await.map_err(object_retry)? else { return Ok(None) };
    let size = meta.size;
    if size == 0 {
        return Ok(Some(Verdict::Rejected(RejectionReason::Empty)));
    }
    if size > doc.purpose.max_bytes() || size > doc.size_bytes {
        return Ok(Some(Verdict::Rejected(RejectionReason::TooLarge)));
    }
    if size < doc.size_bytes {
        return Ok(Some(Verdict::Rejected(RejectionReason::ContentMismatch)));
    }

    let head = objects.read_range(key, 0, sniff::HEAD_BYTES).await.map_err(object_retry)?;
    let sniffed = sniff::sniff_head(&head);
    let declared = FileFormat::from_content_type(&doc.content_type);
    let expected = |format: FileFormat| Some(format) == declared && doc.purpose.accepts(format);
    // A DOCX is inflated only when one was declared and is accepted here.
    let format = match sniffed {
        Sniffed::Format(FileFormat::Xml) if !sniff::xml_encoding_is_scannable(&head) => None,
        Sniffed::Format(format) if ends_properly(state, key, size, &head, format).await? => Some(format),
        Sniffed::Zip if expected(FileFormat::Docx) && zip_is_docx(state, key, size).await? => Some(FileFormat::Docx),
        _ => None,
    };
    if !format.is_some_and(expected) {
        tracing::info!(document_id = %doc.document_id, sniffed = sniffed.describe(), declared = %doc.content_type, "content does not match the declared format");
        return Ok(Some(Verdict::Rejected(RejectionReason::ContentMismatch)));
    }
    let scan = match format {
        Some(FileFormat::Pdf) => Some(ContentScan::new(ScanFor::PdfPolyglot)),
        Some(FileFormat::Xml) => Some(ContentScan::new(ScanFor::XmlDeclarations)),
        _ => None,
    };
    let (sha256, hostile) = sha256_of(state, key, size, scan).await?;
    if hostile {
        tracing::info!(document_id = %doc.document_id, sniffed = sniffed.describe(), "content carries a second format or XML declarations");
        return Ok(Some(Verdict::Rejected(RejectionReason::ContentMismatch)));
    }
    Ok(Some(Verdict::Available { sha256 }))
}

/// Whether the object ends with the end marker of `format`; the head already holds the tail
/// of a small object, so only larger ones cost another read.
async fn ends_properly(state: &DocumentsState, key: &str, size: u64, head: &[u8], format: FileFormat) -> Result<bool, HandlerError> {
    if matches!(format, FileFormat::Docx | FileFormat::Xml) {
        return Ok(true);
    }
    let tail_len = size.min(sniff::TAIL_BYTES);
    if size <= head.len() as u64 {
        return Ok(sniff::has_end_marker(format, &head[head.len() - tail_len as usize..]));
    }
    let tail = state.objects.read_range(key, size - tail_len, tail_len).await.map_err(object_retry)?;
    Ok(sniff::has_end_marker(format, &tail))
}

/// Reads the ZIP's central directory from the end of the object and checks the listed names
/// and declared sizes; then inflates every entry (within those sizes) to refuse XML with a
/// DOCTYPE or entities, and to see `[Content_Types].xml` declare a Word document.
async fn zip_is_docx(state: &DocumentsState, key: &str, size: u64) -> Result<bool, HandlerError> {
    let objects = state.objects.as_ref();
    let tail_len = size.min(sniff::ZIP_TAIL_BYTES);
    let tail_start = size - tail_len;
    let tail = objects.read_range(key, tail_start, tail_len).await.map_err(object_retry)?;
    let Some(directory) = sniff::find_central_directory(&tail, size) else { return Ok(false) };
    if directory.size > sniff::MAX_CENTRAL_DIRECTORY_BYTES {
        return Ok(false);
    }
    let listing = objects.read_range(key, directory.offset, directory.size).await.map_err(object_retry)?;
    let Some(entries) = sniff::central_directory_entries(&listing) else { return Ok(false) };
    let names: Vec<String> = entries.iter().map(|entry| entry.name.clone()).collect();
    if entries.len() != usize::from(directory.entries) || !sniff::check_package(&names) || !sniff::check_declared_sizes(&entries) {
        return Ok(false);
    }
    let Some(spans) = sniff::entry_spans(&entries, directory.offset) else { return Ok(false) };
    let Some(mut inspector) = sniff::ArchiveInspector::open(size, vec![(tail_start, tail), (directory.offset, listing)], names.len()) else { return Ok(false) };
    let mut declares_docx = false;
    for (index, offset, len) in spans {
        let is_content_types = entries[index].name == sniff::CONTENT_TYPES_PART;
        let keep = if is_content_types { sniff::MAX_CONTENT_TYPES_BYTES as usize } else { 0 };
        let span = objects.read_range(key, offset, len).await.map_err(object_retry)?;
        let Some(inflated) = inspector.inflate(index, offset, span, keep) else { return Ok(false) };
        if inflated.declares_entities {
            return Ok(false);
        }
        if is_content_types {
            declares_docx = inflated.head.len() <= keep && sniff::content_types_declare_docx(&inflated.head);
        }
    }
    Ok(declares_docx)
}

/// SHA-256 of the first `size` bytes, streamed in ranges so memory stays at one chunk; the
/// same bytes feed `scan`, whose finding comes back with the digest.
async fn sha256_of(state: &DocumentsState, key: &str, size: u64, mut scan: Option<ContentScan>) -> Result<(String, bool), HandlerError> {
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < size {
        let chunk = state.objects.read_range(key, offset, HASH_CHUNK_BYTES.min(size - offset)).await.map_err(object_retry)?;
        if chunk.is_empty() {
            return Err(HandlerError::Retry("object shrank while it was being hashed".into()));
        }
        hasher.update(&chunk);
        if let Some(scan) = scan.as_mut() {
            scan.feed(&chunk);
        }
        offset += chunk.len() as u64;
    }
    Ok((store::hex(&hasher.finalize()), scan.is_some_and(ContentScan::finish)))
}

/// The document after `verdict`; a deleted document keeps its status and records the verdict
/// as what a restore returns to.
fn apply(doc: &Document, verdict: &Verdict, now: chrono::DateTime<chrono::Utc>) -> Document {
    let mut after = doc.clone();
    let status = match verdict {
        Verdict::Available { sha256 } => {
            after.sha256 = Some(sha256.clone());
            after.rejection_reason = None;
            DocumentStatus::Available
        }
        Verdict::Rejected(reason) => {
            after.sha256 = None;
            after.rejection_reason = Some(*reason);
            // Rejected content is deleted at once, so it no longer counts against the quota.
            after.charged_bytes = 0;
            DocumentStatus::Rejected
        }
    };
    if after.status == DocumentStatus::Deleted {
        after.status_before_delete = Some(status);
    } else {
        after.status = status;
        after.purge_due = None;
    }
    after.verified_at = Some(now);
    after.updated_at = now;
    after
}

fn verdict_event(doc: &Document, verdict: &Verdict) -> Event {
    let (status, rejection_reason) = match verdict {
        Verdict::Available { .. } => ("available", None),
        Verdict::Rejected(reason) => ("rejected", Some(reason.as_str().to_owned())),
    };
    Event::new(
        Some(doc.owner_user_id.clone()),
        EventPayload::DocumentVerdict { document_id: doc.document_id.clone(), file_name: doc.file_name.clone(), status: status.to_owned(), rejection_reason },
    )
}

fn kv_retry(error: KvError) -> HandlerError {
    HandlerError::Retry(format!("key-value store: {error}"))
}

fn object_retry(error: ObjectStoreError) -> HandlerError {
    HandlerError::Retry(format!("object store: {error}"))
}

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

use shared::events::Event;
use shared::persist::{self, Attempt};
use shared::worker::{HandlerError, MessageHandler};

use crate::DocumentsState;
pub use crate::domain::Verdict;
use crate::domain::{self, Recording};
use crate::errors::JobError;
use crate::notification::{self, Notification};
use crate::policy::FileFormat;
use crate::sniff::{self, ContentScan, ScanFor, Sniffed};
use crate::store::{self, Document, RejectionReason};

/// Bytes read per range while hashing.
pub const HASH_CHUNK_BYTES: u64 = 1024 * 1024;

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
                failure = Some(error.into());
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

impl UploadHandler {
    pub fn new(state: Arc<DocumentsState>) -> Self {
        Self { state }
    }

    /// Verifies the object at `key` and records the verdict on its document. A lost race
    /// (another delivery, a deletion) reads the document again and judges again.
    pub async fn process_object(&self, key: &str) -> Result<Outcome, JobError> {
        let Some(document_id) = store::document_id_of_key(key) else {
            tracing::warn!("object-created notification for a key outside documents/; ignored");
            return Ok(Outcome::Ignored);
        };
        persist::retry(|| self.judge(document_id)).await
    }

    /// One round: read the document, judge its object, record the verdict conditionally.
    async fn judge(&self, document_id: &str) -> Result<Attempt<Outcome>, JobError> {
        let state = &self.state;
        let Some(doc) = store::load_document_anyone(state.kv.as_ref(), document_id).await? else {
            tracing::warn!(document_id, "object-created notification for an unknown document; ignored");
            return Ok(Attempt::Done(Outcome::Ignored));
        };
        let current = &doc.value;
        if !current.awaits_verdict() {
            // Whatever arrives for a rejected document is discarded; deleting again is harmless.
            self.discard(current).await?;
            return Ok(Attempt::Done(Outcome::Unchanged));
        }
        let Some(verdict) = verify(state, current).await? else {
            tracing::warn!(document_id, "object-created notification but the object is gone; ignored");
            return Ok(Attempt::Done(Outcome::Ignored));
        };
        let Recording::Changed { after, event } = current.record_verdict(&verdict, state.now()) else {
            return Ok(Attempt::Done(Outcome::Unchanged));
        };
        let usage = if after.charged_bytes != current.charged_bytes { store::load_usage(state.kv.as_ref(), &current.owner_user_id).await? } else { None };
        let ops = store::transition_ops(Some(&doc), &after, usage.as_ref())?;
        let events: Vec<Event> = event.into_iter().map(|payload| Event::new(&state.ticker, Some(after.owner_user_id.clone()), payload)).collect();
        if let Attempt::Conflict = state.commit_round(ops, &events, ()).await? {
            return Ok(Attempt::Conflict);
        }
        match &verdict {
            Verdict::Available { .. } => tracing::info!(document_id, size_bytes = after.size_bytes, "document verified: available"),
            Verdict::Rejected(reason) => {
                tracing::info!(document_id, reason = reason.as_str(), "document verified: rejected");
                self.discard(&after).await?;
            }
        }
        Ok(Attempt::Done(Outcome::Decided(verdict)))
    }

    async fn discard(&self, doc: &Document) -> Result<(), JobError> {
        Ok(self.state.objects.delete(&doc.object_key).await?)
    }
}

/// Reads the object behind `doc` and judges it; `None` when there is no object.
pub async fn verify(state: &DocumentsState, doc: &Document) -> Result<Option<Verdict>, JobError> {
    let objects = state.objects.as_ref();
    let key = doc.object_key.as_str();
    let Some(meta) = objects.head(key).await? else { return Ok(None) };
    let size = meta.size;
    if let Some(verdict) = domain::size_verdict(doc, size) {
        return Ok(Some(verdict));
    }

    let head = objects.read_range(key, 0, sniff::HEAD_BYTES).await?;
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
async fn ends_properly(state: &DocumentsState, key: &str, size: u64, head: &[u8], format: FileFormat) -> Result<bool, JobError> {
    if matches!(format, FileFormat::Docx | FileFormat::Xml) {
        return Ok(true);
    }
    let tail_len = size.min(sniff::TAIL_BYTES);
    if size <= head.len() as u64 {
        return Ok(sniff::has_end_marker(format, &head[head.len() - tail_len as usize..]));
    }
    let tail = state.objects.read_range(key, size - tail_len, tail_len).await?;
    Ok(sniff::has_end_marker(format, &tail))
}

/// Reads the ZIP's central directory from the end of the object and checks the listed names
/// and declared sizes; then inflates every entry (within those sizes) to refuse XML with a
/// DOCTYPE or entities, and to see `[Content_Types].xml` declare a Word document.
async fn zip_is_docx(state: &DocumentsState, key: &str, size: u64) -> Result<bool, JobError> {
    let objects = state.objects.as_ref();
    let tail_len = size.min(sniff::ZIP_TAIL_BYTES);
    let tail_start = size - tail_len;
    let tail = objects.read_range(key, tail_start, tail_len).await?;
    let Some(directory) = sniff::find_central_directory(&tail, size) else { return Ok(false) };
    if directory.size > sniff::MAX_CENTRAL_DIRECTORY_BYTES {
        return Ok(false);
    }
    let listing = objects.read_range(key, directory.offset, directory.size).await?;
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
        let span = objects.read_range(key, offset, len).await?;
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
async fn sha256_of(state: &DocumentsState, key: &str, size: u64, mut scan: Option<ContentScan>) -> Result<(String, bool), JobError> {
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < size {
        let chunk = state.objects.read_range(key, offset, HASH_CHUNK_BYTES.min(size - offset)).await?;
        if chunk.is_empty() {
            return Err(JobError::Shrank);
        }
        hasher.update(&chunk);
        if let Some(scan) = scan.as_mut() {
            scan.feed(&chunk);
        }
        offset += chunk.len() as u64;
    }
    Ok((store::hex(&hasher.finalize()), scan.is_some_and(ContentScan::finish)))
}

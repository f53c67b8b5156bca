//! The documents function's decisions, apart from HTTP and storage: what an upload slot
//! reserves, what a verdict does to a document, deletion and restore, share links, and what
//! the purge does with a due entry. Each takes the time as a parameter (the handlers read it
//! from the state's `Ticker`) and answers a new value or a refusal; the callers read and
//! persist. Refusals map to problem+json once, in `crate::errors`.

use chrono::{DateTime, Utc};

use shared::events::EventPayload;
use shared::vocabulary::RejectionReason;

use crate::Settings;
use crate::policy::{self, FileFormat, Purpose, SlotRefusal};
use crate::store::{self, Document, DocumentStatus, Share, SharePointer, Source};

/// A purged document goes this long after it fell due, so a restore that the API accepted just
/// before the deadline (by a clock slightly behind ours) can never lose its object.
pub const PURGE_GRACE: chrono::Duration = chrono::Duration::minutes(10);

// ---------------------------------------------------------------------------------------------
// Upload slots
// ---------------------------------------------------------------------------------------------

/// Why no upload slot is given: the client must pick another file or free space first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("this format is not accepted for the purpose")]
    UnsupportedMediaType,
    #[error("the file is larger than the purpose allows ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("the owner's quota of {quota_bytes} bytes would be exceeded")]
    QuotaExceeded { quota_bytes: u64 },
}

/// A file as declared by the client, with well-formed fields (not yet checked against a purpose).
#[derive(Clone, Debug)]
pub struct DeclaredFile {
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// A declared file accepted for a purpose.
#[derive(Clone, Debug)]
pub struct AcceptedFile {
    pub file_name: String,
    /// Canonical media type of the declared format.
    pub content_type: String,
    pub size_bytes: u64,
}

impl DeclaredFile {
    /// Format (415) before size (413), as a client would fix them.
    pub fn accept(self, purpose: Purpose) -> Result<AcceptedFile, SlotError> {
        match policy::check_declared(purpose, &self.content_type, self.size_bytes) {
            Ok(format) => Ok(AcceptedFile {
                content_type: FileFormat::canonical_content_type(format, &self.content_type).to_owned(),
                file_name: self.file_name,
                size_bytes: self.size_bytes,
            }),
            Err(SlotRefusal::UnsupportedMediaType) => Err(SlotError::UnsupportedMediaType),
            Err(SlotRefusal::TooLarge { limit }) => Err(SlotError::TooLarge { limit }),
        }
    }
}

/// A document about to get an upload slot.
#[derive(Clone, Debug)]
pub struct NewDocument {
    pub owner_user_id: String,
    pub doc_type: String,
    pub purpose: Purpose,
    pub file: AcceptedFile,
    pub source: Source,
    /// Citizens' own uploads are refused past the quota; agency results are always accepted
    /// (and still counted).
    pub enforce_quota: bool,
}

impl NewDocument {
    /// The pending document for this upload, given the bytes already charged to the owner and,
    /// in the vault, the last version number of the type (0 for none). Its size is charged and
    /// it is purged if nothing arrives within the pending-upload timeout.
    pub fn reserve(&self, document_id: &str, used_bytes: u64, last_version: u32, settings: &Settings, now: DateTime<Utc>) -> Result<Document, SlotError> {
        if self.enforce_quota && used_bytes.saturating_add(self.file.size_bytes) > settings.quota_bytes {
            return Err(SlotError::QuotaExceeded { quota_bytes: settings.quota_bytes });
        }
        Ok(Document {
            document_id: document_id.to_owned(),
            owner_user_id: self.owner_user_id.clone(),
            doc_type: self.doc_type.clone(),
            status: DocumentStatus::PendingUpload,
            purpose: self.purpose,
            file_name: self.file.file_name.clone(),
            content_type: self.file.content_type.clone(),
            size_bytes: self.file.size_bytes,
            sha256: None,
            version: if self.purpose == Purpose::Vault { last_version + 1 } else { 1 },
            object_key: store::object_key(document_id),
            source: self.source.clone(),
            created_at: now,
            updated_at: now,
            verified_at: None,
            rejection_reason: None,
            deleted_at: None,
            status_before_delete: None,
            purge_due: Some(now + settings.pending_upload_timeout),
            charged_bytes: self.file.size_bytes,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// What the content of an object says about its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Available { sha256: String },
    Rejected(RejectionReason),
}

/// What a verdict does to a document.
#[derive(Clone, Debug, PartialEq)]
pub enum Recording {
    /// The document already carries this verdict (a redelivery or a repeated identical PUT).
    Unchanged,
    /// The document after the verdict, and the event to tell its owner (none for a deleted one).
    Changed { after: Box<Document>, event: Option<EventPayload> },
}

/// The verdict an object's size alone decides: empty, larger than declared or than the purpose
/// allows, or shorter than declared. `None`: the content has to be read.
pub fn size_verdict(doc: &Document, size: u64) -> Option<Verdict> {
    if size == 0 {
        Some(Verdict::Rejected(RejectionReason::Empty))
    } else if size > doc.purpose.max_bytes() || size > doc.size_bytes {
        Some(Verdict::Rejected(RejectionReason::TooLarge))
    } else if size < doc.size_bytes {
        Some(Verdict::Rejected(RejectionReason::ContentMismatch))
    } else {
        None
    }
}

impl Document {
    /// Whether content arriving for this document is judged at all: whatever arrives for a
    /// rejected one is discarded unread.
    pub fn awaits_verdict(&self) -> bool {
        self.effective_status() != DocumentStatus::Rejected
    }

    /// Records `verdict`. A deleted document keeps its status, records the verdict as what a
    /// restore returns to, and learns it silently.
    pub fn record_verdict(&self, verdict: &Verdict, now: DateTime<Utc>) -> Recording {
        let same =
            self.effective_status() == DocumentStatus::Available && matches!(verdict, Verdict::Available { sha256 } if self.sha256.as_ref() == Some(sha256));
        if same {
            return Recording::Unchanged;
        }
        let mut after = self.clone();
        let (status, rejection_reason) = match verdict {
            Verdict::Available { sha256 } => {
                after.sha256 = Some(sha256.clone());
                (DocumentStatus::Available, None)
            }
            Verdict::Rejected(reason) => {
                after.sha256 = None;
                // Rejected content is deleted at once, so it no longer counts against the quota.
                after.charged_bytes = 0;
                (DocumentStatus::Rejected, Some(*reason))
            }
        };
        after.rejection_reason = rejection_reason;
        if after.status == DocumentStatus::Deleted {
            after.status_before_delete = Some(status);
        } else {
            after.status = status;
            after.purge_due = None;
        }
        after.verified_at = Some(now);
        after.updated_at = now;
        let event = (self.status != DocumentStatus::Deleted).then(|| EventPayload::DocumentVerdict {
            document_id: after.document_id.clone(),
            file_name: after.file_name.clone(),
            status,
            rejection_reason,
        });
        Recording::Changed { after: Box::new(after), event }
    }
}

// ---------------------------------------------------------------------------------------------
// Deletion and restore
// ---------------------------------------------------------------------------------------------

/// Why a document cannot be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("the document is not deleted")]
    NotDeleted,
    /// Past the window it is as good as purged, whether or not the purge ran yet.
    #[error("the restore window has passed")]
    Gone,
}

impl Document {
    /// The document deleted at `now`, restorable for the restore window; `None` when it
    /// already is deleted.
    pub fn delete(&self, now: DateTime<Utc>, restore_window: chrono::Duration) -> Option<Document> {
        if self.status == DocumentStatus::Deleted {
            return None;
        }
        let mut after = self.clone();
        after.status_before_delete = Some(after.status);
        after.status = DocumentStatus::Deleted;
        after.deleted_at = Some(now);
        after.updated_at = now;
        after.purge_due = Some(now + restore_window);
        Some(after)
    }

    /// The document as it was before its deletion (a pending upload gets its purge day back).
    pub fn restore(&self, now: DateTime<Utc>, settings: &Settings) -> Result<Document, RestoreError> {
        let Some(deleted_at) = self.deleted_at.filter(|_| self.status == DocumentStatus::Deleted) else {
            return Err(RestoreError::NotDeleted);
        };
        if now > deleted_at + settings.restore_window {
            return Err(RestoreError::Gone);
        }
        let mut after = self.clone();
        after.status = after.effective_status();
        after.status_before_delete = None;
        after.deleted_at = None;
        after.updated_at = now;
        after.purge_due = (after.status == DocumentStatus::PendingUpload).then(|| after.created_at + settings.pending_upload_timeout);
        Ok(after)
    }
}

// ---------------------------------------------------------------------------------------------
// Share links
// ---------------------------------------------------------------------------------------------

/// Why no share link is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("a link lives 1 to {max_seconds} seconds")]
    LifetimeOutOfRange { max_seconds: i64 },
    #[error("only available documents are shared")]
    NotAvailable,
}

/// The lifetime a client asked for, within 1 second and `max`.
pub fn share_lifetime(requested: Option<i64>, max: std::time::Duration) -> Result<chrono::Duration, ShareError> {
    let max_seconds = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
    requested.filter(|s| (1..=max_seconds).contains(s)).map(chrono::Duration::seconds).ok_or(ShareError::LifetimeOutOfRange { max_seconds })
}

impl Share {
    /// A link to `doc` (available documents only) known by `token_hash`, and the owner's
    /// pointer to it.
    pub fn issue(
        doc: &Document,
        share_id: String,
        token_hash: String,
        lifetime: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<(Share, SharePointer), ShareError> {
        if doc.status != DocumentStatus::Available {
            return Err(ShareError::NotAvailable);
        }
        let expires_at = now + lifetime;
        let pointer = SharePointer { share_id: share_id.clone(), token_hash, created_at: now, expires_at };
        let share = Share { share_id, document_id: doc.document_id.clone(), owner_user_id: doc.owner_user_id.clone(), created_at: now, expires_at };
        Ok((share, pointer))
    }

    /// Whether following the link at `now` downloads `doc`; expired, revoked and unknown links
    /// and documents no longer available answer alike.
    pub fn opens(&self, doc: &Document, now: DateTime<Utc>) -> bool {
        self.expires_at > now && doc.status == DocumentStatus::Available
    }
}

impl SharePointer {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

// ---------------------------------------------------------------------------------------------
// Purge
// ---------------------------------------------------------------------------------------------

/// What the purge does with one entry of its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgeStep {
    /// The document is gone or has moved on (restored, verified, due another day): drop the entry.
    Stale,
    /// Due later today or within the grace: leave it for a later run.
    NotYetDue,
    /// A deleted document past its window: remove object and records.
    RemoveDeleted,
    /// A pending upload past its timeout: verify it if its object arrived unnoticed, else remove it.
    ResolvePending,
}

/// The step for the entry at `entry_key` (`pk`, `sk`) naming `doc`, at `now`.
pub fn purge_step(doc: Option<&Document>, entry_key: (&str, &str), now: DateTime<Utc>) -> PurgeStep {
    let Some((doc, due)) = doc.and_then(|d| Some((d, d.purge_due?))) else { return PurgeStep::Stale };
    let (pk, sk) = store::purge_key(&doc.document_id, due);
    if (pk.as_str(), sk.as_str()) != entry_key {
        return PurgeStep::Stale;
    }
    if due + PURGE_GRACE > now {
        return PurgeStep::NotYetDue;
    }
    match doc.status {
        DocumentStatus::PendingUpload => PurgeStep::ResolvePending,
        DocumentStatus::Deleted => PurgeStep::RemoveDeleted,
        DocumentStatus::Available | DocumentStatus::Rejected => PurgeStep::Stale,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::Duration;
    use shared::ports::Ticker;

    use super::*;

    const OWNER: &str = "01JNZ8Q4T6V2B9M3K7C5X1R0HD";
    const MIB: u64 = 1024 * 1024;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn new_document(purpose: Purpose, size_bytes: u64) -> NewDocument {
        let file = DeclaredFile { file_name: "паспорт.pdf".into(), content_type: "Application/PDF".into(), size_bytes }.accept(purpose).unwrap();
        NewDocument { owner_user_id: OWNER.into(), doc_type: "passport".into(), purpose, file, source: Source::Citizen, enforce_quota: true }
    }

    /// A pending 100-byte `passport.pdf`, the first of its type.
    pub(crate) fn pending(purpose: Purpose) -> Document {
        let (ticker, _) = Ticker::fixed(start());
        new_document(purpose, 100).reserve("01JQ3B5N7X9K2M4P6R8T0V1W3Y", 0, 0, &Settings::default(), ticker.now()).unwrap()
    }

    fn available(purpose: Purpose) -> Document {
        match pending(purpose).record_verdict(&Verdict::Available { sha256: "ab".repeat(32) }, start()) {
            Recording::Changed { after, .. } => *after,
            Recording::Unchanged => unreachable!(),
        }
    }

    #[test]
    fn a_declared_file_is_checked_for_format_before_size() {
        let declared = |content_type: &str, size_bytes| DeclaredFile { file_name: "f".into(), content_type: content_type.into(), size_bytes };
        assert_eq!(declared("application/zip", 50 * MIB).accept(Purpose::Identity).unwrap_err(), SlotError::UnsupportedMediaType);
        assert_eq!(declared("application/pdf", 5 * MIB + 1).accept(Purpose::Identity).unwrap_err(), SlotError::TooLarge { limit: 5 * MIB });
        assert_eq!(declared("Image/PNG", 1).accept(Purpose::Vault).unwrap().content_type, "image/png");
    }

    #[test]
    fn a_slot_charges_its_size_takes_the_next_vault_version_and_falls_due_in_a_day() {
        let settings = Settings::default();
        let doc = new_document(Purpose::Vault, 100).reserve("01JQ3B5N7X9K2M4P6R8T0V1W3Y", 0, 4, &settings, start()).unwrap();
        assert_eq!((doc.status, doc.version, doc.charged_bytes), (DocumentStatus::PendingUpload, 5, 100));
        assert_eq!(doc.purge_due, Some(start() + Duration::days(1)));
        assert_eq!(doc.object_key, "documents/01JQ3B5N7X9K2M4P6R8T0V1W3Y");
        assert_eq!(doc.content_type, "application/pdf");
        let outside = new_document(Purpose::Identity, 100).reserve("01JQ3B5N7X9K2M4P6R8T0V1W3Z", 0, 4, &settings, start()).unwrap();
        assert_eq!(outside.version, 1);
    }

    #[test]
    fn a_citizen_slot_past_the_quota_is_refused_but_an_agency_result_is_not() {
        let settings = Settings { quota_bytes: 1000, ..Settings::default() };
        let mut new = new_document(Purpose::Application, 100);
        assert!(new.reserve("A", 900, 0, &settings, start()).is_ok());
        assert_eq!(new.reserve("A", 901, 0, &settings, start()).unwrap_err(), SlotError::QuotaExceeded { quota_bytes: 1000 });
        new.enforce_quota = false;
        assert!(new.reserve("A", 901, 0, &settings, start()).is_ok());
    }

    #[test]
    fn size_alone_rejects_empty_oversized_and_short_objects() {
        let doc = pending(Purpose::Identity);
        assert_eq!(size_verdict(&doc, 0), Some(Verdict::Rejected(RejectionReason::Empty)));
        assert_eq!(size_verdict(&doc, 101), Some(Verdict::Rejected(RejectionReason::TooLarge)));
        assert_eq!(size_verdict(&doc, 99), Some(Verdict::Rejected(RejectionReason::ContentMismatch)));
        assert_eq!(size_verdict(&doc, 100), None);
    }

    #[test]
    fn a_verdict_settles_the_document_and_tells_the_owner() {
        let doc = available(Purpose::Identity);
        assert_eq!((doc.status, doc.purge_due, doc.verified_at), (DocumentStatus::Available, None, Some(start())));
        assert_eq!(doc.record_verdict(&Verdict::Available { sha256: "ab".repeat(32) }, start() + Duration::hours(1)), Recording::Unchanged);

        let Recording::Changed { after, event } = pending(Purpose::Identity).record_verdict(&Verdict::Rejected(RejectionReason::ContentMismatch), start())
        else {
            panic!("a rejection changes the document");
        };
        assert_eq!((after.status, after.charged_bytes, after.rejection_reason), (DocumentStatus::Rejected, 0, Some(RejectionReason::ContentMismatch)));
        assert!(!after.awaits_verdict());
        assert!(matches!(
            event,
            Some(EventPayload::DocumentVerdict { status: DocumentStatus::Rejected, rejection_reason: Some(RejectionReason::ContentMismatch), .. })
        ));
    }

    #[test]
    fn a_deleted_document_learns_its_verdict_silently_and_keeps_it_for_a_restore() {
        let deleted = pending(Purpose::Vault).delete(start(), Duration::days(30)).unwrap();
        let Recording::Changed { after, event } = deleted.record_verdict(&Verdict::Available { sha256: "cd".repeat(32) }, start()) else {
            panic!("the verdict is recorded");
        };
        assert_eq!((after.status, after.status_before_delete, event), (DocumentStatus::Deleted, Some(DocumentStatus::Available), None));
        let restored = after.restore(start() + Duration::days(1), &Settings::default()).unwrap();
        assert_eq!((restored.status, restored.purge_due), (DocumentStatus::Available, None));
    }

    #[test]
    fn deletion_is_restorable_within_the_window_only_and_only_once_deleted() {
        let settings = Settings::default();
        let doc = available(Purpose::Identity);
        assert_eq!(doc.restore(start(), &settings).unwrap_err(), RestoreError::NotDeleted);
        let deleted = doc.delete(start(), settings.restore_window).unwrap();
        assert_eq!(deleted.delete(start(), settings.restore_window), None, "deleting twice changes nothing");
        assert_eq!(deleted.purge_due, Some(start() + Duration::days(30)));
        assert_eq!(deleted.restore(start() + Duration::days(30) + Duration::seconds(1), &settings).unwrap_err(), RestoreError::Gone);
        let pending_restored = pending(Purpose::Identity).delete(start(), settings.restore_window).unwrap().restore(start(), &settings).unwrap();
        assert_eq!(pending_restored.purge_due, Some(start() + Duration::days(1)), "a pending upload gets its purge day back");
    }

    #[test]
    fn shares_are_for_available_documents_and_live_as_long_as_asked_within_seven_days() {
        let week = std::time::Duration::from_secs(7 * 24 * 60 * 60);
        for refused in [None, Some(0), Some(604_801), Some(-5)] {
            assert_eq!(share_lifetime(refused, week), Err(ShareError::LifetimeOutOfRange { max_seconds: 604_800 }), "{refused:?}");
        }
        let lifetime = share_lifetime(Some(60), week).unwrap();
        assert_eq!(Share::issue(&pending(Purpose::Vault), "S".into(), "h".into(), lifetime, start()).unwrap_err(), ShareError::NotAvailable);
        let doc = available(Purpose::Vault);
        let (share, pointer) = Share::issue(&doc, "S".into(), "h".into(), lifetime, start()).unwrap();
        assert!(share.opens(&doc, start() + Duration::seconds(59)) && pointer.is_live(start() + Duration::seconds(59)));
        assert!(!share.opens(&doc, start() + Duration::seconds(60)) && !pointer.is_live(start() + Duration::seconds(60)));
        assert!(!share.opens(&doc.delete(start(), Duration::days(30)).unwrap(), start()));
    }

    #[test]
    fn the_purge_waits_for_the_grace_and_drops_entries_of_documents_that_moved_on() {
        let doc = pending(Purpose::Identity);
        let due = doc.purge_due.unwrap();
        let key = store::purge_key(&doc.document_id, due);
        let entry = (key.0.as_str(), key.1.as_str());
        assert_eq!(purge_step(Some(&doc), entry, due), PurgeStep::NotYetDue);
        assert_eq!(purge_step(Some(&doc), entry, due + PURGE_GRACE), PurgeStep::ResolvePending);
        assert_eq!(purge_step(None, entry, due + PURGE_GRACE), PurgeStep::Stale);
        assert_eq!(purge_step(Some(&available(Purpose::Identity)), entry, due + PURGE_GRACE), PurgeStep::Stale);
        let deleted = available(Purpose::Identity).delete(start(), Duration::days(30)).unwrap();
        let key = store::purge_key(&deleted.document_id, deleted.purge_due.unwrap());
        assert_eq!(purge_step(Some(&deleted), (key.0.as_str(), key.1.as_str()), start() + Duration::days(31)), PurgeStep::RemoveDeleted);
        assert_eq!(purge_step(Some(&deleted), entry, start() + Duration::days(31)), PurgeStep::Stale, "an entry of another day");
    }
}

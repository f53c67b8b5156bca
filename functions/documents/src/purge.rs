//! The scheduled purge: removes documents deleted longer ago than the restore window (object
//! first, then the records) and uploads that never arrived within a day.
//!
//! Documents due for purge are indexed by due day (`DOCPURGE#<day>#<shard>`, see `store`), so
//! a run reads only the days from the watermark — the first day not yet fully swept — up to
//! today, and advances the watermark past every finished day without failures. Missed runs
//! therefore lose nothing, and a run takes `now` as a parameter so tests can travel in time.
//!
//! A pending upload whose object did arrive (its notification was lost) is verified instead of
//! purged. Objects go before records, so a crash in between leaves a record the next run purges
//! again, never an object without a record.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

use shared::persist::{self, Attempt};
use shared::ports::{Condition, KvError, Query};

use crate::DocumentsState;
use crate::domain::{self, PurgeStep};
use crate::errors::JobError;
use crate::store::{self, DocumentStatus, PurgeEntry, Watermark};
use crate::uploads::UploadHandler;

/// Where the first run starts when no watermark exists yet.
const FIRST_RUN_LOOKBACK_DAYS: u64 = 60;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub days_swept: u32,
    /// Deleted documents removed for good.
    pub purged_deleted: u32,
    /// Pending uploads removed because nothing arrived.
    pub purged_abandoned: u32,
    /// Pending uploads whose object had arrived unnoticed, verified now.
    pub verified_late: u32,
    /// Entries whose document had moved on (restored, verified) and were dropped.
    pub stale_entries: u32,
    /// Entries that failed this time and stay for the next run.
    pub failed: u32,
    /// Entries in a swept partition that are not due yet (later today, or within the grace).
    pub not_yet_due: u32,
}

pub struct Purger {
    state: Arc<DocumentsState>,
    uploads: UploadHandler,
}

impl Purger {
    pub fn new(state: Arc<DocumentsState>) -> Self {
        Self { uploads: UploadHandler::new(state.clone()), state }
    }

    /// Sweeps every day from the watermark to `now`'s day.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<PurgeReport, KvError> {
        let kv = self.state.kv.as_ref();
        let today = now.date_naive();
        let watermark = persist::get::<Watermark>(kv, store::WATERMARK_KEY.0, store::WATERMARK_KEY.1).await?;
        let mut day = watermark.as_ref().map_or_else(|| today - Days::new(FIRST_RUN_LOOKBACK_DAYS), |w| w.value.next_day);
        let mut report = PurgeReport::default();
        let mut clean_until = None;
        let mut all_clean = true;
        while day <= today {
            let left_before = report.failed + report.not_yet_due;
            for shard in 0..store::PURGE_SHARDS {
                self.sweep_partition(day, shard, now, &mut report).await?;
            }
            report.days_swept += 1;
            all_clean &= report.failed + report.not_yet_due == left_before;
            // Only whole past days without failures are behind the watermark.
            if all_clean && day < today {
                clean_until = Some(day);
            }
            day = day + Days::new(1);
        }
        if let Some(last_clean) = clean_until {
            let next = Watermark { next_day: last_clean + Days::new(1) };
            let op = persist::put_op(store::WATERMARK_KEY.0, store::WATERMARK_KEY.1, &next, persist::condition_for(watermark.as_ref()), None)?;
            if let Err(error) = kv.transact(vec![op]).await {
                // Another run moved it; the next run starts from wherever it is.
                tracing::warn!(%error, "purge watermark not advanced");
            }
        }
        tracing::info!(?report, "purge finished");
        Ok(report)
    }

    async fn sweep_partition(&self, day: NaiveDate, shard: u8, now: DateTime<Utc>, report: &mut PurgeReport) -> Result<(), KvError> {
        let pk = store::purge_pk(day, shard);
        let mut cursor = None;
        loop {
            let page = self.state.kv.query(Query::partition(pk.clone()).limit(100).after(cursor)).await?;
            for item in &page.items {
                let entry: PurgeEntry = item.parse()?;
                if let Err(error) = self.purge_entry(&pk, &item.sk, &entry, now, report).await {
                    tracing::warn!(document_id = %entry.document_id, %error, "purge of a document failed; it stays for the next run");
                    report.failed += 1;
                }
            }
            match page.last_key {
                Some(key) => cursor = Some(key),
                None => return Ok(()),
            }
        }
    }

    async fn purge_entry(&self, pk: &str, sk: &str, entry: &PurgeEntry, now: DateTime<Utc>, report: &mut PurgeReport) -> Result<(), JobError> {
        let kv = self.state.kv.as_ref();
        let doc = store::load_document(kv, &entry.owner_user_id, &entry.document_id).await?;
        let step = domain::purge_step(doc.as_ref().map(|d| &d.value), (pk, sk), now);
        let doc = match (step, doc) {
            (PurgeStep::NotYetDue, _) => {
                report.not_yet_due += 1;
                return Ok(());
            }
            (PurgeStep::RemoveDeleted | PurgeStep::ResolvePending, Some(doc)) => doc,
            (PurgeStep::Stale | PurgeStep::RemoveDeleted | PurgeStep::ResolvePending, _) => {
                kv.delete(pk, sk, Condition::None).await?;
                report.stale_entries += 1;
                return Ok(());
            }
        };
        if step == PurgeStep::ResolvePending && self.state.objects.head(&doc.value.object_key).await?.is_some() {
            tracing::info!(document_id = %entry.document_id, "pending upload had arrived unnoticed; verifying it now");
            self.uploads.process_object(&doc.value.object_key).await?;
            report.verified_late += 1;
            return Ok(());
        }
        // Object first: a crash after it leaves a record that the next run purges again.
        self.state.objects.delete(&doc.value.object_key).await?;
        let usage = if doc.value.charged_bytes > 0 { store::load_usage(kv, &entry.owner_user_id).await? } else { None };
        if let Attempt::Conflict = self.state.commit_round(store::removal_ops(&doc, usage.as_ref())?, &[], ()).await? {
            return Err(JobError::Changed);
        }
        tracing::info!(document_id = %entry.document_id, status = doc.value.status.as_str(), "document purged");
        if doc.value.status == DocumentStatus::Deleted {
            report.purged_deleted += 1;
        } else {
            report.purged_abandoned += 1;
        }
        Ok(())
    }
}

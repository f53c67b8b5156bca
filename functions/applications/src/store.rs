//! What the applications function keeps in the key-value store, and how it is keyed.
//!
//! | pk                                  | sk            | item                                           |
//! |-------------------------------------|---------------|------------------------------------------------|
//! | `APP#<application_id>`              | `APP`         | [`Application`] (the record of truth; its store version is the API `version`) |
//! | `USER#<user_id>`                    | `APP#<id>`    | a copy of the application, for the citizen's list (newest first by ULID) |
//! | `AGENCY#<agency_id>`                | `<updated_at ms, 13 digits>#<id>` | a copy of a submitted application, for the agency's list (oldest change first) |
//! | `APP#<application_id>`              | `MSG#<ulid>`  | [`Message`] of the thread with the agency      |
//! | `NUMBER#<number>`                   | `NUMBER`      | [`NumberIndex`]: the application a number names (webhooks by number) |
//! | `COUNTER#application-number#<year>` | `COUNTER`     | empty; its store version is the year's last issued number |
//!
//! Every write of an application puts the record with `VersionIs(read version)` and the copies in
//! the same transaction ([`save_ops`], the one save path), so they never disagree and two
//! concurrent writers never both win. The agency's copy moves to its new `updated_at` on every
//! write (the record remembers where it is in `listed_at`); drafts are never listed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use shared::persist::{self, put_op};
use shared::ports::{Condition, Item, KeyValue, KvError, Query, TxOp};
use shared::records::DocumentRef;

use crate::domain::{Application, Message};

pub const APP_SK: &str = "APP";

pub fn app_pk(application_id: &str) -> String {
    shared::records::application_key(application_id).0
}

pub fn user_copy_key(user_id: &str, application_id: &str) -> (String, String) {
    (shared::identity::user_pk(user_id), format!("APP#{application_id}"))
}

pub fn number_key(number: &str) -> (String, String) {
    (format!("NUMBER#{number}"), "NUMBER".to_owned())
}

pub fn agency_pk(agency_id: &str) -> String {
    format!("AGENCY#{agency_id}")
}

/// Sorts by time of the last change, then id: the agency's list read in key order is oldest
/// change first.
pub fn agency_sk(updated_at: DateTime<Utc>, application_id: &str) -> String {
    format!("{}#{application_id}", agency_time_key(updated_at))
}

/// The 13-digit millisecond prefix of the agency's index keys at `at`.
pub fn agency_time_key(at: DateTime<Utc>) -> String {
    format!("{:013}", at.timestamp_millis().clamp(0, 9_999_999_999_999))
}

/// A cursor of the agency's list is one of its sort keys: 13 digits, `#`, an id.
pub fn is_agency_cursor(value: &str) -> bool {
    value.split_once('#').is_some_and(|(ms, id)| ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()) && is_id(id))
}

/// Ids this function issues are ULIDs; anything else names nothing.
pub fn is_id(value: &str) -> bool {
    value.len() == 26 && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Reads the record of truth; `version` is the store's.
pub async fn load(kv: &dyn KeyValue, application_id: &str) -> Result<Option<Application>, KvError> {
    if !is_id(application_id) {
        return Ok(None);
    }
    Ok(persist::get::<Application>(kv, &app_pk(application_id), APP_SK).await?.map(|read| Application { version: read.version, ..read.value }))
}

/// The ops that write `app` as its next version: the record (only if it is still at
/// `app.version`, or absent for a new one), the citizen's copy and, once the agency can see it,
/// the agency's copy under its new `updated_at` (the old one removed). Bumps `app.version`.
pub fn save_ops(app: &mut Application) -> Result<Vec<TxOp>, KvError> {
    let condition = if app.version == 0 { Condition::NotExists } else { Condition::VersionIs(app.version) };
    app.version += 1;
    let mut ops = Vec::with_capacity(4);
    let listed_before = app.listed_at.take();
    if app.status.visible_to_agency() {
        app.listed_at = Some(app.updated_at);
    }
    if let Some(before) = listed_before.filter(|before| Some(*before) != app.listed_at) {
        ops.push(TxOp::Delete { pk: agency_pk(&app.agency_id), sk: agency_sk(before, &app.application_id), condition: Condition::None });
    }
    if let Some(at) = app.listed_at {
        ops.push(put_op(agency_pk(&app.agency_id), agency_sk(at, &app.application_id), app, Condition::None, None)?);
    }
    let (copy_pk, copy_sk) = user_copy_key(&app.user_id, &app.application_id);
    ops.push(put_op(app_pk(&app.application_id), APP_SK, app, condition, None)?);
    ops.push(put_op(copy_pk, copy_sk, app, Condition::None, None)?);
    Ok(ops)
}

/// The citizen's documents `ids` names, in order (`None` where there is none).
pub async fn documents(kv: &dyn KeyValue, user_id: &str, ids: &[String]) -> Result<Vec<Option<DocumentRef>>, KvError> {
    futures::future::try_join_all(ids.iter().map(|id| shared::records::load_document(kv, user_id, id))).await
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NumberIndex {
    pub application_id: String,
}

pub fn number_index_op(number: &str, application_id: &str) -> Result<TxOp, KvError> {
    let (pk, sk) = number_key(number);
    put_op(pk, sk, &NumberIndex { application_id: application_id.to_owned() }, Condition::NotExists, None)
}

pub async fn find_by_number(kv: &dyn KeyValue, number: &str) -> Result<Option<Application>, KvError> {
    if number.is_empty() || number.len() > 32 || !number.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Ok(None);
    }
    let (pk, sk) = number_key(number);
    let Some(index) = persist::get::<NumberIndex>(kv, &pk, &sk).await? else {
        return Ok(None);
    };
    load(kv, &index.value.application_id).await
}

/// A new human-readable number, `YYYY-NNNNNNN`: the year's counter is bumped by one
/// unconditional put whose store-managed version is the sequence, so concurrent processes
/// never draw the same number. A number drawn for a write that then fails is skipped, so a
/// caller draws once per submission, never once per retried round.
pub async fn next_number(kv: &dyn KeyValue, now: DateTime<Utc>) -> Result<String, KvError> {
    let year = now.format("%Y").to_string();
    let counter = Item::new(format!("COUNTER#application-number#{year}"), "COUNTER", Vec::new());
    let sequence = kv.put(counter, Condition::None).await?;
    Ok(format_number(&year, sequence))
}

pub fn format_number(year: &str, sequence: u64) -> String {
    format!("{year}-{sequence:07}")
}

pub fn message_op(application_id: &str, message: &Message) -> Result<TxOp, KvError> {
    put_op(app_pk(application_id), format!("MSG#{}", message.message_id), message, Condition::NotExists, None)
}

/// One page of the thread, oldest first; the cursor is a message id.
pub async fn messages(kv: &dyn KeyValue, application_id: &str, cursor: Option<&str>, limit: usize) -> Result<(Vec<Message>, Option<String>), KvError> {
    let query = Query::partition(app_pk(application_id)).prefix("MSG#").limit(limit).after(cursor.map(|c| format!("MSG#{c}")));
    let page = kv.query(query).await?;
    let messages = page.items.iter().map(Item::parse).collect::<Result<Vec<Message>, _>>()?;
    let next = page.last_key.and_then(|_| messages.last().map(|m| m.message_id.clone()));
    Ok((messages, next))
}

/// One page of the citizen's applications, newest first, filtered; the cursor is an id.
pub async fn list_for_user(
    kv: &dyn KeyValue,
    user_id: &str,
    filter: impl Fn(&Application) -> bool,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<Application>, Option<String>), KvError> {
    let (pk, _) = user_copy_key(user_id, "");
    let query = Query::partition(pk).prefix("APP#").descending().limit(100).after(cursor.map(|c| format!("APP#{c}")));
    let (found, more) = persist::filtered_page(kv, query, limit, filter).await?;
    let next = more.then(|| found.last().map(|(_, a): &(String, Application)| a.application_id.clone())).flatten();
    Ok((found.into_iter().map(|(_, app)| app).collect(), next))
}

/// One page of an agency's applications, oldest change first, from the first change at or after
/// `since` (or after `cursor`, a sort key this returned), filtered; the cursor is a sort key.
pub async fn list_for_agency(
    kv: &dyn KeyValue,
    agency_id: &str,
    filter: impl Fn(&Application) -> bool,
    since: Option<DateTime<Utc>>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<Application>, Option<String>), KvError> {
    // A bare time key sorts before every entry of that millisecond, so `since` is inclusive.
    let start = [since.map(agency_time_key), cursor.map(str::to_owned)].into_iter().flatten().max();
    let (found, more) = persist::filtered_page(kv, Query::partition(agency_pk(agency_id)).limit(100).after(start), limit, filter).await?;
    let next = more.then(|| found.last().map(|(sk, _)| sk.clone())).flatten();
    Ok((found.into_iter().map(|(_, app)| app).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_year_dash_seven_digits_and_grow_past_them() {
        assert_eq!(format_number("2026", 123), "2026-0000123");
        assert_eq!(format_number("2026", 1), "2026-0000001");
        assert_eq!(format_number("2027", 12_345_678), "2027-12345678");
    }

    #[tokio::test]
    async fn concurrent_number_draws_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let db = shared::adapters::embedded::open_database(&dir.path().join("kv.redb")).unwrap();
        let kv: std::sync::Arc<dyn KeyValue> = std::sync::Arc::new(shared::adapters::embedded::RedbKv::new(db).unwrap());
        let now = Utc::now();
        let draws = (0..40).map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move { next_number(kv.as_ref(), now).await.unwrap() })
        });
        let numbers: Vec<String> = futures::future::try_join_all(draws).await.unwrap();
        let unique: std::collections::HashSet<_> = numbers.iter().collect();
        assert_eq!(unique.len(), 40, "{numbers:?}");
        let year = now.format("%Y").to_string();
        assert!(numbers.iter().all(|n| n.starts_with(&format!("{year}-")) && n.len() == 12));
        assert!(numbers.contains(&format_number(&year, 1)) && numbers.contains(&format_number(&year, 40)));
    }

    #[test]
    fn ids_are_ulids_only() {
        assert!(is_id(&ulid::Ulid::new().to_string()));
        assert!(!is_id("../../etc"));
        assert!(!is_id(""));
        assert!(!is_id("01HZZZZZZZZZZZZZZZZZZZZZZZZ"));
    }
}

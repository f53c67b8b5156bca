//! What the applications function keeps in the key-value store, and how it is keyed.
//!
//! | pk                                  | sk            | item                                           |
//! |-------------------------------------|---------------|------------------------------------------------|
//! | `APP#<application_id>`              | `APP`         | [`Application`] (the record of truth; its store version is the API `version`) |
//! | `USER#<user_id>`                    | `APP#<id>`    | a copy of the application, for the citizen's list (newest first by ULID) |
//! | `APP#<application_id>`              | `MSG#<ulid>`  | [`Message`] of the thread with the agency      |
//! | `NUMBER#<number>`                   | `NUMBER`      | [`NumberIndex`]: the application a number names (webhooks by number) |
//! | `COUNTER#application-number#<year>` | `COUNTER`     | empty; its store version is the year's last issued number |
//!
//! Every write of an application puts the record with `VersionIs(read version)` and the copy in
//! the same transaction, so the two never disagree and two concurrent writers never both win.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use shared::ports::{Condition, Item, KeyValue, KvError, Query, TxOp};

use crate::status::{ActorKind, ApplicationStatus};

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

/// Ids this function issues are ULIDs; anything else names nothing.
pub fn is_id(value: &str) -> bool {
    value.len() == 26 && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub application_id: String,
    pub user_id: String,
    pub service_code: String,
    pub agency_id: String,
    pub status: ApplicationStatus,
    pub number: Option<String>,
    pub form: Value,
    pub document_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub expected_completion_date: Option<NaiveDate>,
    pub rejection: Option<Rejection>,
    pub result_document_ids: Vec<String>,
    pub history: Vec<HistoryEntry>,
    /// The store version of the record after the write that produced this state.
    pub version: u64,
}

/// An agency's refusal (SPEC §4.2: `rejected` requires a reason).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationRejection)]
pub struct Rejection {
    pub reason: String,
    /// What the citizen can do about it.
    #[schema(required = true)]
    pub recommendations: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: ApplicationStatus,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Who did something to an application: the citizen, an agency (with its employee's name and
/// position when given) or the system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationActor)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: ActorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

impl Actor {
    pub fn citizen() -> Self {
        Self { kind: ActorKind::Citizen, name: None, position: None }
    }
}

impl Application {
    pub fn new_draft(user_id: &str, service: &crate::catalogue::Service, form: Value, document_ids: Vec<String>, now: DateTime<Utc>) -> Self {
        Self {
            application_id: ulid::Ulid::new().to_string(),
            user_id: user_id.to_owned(),
            service_code: service.code.clone(),
            agency_id: service.agency_id.clone(),
            status: ApplicationStatus::Draft,
            number: None,
            form,
            document_ids,
            created_at: now,
            submitted_at: None,
            updated_at: now,
            expected_completion_date: None,
            rejection: None,
            result_document_ids: Vec::new(),
            history: vec![HistoryEntry { status: ApplicationStatus::Draft, at: now, actor: Actor::citizen(), comment: None }],
            version: 0,
        }
    }

    /// Moves to `status`, recording who did it and why.
    pub fn record_transition(&mut self, status: ApplicationStatus, actor: Actor, comment: Option<String>, now: DateTime<Utc>) {
        self.status = status;
        self.history.push(HistoryEntry { status, at: now, actor, comment });
    }

    /// The API body (SPEC §4.3); the owner's id stays inside.
    pub fn body(&self) -> ApplicationBody {
        let history = self
            .history
            .iter()
            .map(|h| HistoryBody { status: h.status, status_title: h.status.title(), at: h.at, actor: h.actor.clone(), comment: h.comment.clone() })
            .collect();
        ApplicationBody {
            application_id: self.application_id.clone(),
            number: self.number.clone(),
            service_code: self.service_code.clone(),
            agency_id: self.agency_id.clone(),
            status: self.status,
            status_title: self.status.title(),
            form: self.form.clone(),
            document_ids: self.document_ids.clone(),
            created_at: self.created_at,
            submitted_at: self.submitted_at,
            updated_at: self.updated_at,
            expected_completion_date: self.expected_completion_date,
            rejection: self.rejection.clone(),
            result_document_ids: self.result_document_ids.clone(),
            history,
            version: self.version,
        }
    }
}

/// An application as its citizen sees it (SPEC §4.3).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Application)]
pub struct ApplicationBody {
    #[schema(max_length = 26, example = "01JD3Q0Z8X4ZK6V5W7Y9A1B2C3")]
    pub application_id: String,
    /// Human-readable unique number (`YYYY-NNNNNNN`), given on submission.
    #[schema(required = true, example = "2026-0000123")]
    pub number: Option<String>,
    /// The catalogue service applied for.
    pub service_code: String,
    /// The agency that handles the service.
    pub agency_id: String,
    pub status: ApplicationStatus,
    /// The status in Russian, as citizens see it («Черновик», «Отправлено»…).
    pub status_title: &'static str,
    /// The form; checked against the service's `form_schema` on submission.
    #[schema(value_type = Object)]
    pub form: Value,
    /// Attached documents (ids from the documents function).
    pub document_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Set on submission from the service's processing days; the agency may move it.
    #[schema(required = true)]
    pub expected_completion_date: Option<NaiveDate>,
    /// Why the agency refused, when `status` is `rejected`.
    #[schema(required = true)]
    pub rejection: Option<Rejection>,
    /// Documents the agency issued as the result.
    pub result_document_ids: Vec<String>,
    /// Every status the application has had, oldest first.
    pub history: Vec<HistoryBody>,
    /// Bumped by every write; send it back as `If-Match: "<version>"`.
    pub version: u64,
}

/// One step of an application's history.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ApplicationHistoryEntry)]
pub struct HistoryBody {
    pub status: ApplicationStatus,
    /// The status in Russian.
    pub status_title: &'static str,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// The actor's comment or reason, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Reads the record of truth; `version` is the store's.
pub async fn load(kv: &dyn KeyValue, application_id: &str) -> Result<Option<Application>, KvError> {
    if !is_id(application_id) {
        return Ok(None);
    }
    let Some(item) = kv.get(&app_pk(application_id), APP_SK).await? else {
        return Ok(None);
    };
    let mut app: Application = item.parse()?;
    app.version = item.version;
    Ok(Some(app))
}

/// The ops that write `app` as its next version: the record (only if it is still at
/// `app.version`, or absent for a new one) and the citizen's copy. Bumps `app.version`.
pub fn save_ops(app: &mut Application) -> Result<Vec<TxOp>, KvError> {
    let condition = if app.version == 0 { Condition::NotExists } else { Condition::VersionIs(app.version) };
    app.version += 1;
    let (copy_pk, copy_sk) = user_copy_key(&app.user_id, &app.application_id);
    Ok(vec![
        TxOp::Put { item: Item::json(app_pk(&app.application_id), APP_SK, app)?, condition },
        TxOp::Put { item: Item::json(copy_pk, copy_sk, app)?, condition: Condition::None },
    ])
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NumberIndex {
    pub application_id: String,
}

pub fn number_index_op(number: &str, application_id: &str) -> Result<TxOp, KvError> {
    let (pk, sk) = number_key(number);
    Ok(TxOp::Put { item: Item::json(pk, sk, &NumberIndex { application_id: application_id.to_owned() })?, condition: Condition::NotExists })
}

pub async fn find_by_number(kv: &dyn KeyValue, number: &str) -> Result<Option<Application>, KvError> {
    if number.is_empty() || number.len() > 32 || !number.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Ok(None);
    }
    let (pk, sk) = number_key(number);
    let Some(index) = kv.get(&pk, &sk).await? else {
        return Ok(None);
    };
    load(kv, &index.parse::<NumberIndex>()?.application_id).await
}

/// A new human-readable number, `YYYY-NNNNNNN`: the year's counter is bumped by one
/// unconditional put whose store-managed version is the sequence, so concurrent processes
/// never draw the same number. A number drawn by an attempt that then fails is skipped.
pub async fn next_number(kv: &dyn KeyValue, now: DateTime<Utc>) -> Result<String, KvError> {
    let year = now.format("%Y").to_string();
    let counter = Item::new(format!("COUNTER#application-number#{year}"), "COUNTER", Vec::new());
    let sequence = kv.put(counter, Condition::None).await?;
    Ok(format_number(&year, sequence))
}

pub fn format_number(year: &str, sequence: u64) -> String {
    format!("{year}-{sequence:07}")
}

/// A message of the thread between the citizen and the agency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationMessage)]
pub struct Message {
    pub message_id: String,
    pub author: Actor,
    /// 1–4,000 characters.
    #[schema(max_length = 4000)]
    pub text: String,
    pub at: DateTime<Utc>,
}

pub fn message_op(application_id: &str, message: &Message) -> Result<TxOp, KvError> {
    let item = Item::json(app_pk(application_id), format!("MSG#{}", message.message_id), message)?;
    Ok(TxOp::Put { item, condition: Condition::NotExists })
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
    let mut start = cursor.map(|c| format!("APP#{c}"));
    let mut found = Vec::with_capacity(limit);
    loop {
        // Filters run here, as a DynamoDB FilterExpression would; pages stay bounded.
        let page = kv.query(Query::partition(pk.clone()).prefix("APP#").descending().limit(100).after(start.take())).await?;
        let count = page.items.len();
        for (index, item) in page.items.iter().enumerate() {
            let app: Application = item.parse()?;
            if filter(&app) {
                found.push(app);
                if found.len() == limit {
                    let more = index + 1 < count || page.last_key.is_some();
                    let next = more.then(|| found.last().map(|a| a.application_id.clone())).flatten();
                    return Ok((found, next));
                }
            }
        }
        match page.last_key {
            Some(key) => start = Some(key),
            None => return Ok((found, None)),
        }
    }
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

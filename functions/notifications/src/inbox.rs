//! The citizen's inbox (`GET /v1/me/notifications`): one entry per event, read or unread.
//!
//! Each entry lives twice in the citizen's partition `USER#<user_id>`: at `INBOX#<id>` (every
//! entry) and, while unread, a copy at `INBOX_UNREAD#<id>`, so both lists are a plain ordered
//! query. The two are written, and the copy removed on read, in one transaction.
//!
//! The id is a ULID derived from the event (its time, plus a hash of its id), so entries sort
//! newest first by id, and a redelivered event maps to the same keys: the `NotExists` write
//! finds the entry and changes nothing, even after the citizen has read it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::events::Event;
use shared::identity::user_pk;
use shared::persist::{self, Attempt};
use shared::ports::kv::{Condition, KeyValue, KvError, Query, TxOp};

use crate::domain::preferences::Category;
use crate::error::{Error, settled};
use crate::templates::InboxMessage;

const ENTRY_PREFIX: &str = "INBOX#";
const UNREAD_PREFIX: &str = "INBOX_UNREAD#";

/// An inbox entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    pub category: Category,
    pub title: String,
    pub body: String,
    pub at: DateTime<Utc>,
    pub read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The stored entry: what the API shows, and which event produced it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    notification: Notification,
    event_id: String,
    event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read_at: Option<DateTime<Utc>>,
}

/// What writing an event's entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    /// The event was delivered before; nothing changed.
    AlreadyThere,
}

/// One page of a list, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = NotificationPage)]
pub struct Page {
    pub items: Vec<Notification>,
    pub next_cursor: Option<String>,
}

/// The inbox id of `event`: a ULID with the event's time and 80 bits of a hash of its id.
pub fn notification_id(event: &Event) -> String {
    let millis = u64::try_from(event.at.timestamp_millis()).unwrap_or(0).min((1 << 48) - 1);
    let digest = Sha256::digest(event.id.as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    ulid::Ulid::from_parts(millis, u128::from_be_bytes(random)).to_string()
}

/// Whether `id` can be an inbox id (a canonical ULID); anything else is simply not found.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 26 && ulid::Ulid::from_string(id).is_ok_and(|ulid| ulid.to_string() == id)
}

/// Writes `event`'s entry into `user_id`'s inbox, unread, unless it is there already.
pub async fn deliver(kv: &dyn KeyValue, user_id: &str, event: &Event, category: Category, message: &InboxMessage) -> Result<Written, KvError> {
    let notification = Notification {
        id: notification_id(event),
        category,
        title: message.title.clone(),
        body: message.body.clone(),
        at: event.at,
        read: false,
        link: message.link.clone(),
    };
    let stored = Stored { notification, event_id: event.id.clone(), event_type: event.type_name().to_owned(), read_at: None };
    let pk = user_pk(user_id);
    let id = &stored.notification.id;
    let ops = vec![
        persist::put_op(pk.clone(), format!("{ENTRY_PREFIX}{id}"), &stored, Condition::NotExists, None)?,
        persist::put_op(pk.clone(), format!("{UNREAD_PREFIX}{id}"), &stored, Condition::NotExists, None)?,
    ];
    match kv.transact(ops).await {
        Ok(()) => Ok(Written::Created),
        // Either key existing means this event was written before (and maybe read since).
        Err(error) if persist::is_conflict(&error) => match kv.get(&pk, &format!("{ENTRY_PREFIX}{id}")).await? {
            Some(_) => Ok(Written::AlreadyThere),
            None => Err(KvError::Backend("inbox write conflicted but the entry is absent".to_owned())),
        },
        Err(error) => Err(error),
    }
}

/// A page of `user_id`'s inbox, newest first, starting after the entry `cursor` names.
pub async fn list(kv: &dyn KeyValue, user_id: &str, unread_only: bool, cursor: Option<&str>, limit: usize) -> Result<Page, KvError> {
    let prefix = if unread_only { UNREAD_PREFIX } else { ENTRY_PREFIX };
    // One extra item tells whether another page exists, so the last page has no cursor.
    let query = Query::partition(user_pk(user_id)).prefix(prefix).descending().limit(limit + 1).after(cursor.map(|id| format!("{prefix}{id}")));
    let page = kv.query(query).await?;
    let mut items = page.items.iter().map(|item| item.parse::<Stored>().map(|stored| stored.notification)).collect::<Result<Vec<_>, _>>()?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more { items.last().map(|last| last.id.clone()) } else { None };
    Ok(Page { items, next_cursor })
}

/// Marks an entry read at `now`; `false` when `user_id` has no entry with this id (another
/// citizen's ids included). Marking a read entry again changes nothing.
pub async fn mark_read(kv: &dyn KeyValue, user_id: &str, id: &str, now: DateTime<Utc>) -> Result<bool, Error> {
    if !is_valid_id(id) {
        return Ok(false);
    }
    let pk = user_pk(user_id);
    let entry_sk = format!("{ENTRY_PREFIX}{id}");
    persist::retry(|| async {
        let Some(read) = persist::get::<Stored>(kv, &pk, &entry_sk).await? else { return Ok(Attempt::Done(false)) };
        if read.value.notification.read {
            return Ok(Attempt::Done(true));
        }
        let mut stored = read.value.clone();
        stored.notification.read = true;
        stored.read_at = Some(now);
        let ops = vec![
            persist::put_op(pk.clone(), entry_sk.clone(), &stored, read.unchanged(), None)?,
            TxOp::Delete { pk: pk.clone(), sk: format!("{UNREAD_PREFIX}{id}"), condition: Condition::None },
        ];
        Ok(settled(kv.transact(ops).await, true)?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use shared::events::EventPayload;

    use super::*;

    fn event_at(id: &str, millis: i64) -> Event {
        Event {
            id: id.to_owned(),
            at: Utc.timestamp_millis_opt(millis).single().unwrap(),
            user_id: Some("01JUSER".to_owned()),
            payload: EventPayload::PasswordChanged { destinations: vec![] },
        }
    }

    #[test]
    fn an_event_always_maps_to_the_same_valid_id() {
        let event = event_at("01JEVENT", 1_767_225_540_000);
        assert_eq!(notification_id(&event), notification_id(&event.clone()));
        assert!(is_valid_id(&notification_id(&event)));
        assert_ne!(notification_id(&event), notification_id(&event_at("01JOTHER", 1_767_225_540_000)));
    }

    #[test]
    fn ids_sort_by_event_time() {
        let earlier = notification_id(&event_at("zzzz", 1_000));
        let later = notification_id(&event_at("aaaa", 2_000));
        assert!(earlier < later);
    }

    #[test]
    fn only_canonical_ulids_are_ids() {
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("../INBOX#x"));
        assert!(!is_valid_id(&notification_id(&event_at("e", 5)).to_lowercase()));
        assert!(!is_valid_id("ZZZZZZZZZZZZZZZZZZZZZZZZZZ"));
    }
}

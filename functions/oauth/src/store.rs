//! Key layout of the oauth function's records.
//!
//! - `OAUTH#LOCK#<client_id>` / `LOCK`: present (until its `expires_at`) while a client id is
//!   refused for too many failed authentications; its secret is not even checked meanwhile.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shared::ports::{Condition, Item, KeyValue};

fn lock_key(client_id: &str) -> (String, String) {
    (format!("OAUTH#LOCK#{client_id}"), "LOCK".to_owned())
}

/// Seconds left of a client id's lock, if it is locked.
pub async fn locked_for(kv: &Arc<dyn KeyValue>, client_id: &str, now: DateTime<Utc>) -> Result<Option<u64>, shared::ports::KvError> {
    let (pk, sk) = lock_key(client_id);
    Ok(kv.get(&pk, &sk).await?.and_then(|item| item.expires_at).map(|until| (until - now.timestamp()).max(1) as u64))
}

/// Locks a client id for `seconds`.
pub async fn lock(kv: &Arc<dyn KeyValue>, client_id: &str, now: DateTime<Utc>, seconds: u64) -> Result<(), shared::ports::KvError> {
    let (pk, sk) = lock_key(client_id);
    kv.put(Item::new(pk, sk, Vec::new()).expiring_at(now.timestamp() + seconds as i64), Condition::None).await.map(|_| ())
}

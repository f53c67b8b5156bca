//! The citizen's notification settings in the store: `USER#<user_id>` / `NOTIFICATION_SETTINGS`,
//! written only once the citizen changes something; until then the defaults apply. What the
//! settings mean and allow is decided in [`crate::domain::preferences`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::identity::user_pk;
use shared::persist;
use shared::ports::kv::{Condition, Item, KeyValue, KvError};

pub use crate::domain::preferences::{Categories, Category, Channel, ChannelSet, Preferences, SettingsError};
use crate::error::{Error, settled};

/// Sort key of the settings item in the citizen's partition.
pub const SETTINGS_SK: &str = "NOTIFICATION_SETTINGS";

/// The stored item: the matrix and when it last changed.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    preferences: Preferences,
    updated_at: DateTime<Utc>,
}

/// The citizen's settings, or the defaults when they never changed any.
pub async fn load(kv: &dyn KeyValue, user_id: &str) -> Result<Preferences, KvError> {
    Ok(load_versioned(kv, user_id).await?.0)
}

/// Settings with the version of the stored item (`None`: nothing stored, defaults apply).
/// An unreadable item counts as the defaults, so it can never hold a security warning back;
/// the next `PUT` or `DELETE` replaces it.
pub async fn load_versioned(kv: &dyn KeyValue, user_id: &str) -> Result<(Preferences, Option<u64>), KvError> {
    let Some(item) = kv.get(&user_pk(user_id), SETTINGS_SK).await? else { return Ok((Preferences::default(), None)) };
    match item.parse::<Stored>() {
        Ok(stored) => Ok((stored.preferences.enforced(), Some(item.version))),
        Err(error) => {
            tracing::error!(%error, "stored notification settings are unreadable; the defaults apply");
            Ok((Preferences::default(), Some(item.version)))
        }
    }
}

/// Applies a `PUT` body to the stored settings (see [`Preferences::updated`]) and answers the
/// result. A lost race reads and judges the body again, under the one retry policy.
pub async fn update(kv: &dyn KeyValue, user_id: &str, body: &Value, now: DateTime<Utc>) -> Result<Preferences, Error> {
    persist::retry(|| async {
        let (current, version) = load_versioned(kv, user_id).await?;
        let next = current.updated(body)?;
        let item = Item::json(user_pk(user_id), SETTINGS_SK, &Stored { preferences: next.enforced(), updated_at: now })?;
        let condition = version.map_or(Condition::NotExists, Condition::VersionIs);
        Ok(settled(kv.put(item, condition).await.map(drop), next)?)
    })
    .await
}

/// Back to the defaults.
pub async fn reset(kv: &dyn KeyValue, user_id: &str) -> Result<Preferences, KvError> {
    kv.delete(&user_pk(user_id), SETTINGS_SK, Condition::None).await?;
    Ok(Preferences::default())
}

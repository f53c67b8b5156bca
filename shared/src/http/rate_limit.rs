//! Fixed-window rate limits kept in the key-value store, so every Lambda instance shares them.
//! One conditional-free write per check: the store-managed item version is the hit count.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::problem::ApiError;
use crate::ports::{Condition, Item, KeyValue};

#[derive(Clone)]
pub struct RateLimiter {
    kv: Arc<dyn KeyValue>,
}

#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

impl Limit {
    pub const fn per_minute(max: u64) -> Self {
        Self { max, window: Duration::from_secs(60) }
    }
    pub const fn per_hour(max: u64) -> Self {
        Self { max, window: Duration::from_secs(3600) }
    }
}

impl RateLimiter {
    pub fn new(kv: Arc<dyn KeyValue>) -> Self {
        Self { kv }
    }

    /// Counts one hit for `(scope, subject)` and fails with 429 past the limit.
    /// `subject` (an IP, a login) is hashed so the store holds no personal data.
    pub async fn hit(&self, scope: &str, subject: &str, limit: Limit) -> Result<(), ApiError> {
        let now = chrono::Utc::now().timestamp();
        let window = limit.window.as_secs().max(1) as i64;
        let window_start = now - now.rem_euclid(window);
        let item = Item::new(format!("RL#{scope}#{}", subject_hash(subject)), window_start.to_string(), Vec::new())
            .expiring_at(window_start + window + 60);
        let count = self.kv.put(item, Condition::None).await?;
        if count > limit.max {
            let retry_after = (window_start + window - now).max(1) as u64;
            return Err(ApiError::rate_limited(retry_after));
        }
        Ok(())
    }
}

fn subject_hash(subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

//! Fixed-window rate limits kept in the key-value store, so every Lambda instance shares them.
//! One conditional-free write per check: the store-managed item version is the hit count.
//!
//! [`WriteBudget`] is the per-citizen budget of a function's write endpoints (applications
//! today; document uploads may take one too): every write spends from a per-minute limit and
//! every write that creates something also from a per-hour one.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::problem::ApiError;
use crate::ports::{Clock, Condition, Item, KeyValue, SystemClock};

#[derive(Clone)]
pub struct RateLimiter {
    kv: Arc<dyn KeyValue>,
    clock: Arc<dyn Clock>,
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
        Self { kv, clock: Arc::new(SystemClock) }
    }

    /// The clock windows are measured by (tests fix it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Counts one hit for `(scope, subject)` and fails with 429 past the limit.
    /// `subject` (an IP, a login) is hashed so the store holds no personal data.
    pub async fn hit(&self, scope: &str, subject: &str, limit: Limit) -> Result<(), ApiError> {
        let now = self.clock.now().timestamp();
        let window = limit.window.as_secs().max(1) as i64;
        let window_start = now - now.rem_euclid(window);
        let item = Item::new(format!("RL#{scope}#{}", subject_hash(subject)), window_start.to_string(), Vec::new()).expiring_at(window_start + window + 60);
        let count = self.kv.put(item, Condition::None).await?;
        if count > limit.max {
            let retry_after = (window_start + window - now).max(1) as u64;
            return Err(ApiError::rate_limited(retry_after));
        }
        Ok(())
    }
}

/// A citizen's budget for one function's write endpoints; past it, 429 `rate_limited` with
/// `Retry-After` (SPEC §2). The scope keeps functions' budgets apart.
#[derive(Clone, Copy, Debug)]
pub struct WriteBudget {
    pub scope: &'static str,
    /// Every write: a person editing by hand stays far below it, a script does not.
    pub writes: Limit,
    /// Writes that create a new record (a draft, an upload): each one is stored for years.
    pub creations: Limit,
}

impl WriteBudget {
    /// Writes per citizen per minute unless a function says otherwise.
    pub const WRITES_PER_MINUTE: u64 = 30;

    pub const fn new(scope: &'static str, creations: Limit) -> Self {
        Self { scope, writes: Limit::per_minute(Self::WRITES_PER_MINUTE), creations }
    }

    pub const fn with_writes(self, writes: Limit) -> Self {
        Self { writes, ..self }
    }
}

impl RateLimiter {
    /// Spends one write of `user_id`'s budget.
    pub async fn write(&self, budget: &WriteBudget, user_id: &str) -> Result<(), ApiError> {
        self.hit(&format!("{}#write", budget.scope), user_id, budget.writes).await
    }

    /// Spends one write and one creation of `user_id`'s budget.
    pub async fn create(&self, budget: &WriteBudget, user_id: &str) -> Result<(), ApiError> {
        self.write(budget, user_id).await?;
        self.hit(&format!("{}#create", budget.scope), user_id, budget.creations).await
    }
}

fn subject_hash(subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{RedbKv, open_database};

    fn limiter() -> (tempfile::TempDir, RateLimiter) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open_database(&dir.path().join("data.redb")).expect("open redb");
        (dir, RateLimiter::new(Arc::new(RedbKv::new(db).expect("kv"))))
    }

    #[tokio::test]
    async fn a_write_budget_refuses_past_either_limit_per_citizen_and_scope() {
        let (_dir, limiter) = limiter();
        let budget = WriteBudget::new("things", Limit::per_hour(2)).with_writes(Limit::per_minute(3));
        limiter.create(&budget, "anna").await.expect("first creation");
        limiter.create(&budget, "anna").await.expect("second creation");
        let refused = limiter.create(&budget, "anna").await.expect_err("third creation in the hour");
        assert_eq!((refused.status.as_u16(), refused.code), (429, "rate_limited"));
        assert!(refused.retry_after_seconds.is_some_and(|s| (1..=3600).contains(&s)));
        // The refused creation spent the third write; the fourth write is over the minute's limit.
        assert_eq!(limiter.write(&budget, "anna").await.expect_err("fourth write").code, "rate_limited");
        limiter.write(&budget, "boris").await.expect("another citizen has his own budget");
        let other = WriteBudget::new("others", Limit::per_hour(2));
        limiter.create(&other, "anna").await.expect("another function's budget is separate");
    }
}

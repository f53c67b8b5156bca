//! Time and identifiers as ports: domain code asks `Clock::now` and `Ids::next`, never
//! `Utc::now()` or `Ulid::new()`, so tests can fix time, move it, and predict ids.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use ulid::Ulid;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock (production, the local runner).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move (tests, drills).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at(now: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(now)))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// New identifiers: ULIDs, which sort by creation time (sort keys and cursors rely on it).
pub trait Ids: Send + Sync {
    fn next(&self) -> Ulid;

    fn next_string(&self) -> String {
        self.next().to_string()
    }
}

/// Random ULIDs stamped with the system time.
#[derive(Clone, Copy, Debug, Default)]
pub struct UlidIds;

impl Ids for UlidIds {
    fn next(&self) -> Ulid {
        Ulid::new()
    }
}

/// Predictable ULIDs for tests: the given time and a counter, so ids sort in issue order.
#[derive(Debug)]
pub struct SequentialIds {
    millis: u64,
    counter: AtomicU64,
}

impl SequentialIds {
    pub fn starting_at(at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self { millis: u64::try_from(at.timestamp_millis()).unwrap_or(0), counter: AtomicU64::new(1) })
    }
}

impl Ids for SequentialIds {
    fn next(&self) -> Ulid {
        Ulid::from_parts(self.millis, u128::from(self.counter.fetch_add(1, Ordering::Relaxed)))
    }
}

/// Time and ids together, as every function's state carries them.
#[derive(Clone)]
pub struct Ticker {
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn Ids>,
}

impl Default for Ticker {
    fn default() -> Self {
        Self { clock: Arc::new(SystemClock), ids: Arc::new(UlidIds) }
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker").field("now", &self.clock.now()).finish_non_exhaustive()
    }
}

impl Ticker {
    /// A fixed time and predictable ids (tests).
    pub fn fixed(at: DateTime<Utc>) -> (Self, Arc<ManualClock>) {
        let clock = ManualClock::at(at);
        (Self { clock: clock.clone(), ids: SequentialIds::starting_at(at) }, clock)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn id(&self) -> String {
        self.ids.next_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let (ticker, clock) = Ticker::fixed(start);
        assert_eq!(ticker.now(), start);
        clock.advance(Duration::minutes(5));
        assert_eq!(ticker.now(), start + Duration::minutes(5));
    }

    #[test]
    fn sequential_ids_are_distinct_and_sort_in_issue_order() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let ids = SequentialIds::starting_at(start);
        let issued: Vec<String> = (0..100).map(|_| ids.next_string()).collect();
        let mut sorted = issued.clone();
        sorted.sort();
        assert_eq!(issued, sorted);
        assert_eq!(issued.iter().collect::<std::collections::HashSet<_>>().len(), 100);
        assert_eq!(ids.next().datetime(), std::time::SystemTime::from(start));
    }
}

//! The decisions of a delivery's life (SPEC §4.5): what one attempt's outcome makes of it, and
//! what a redeliver does. Pure: time comes in as arguments, nothing is read or written here.
//!
//! The due pointer of a delivery (its place in the agency's lane) follows from the record:
//! a `pending` or `failed` delivery is due at `next_attempt_at`; a `delivered` or `dead` one has
//! no pointer. The deliverer writes record and pointer in one transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::deliveries::{Delivery, DeliveryStatus};

/// The pauses between attempts: after the n-th failed attempt the next follows after step n;
/// after a failure with no step left the delivery is dead (so `len + 1` attempts in all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    steps: Vec<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("a retry schedule needs at least one step")]
    Empty,
    #[error("step {0} is not a duration such as 500ms, 5s, 5m, 2h or 1d")]
    BadStep(usize),
    #[error("step {0} is zero")]
    ZeroStep(usize),
    #[error("step {0} is longer than 30 days")]
    TooLong(usize),
}

/// No pause is longer than this (a lane's keys hold 13-digit unix milliseconds).
pub const LONGEST_PAUSE: Duration = Duration::from_secs(30 * 86_400);

/// An agency's `Retry-After` is honoured up to a day (the schedule's longest step in SPEC §4.5),
/// so a typo on its side cannot park a delivery for years.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

impl Schedule {
    /// SPEC §4.5: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
    pub fn standard() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        Self {
            steps: vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(1800),
                hours(2),
                hours(5),
                hours(10),
                hours(14),
                hours(20),
                hours(24),
            ],
        }
    }

    pub fn new(steps: Vec<Duration>) -> Result<Self, ScheduleError> {
        if steps.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if let Some(index) = steps.iter().position(Duration::is_zero) {
            return Err(ScheduleError::ZeroStep(index + 1));
        }
        if let Some(index) = steps.iter().position(|step| *step > LONGEST_PAUSE) {
            return Err(ScheduleError::TooLong(index + 1));
        }
        Ok(Self { steps })
    }

    /// `"5s,5m,30m,2h"` (the form of `DELIVERY_RETRY_SCHEDULE`).
    pub fn parse(raw: &str) -> Result<Self, ScheduleError> {
        let steps = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(index, step)| parse_duration(step).ok_or(ScheduleError::BadStep(index + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(steps)
    }

    /// The pause after the `attempts`-th failed attempt, or `None` when it was the last.
    pub fn pause_after(&self, attempts: u32) -> Option<Duration> {
        let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
        self.steps.get(index).copied()
    }

    pub fn attempts(&self) -> usize {
        self.steps.len() + 1
    }
}

/// `500ms`, `5s`, `5m`, `2h`, `1d`, or bare seconds.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).map(Duration::from_millis)
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The agency answered with this status (and maybe `Retry-After`, already parsed).
    Answered { status: u16, retry_after: Option<Duration> },
    /// Timeout, connection refused or reset, TLS failure: no answer.
    NoAnswer,
}

/// One attempt: when it started (its `webhook-timestamp`), when it ended, and how.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: Outcome,
}

/// The delivery after an attempt, and whether the agency's endpoint goes off (`410 Gone`).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub delivery: Delivery,
    pub disable_endpoint: bool,
}

/// The next state of `delivery` after `attempt`:
/// - 2xx → `delivered`, no further attempt;
/// - `410 Gone` → the endpoint is disabled; the delivery stays `failed`, due per the schedule
///   once the endpoint is enabled again (or `dead` if that was the last attempt);
/// - anything else → `failed`, due after the schedule's next pause, or after `Retry-After` when
///   that is longer (up to [`MAX_RETRY_AFTER`]); after the last → `dead`.
pub fn decide(delivery: &Delivery, attempt: &Attempt, schedule: &Schedule) -> Decision {
    let mut next = delivery.clone();
    next.attempts = delivery.attempts.saturating_add(1);
    next.last_attempt_at = Some(attempt.started_at);
    let (status, retry_after) = match attempt.outcome {
        Outcome::Answered { status, retry_after } => (Some(status), retry_after),
        Outcome::NoAnswer => (None, None),
    };
    next.last_response_status = status;
    if status.is_some_and(|s| (200..300).contains(&s)) {
        next.status = DeliveryStatus::Delivered;
        next.next_attempt_at = None;
        return Decision { delivery: next, disable_endpoint: false };
    }
    match schedule.pause_after(next.attempts) {
        Some(pause) => {
            let pause = retry_after.map_or(pause, |asked| pause.max(asked.min(MAX_RETRY_AFTER)));
            next.status = DeliveryStatus::Failed;
            next.next_attempt_at = Some(later(attempt.finished_at, pause));
        }
        None => {
            next.status = DeliveryStatus::Dead;
            next.next_attempt_at = None;
        }
    }
    Decision { delivery: next, disable_endpoint: status == Some(410) }
}

/// A redeliver asked for by the agency (SPEC §4.6): the same body and `webhook-id`, due `now`,
/// with a fresh run of the schedule (`attempts` counts the tries since it was last queued).
pub fn redeliver(delivery: &Delivery, now: DateTime<Utc>) -> Delivery {
    Delivery { status: DeliveryStatus::Pending, attempts: 0, next_attempt_at: Some(now), ..delivery.clone() }
}

/// `at + pause`, saturating at the end of time (a configured pause may be absurdly long).
fn later(at: DateTime<Utc>, pause: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(pause).ok().and_then(|pause| at.checked_add_signed(pause)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// When a delivery in this state is due, i.e. where its lane pointer sits (none when settled).
pub fn due_at(delivery: &Delivery) -> Option<DateTime<Utc>> {
    match delivery.status {
        DeliveryStatus::Pending | DeliveryStatus::Failed => delivery.next_attempt_at,
        DeliveryStatus::Delivered | DeliveryStatus::Dead => None,
    }
}

/// `Retry-After` (RFC 9110): delay-seconds or an HTTP date; a date in the past is no delay.
pub fn parse_retry_after(raw: &str, now: DateTime<Utc>) -> Option<Duration> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(raw.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = DateTime::parse_from_rfc2822(raw).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::vocabulary::DeliveryType;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn pending() -> Delivery {
        Delivery {
            delivery_id: "01JDELIVERY000000000000001".into(),
            agency_id: "mvd".into(),
            event_type: DeliveryType::ApplicationSubmitted,
            body: "{}".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            created_at: t0(),
            last_attempt_at: None,
            last_response_status: None,
            next_attempt_at: Some(t0()),
        }
    }

    fn attempt(outcome: Outcome) -> Attempt {
        Attempt { started_at: t0(), finished_at: t0() + chrono::Duration::seconds(1), outcome }
    }

    fn answered(status: u16) -> Outcome {
        Outcome::Answered { status, retry_after: None }
    }

    #[test]
    fn a_2xx_answer_delivers_and_leaves_the_lane() {
        for status in [200, 202, 204, 299] {
            let d = decide(&pending(), &attempt(answered(status)), &Schedule::standard());
            assert_eq!((d.delivery.status, d.delivery.attempts, d.delivery.last_response_status), (DeliveryStatus::Delivered, 1, Some(status)));
            assert_eq!((due_at(&d.delivery), d.disable_endpoint, d.delivery.last_attempt_at), (None, false, Some(t0())));
        }
    }

    #[test]
    fn failures_follow_the_standard_schedule_then_die() {
        let schedule = Schedule::standard();
        let expected_pauses = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];
        let mut delivery = pending();
        for (n, pause) in expected_pauses.iter().enumerate() {
            let outcome = if n % 2 == 1 { answered(500) } else { Outcome::NoAnswer };
            delivery = decide(&delivery, &attempt(outcome), &schedule).delivery;
            assert_eq!(delivery.status, DeliveryStatus::Failed, "attempt {}", n + 1);
            assert_eq!(delivery.next_attempt_at, Some(t0() + chrono::Duration::seconds(1 + pause)), "attempt {}", n + 1);
        }
        assert_eq!(delivery.last_response_status, None, "a timeout records no status");
        let last = decide(&delivery, &attempt(answered(503)), &schedule);
        assert_eq!((last.delivery.status, last.delivery.attempts, due_at(&last.delivery)), (DeliveryStatus::Dead, 10, None));
        assert_eq!(schedule.attempts(), 10);
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_bounded_by_a_day() {
        let schedule = Schedule::parse("5s,1m").unwrap();
        let with = |secs| Outcome::Answered { status: 503, retry_after: Some(Duration::from_secs(secs)) };
        let at = |outcome| decide(&pending(), &attempt(outcome), &schedule).delivery.next_attempt_at.unwrap() - (t0() + chrono::Duration::seconds(1));
        assert_eq!(at(with(2)), chrono::Duration::seconds(5), "shorter than the schedule: the schedule");
        assert_eq!(at(with(30)), chrono::Duration::seconds(30));
        assert_eq!(at(with(3600)), chrono::Duration::seconds(3600), "longer than every step of the schedule");
        assert_eq!(at(with(u64::MAX)), chrono::Duration::days(1), "bounded by a day");
    }

    #[test]
    fn gone_disables_the_endpoint_and_keeps_the_delivery_failed() {
        let d = decide(&pending(), &attempt(answered(410)), &Schedule::standard());
        assert!(d.disable_endpoint);
        assert_eq!((d.delivery.status, d.delivery.last_response_status), (DeliveryStatus::Failed, Some(410)));
        assert!(due_at(&d.delivery).is_some(), "it waits in the lane until the endpoint is enabled again");
        assert!(!decide(&pending(), &attempt(answered(404)), &Schedule::standard()).disable_endpoint);
    }

    #[test]
    fn redeliver_queues_the_same_delivery_now_with_a_fresh_schedule() {
        let schedule = Schedule::parse("1s").unwrap();
        let dead = decide(&decide(&pending(), &attempt(answered(500)), &schedule).delivery, &attempt(answered(500)), &schedule).delivery;
        assert_eq!(dead.status, DeliveryStatus::Dead);
        let now = t0() + chrono::Duration::hours(3);
        let again = redeliver(&dead, now);
        assert_eq!((again.status, again.attempts, due_at(&again)), (DeliveryStatus::Pending, 0, Some(now)));
        assert_eq!((again.delivery_id.as_str(), again.body.as_str(), again.last_response_status), (dead.delivery_id.as_str(), dead.body.as_str(), Some(500)));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = t0();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 01 Mar 2026 10:02:00 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 01 Mar 2026 09:00:00 GMT", now), Some(Duration::ZERO), "a past date");
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        for garbage in ["", "soon", "-5", "1.5", "2026-03-01T10:02:00Z"] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    #[test]
    fn schedules_parse_units_and_refuse_nonsense() {
        let s = Schedule::parse("500ms, 5s,5m,2h,1d,7").unwrap();
        assert_eq!(s.pause_after(1), Some(Duration::from_millis(500)));
        assert_eq!(s.pause_after(5), Some(Duration::from_secs(86_400)));
        assert_eq!(s.pause_after(6), Some(Duration::from_secs(7)));
        assert_eq!((s.pause_after(7), s.pause_after(0)), (None, None));
        assert_eq!(Schedule::parse(""), Err(ScheduleError::Empty));
        assert_eq!(Schedule::parse("5s,soon"), Err(ScheduleError::BadStep(2)));
        assert_eq!(Schedule::parse("5s,0s"), Err(ScheduleError::ZeroStep(2)));
        assert_eq!(Schedule::parse("5x"), Err(ScheduleError::BadStep(1)));
        assert_eq!(Schedule::parse("5s,31d"), Err(ScheduleError::TooLong(2)));
    }
}

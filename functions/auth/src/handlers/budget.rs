//! Rolling-hour budgets per destination (SPEC §3.3): at most N codes to one phone or email in
//! any 60 minutes, whatever the purpose, and at most one "someone tried to register" notice.
//! The item keeps the send times of the last window, so the window slides instead of resetting
//! on the clock hour; keys are hashed so the store holds no contact.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use shared::events::Destination;
use shared::http::ApiError;
use shared::ports::{Condition, KvError};

use super::common::COUNTER_RETRIES;
use crate::AuthState;
use crate::store::{self, Versioned};

/// What a budget counts.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// One-time codes (registration, login, recovery, resends) to one destination.
    Codes,
    /// "Someone tried to register with your number" notices to one destination.
    RegistrationNotices,
}

const WINDOW_SECONDS: i64 = 3600;
const SK: &str = "WINDOW";

#[derive(Default, Serialize, Deserialize)]
struct Window {
    /// Unix seconds of the sends inside the current window, oldest first.
    sent: Vec<i64>,
}

/// The budget key of a destination; `subject` names what is counted when it is no contact
/// (an unknown login typed into recovery).
pub fn destination_key(destination: &Destination) -> String {
    match destination {
        Destination::Sms(p) => format!("sms:{p}"),
        Destination::Email(e) => format!("email:{e}"),
    }
}

/// The budget key of a login typed into recovery that names no account: it spends a budget
/// of its own, as a real account's destination would.
pub fn unknown_login_budget_key(limit_key: &str) -> String {
    format!("login:{limit_key}")
}

impl Budget {
    fn max(self, state: &AuthState) -> usize {
        match self {
            Self::Codes => state.settings.codes_per_destination_hourly as usize,
            Self::RegistrationNotices => 1,
        }
    }

    fn pk(self, key: &str) -> String {
        let scope = match self {
            Self::Codes => "codes",
            Self::RegistrationNotices => "notices",
        };
        format!("BUDGET#{scope}#{}", store::sha256_hex(key))
    }

    /// Spends one unit for `key` at `now`: `Ok(None)` when spent, `Ok(Some(seconds))` when the
    /// budget is exhausted for that long. A lost race re-reads and tries again.
    pub async fn spend(self, state: &AuthState, key: &str, now: DateTime<Utc>) -> Result<Option<u64>, ApiError> {
        let pk = self.pk(key);
        let now = now.timestamp();
        for _ in 0..COUNTER_RETRIES {
            let current: Option<Versioned<Window>> = store::get(state.kv.as_ref(), &pk, SK).await?;
            let (mut window, condition) = match current {
                Some(v) => (v.value, Condition::VersionIs(v.version)),
                None => (Window::default(), Condition::NotExists),
            };
            if let Err(retry_after) = admit(&mut window.sent, now, self.max(state)) {
                return Ok(Some(retry_after));
            }
            let op = store::put_op(pk.clone(), SK, &window, condition, Some(now + WINDOW_SECONDS))?;
            match state.kv.transact(vec![op]).await {
                Ok(()) => return Ok(None),
                Err(KvError::TransactionConflict { .. }) | Err(KvError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::rate_limited(1))
    }
}

/// Admits one send at `now` into a sliding window of the last hour holding at most `max`;
/// refused, it tells how many seconds until the oldest send leaves the window.
fn admit(sent: &mut Vec<i64>, now: i64, max: usize) -> Result<(), u64> {
    sent.retain(|at| now - at < WINDOW_SECONDS);
    if sent.len() >= max {
        let oldest = sent.first().copied().unwrap_or(now);
        return Err((oldest + WINDOW_SECONDS - now).max(1) as u64);
    }
    sent.push(now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides_instead_of_resetting_on_the_clock_hour() {
        let mut sent = Vec::new();
        // Five sends just before a clock hour ends: a fixed hourly window would reset at :00.
        for at in [3590, 3592, 3594, 3596, 3598] {
            assert_eq!(admit(&mut sent, at, 5), Ok(()));
        }
        assert_eq!(admit(&mut sent, 3601, 5), Err(3589), "the next clock hour has begun, the rolling hour has not");
        assert_eq!(admit(&mut sent, 7189, 5), Err(1));
        assert_eq!(admit(&mut sent, 7190, 5), Ok(()), "the oldest send left the window");
        assert_eq!(admit(&mut sent, 7191, 5), Err(1));
    }

    #[test]
    fn destinations_of_each_channel_have_distinct_keys() {
        assert_ne!(destination_key(&Destination::Sms("+79990000000".into())), destination_key(&Destination::Email("+79990000000".into())));
    }
}

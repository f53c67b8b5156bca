//! Rolling-hour budgets per destination (SPEC §3.3): at most N codes to one phone or email in
//! any 60 minutes, whatever the purpose, and at most one "someone tried to register" notice.
//! The item keeps the send times of the last window, so the window slides instead of resetting
//! on the clock hour; keys are hashed so the store holds no contact.

use serde::{Deserialize, Serialize};

use shared::events::Destination;
use shared::http::ApiError;
use shared::persist;

use crate::AuthState;
use crate::errors;
use crate::store;

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

/// The budget key of a destination.
pub fn destination_key(destination: &Destination) -> String {
    match destination {
        Destination::Sms(p) => format!("sms:{}", p.as_str()),
        Destination::Email(e) => format!("email:{}", e.as_str()),
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

    /// Spends one unit for `key` now: `Ok(None)` when spent, `Ok(Some(seconds))` when the
    /// budget is exhausted for that long; a window too hot to write is 429 `rate_limited`.
    pub async fn spend(self, state: &AuthState, key: &str) -> Result<Option<u64>, ApiError> {
        let now = state.ticker.now().timestamp();
        let max = self.max(state);
        let pk = self.pk(key);
        let spent = persist::update(state.kv.as_ref(), &pk, SK, Some(now + WINDOW_SECONDS), &[], |window: &mut Window| admit(&mut window.sent, now, max));
        Ok(errors::counted(spent.await)?.err())
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
        let phone = shared::domain::Phone::parse("+79990000000").unwrap();
        let email = shared::domain::Email::parse("79990000000@example.ru").unwrap();
        assert!(destination_key(&Destination::Sms(phone)).starts_with("sms:"));
        assert!(destination_key(&Destination::Email(email)).starts_with("email:"));
    }
}

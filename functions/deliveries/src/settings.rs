//! The deliveries function's settings, parsed once at start; a bad value stops the process
//! naming its variable. Durations read as `500ms`, `5s`, `5m`, `2h`, `1d` (or bare seconds).

use std::time::Duration;

use shared::settings::{Env, SettingError};

use crate::domain::{Schedule, parse_duration};

#[derive(Clone, Debug)]
pub struct Settings {
    /// `DELIVERY_RETRY_SCHEDULE`, default `5s,5m,30m,2h,5h,10h,14h,20h,24h` (SPEC §4.5).
    pub schedule: Schedule,
    /// `DELIVERY_TIMEOUT`, default 15 s: an attempt without an answer by then failed.
    pub timeout: Duration,
    /// `DELIVERY_LEASE`, default 20 s (longer than the timeout): a claimed delivery is due again
    /// after this if its worker died mid-attempt.
    pub lease: Duration,
    /// `DELIVERY_SWEEP_INTERVAL`, default 500 ms: how often each agency's lane is read.
    pub interval: Duration,
    /// `DELIVERY_RUN_WINDOW`, default 45 s: how long one scheduled invocation (Lambda) keeps
    /// sweeping; no attempt starts after it, so the last ends within `window + timeout`.
    pub window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            schedule: Schedule::standard(),
            timeout: Duration::from_secs(15),
            lease: Duration::from_secs(20),
            interval: Duration::from_millis(500),
            window: Duration::from_secs(45),
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from(&Env::process())
    }

    pub fn from(env: &Env) -> Result<Self, SettingError> {
        let defaults = Self::default();
        let schedule = match env.text("DELIVERY_RETRY_SCHEDULE") {
            None => defaults.schedule,
            Some(raw) => Schedule::parse(&raw).map_err(|e| error("DELIVERY_RETRY_SCHEDULE", e.to_string()))?,
        };
        let duration = |name: &str, default: Duration| -> Result<Duration, SettingError> {
            match env.text(name) {
                None => Ok(default),
                Some(raw) => parse_duration(&raw)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| error(name, format!("expected a positive duration such as 500ms, 15s or 1m, got `{raw}`"))),
            }
        };
        let settings = Self {
            schedule,
            timeout: duration("DELIVERY_TIMEOUT", defaults.timeout)?,
            lease: duration("DELIVERY_LEASE", defaults.lease)?,
            interval: duration("DELIVERY_SWEEP_INTERVAL", defaults.interval)?,
            window: duration("DELIVERY_RUN_WINDOW", defaults.window)?,
        };
        if settings.lease <= settings.timeout {
            return Err(error("DELIVERY_LEASE", "must be longer than DELIVERY_TIMEOUT, or a slow attempt would be made twice at once".into()));
        }
        Ok(settings)
    }
}

fn error(name: &str, problem: String) -> SettingError {
    SettingError { name: name.to_owned(), problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_and_bad_values_name_their_variable() {
        let s = Settings::from(&Env::from_pairs(&[])).unwrap();
        assert_eq!((s.schedule, s.timeout, s.lease), (Schedule::standard(), Duration::from_secs(15), Duration::from_secs(20)));
        let s =
            Settings::from(&Env::from_pairs(&[("DELIVERY_RETRY_SCHEDULE", "50ms,100ms"), ("DELIVERY_TIMEOUT", "300ms"), ("DELIVERY_LEASE", "1s")])).unwrap();
        assert_eq!((s.schedule.attempts(), s.timeout), (3, Duration::from_millis(300)));
        for (name, value) in
            [("DELIVERY_RETRY_SCHEDULE", "5s,later"), ("DELIVERY_TIMEOUT", "0s"), ("DELIVERY_SWEEP_INTERVAL", "fast"), ("DELIVERY_LEASE", "10s")]
        {
            assert_eq!(Settings::from(&Env::from_pairs(&[(name, value)])).unwrap_err().name, name, "{name}={value}");
        }
    }
}

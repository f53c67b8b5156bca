//! The runner's settings, parsed once at start: a bad value stops the process with its name.
//! Nothing here writes the environment; what the functions would read from it is handed to
//! them (`States::build`).

use std::net::SocketAddr;
use std::time::Duration;

use shared::runtime::BoxError;
use shared::settings::Env;

#[derive(Clone, Debug)]
pub struct RunnerSettings {
    /// `BIND_ADDR`, default `127.0.0.1:3000`.
    pub bind: SocketAddr,
    /// `PUBLIC_BASE_URL`, default `http://{BIND_ADDR}`: presigned object URLs and share links
    /// must name the port actually bound.
    pub public_base_url: String,
    /// `JWT_ISSUER`, default the public base URL.
    pub issuer: String,
    /// `OUTBOX_INLINE_RELAY` (default on); `0` simulates a crash between commit and relay, so
    /// only the sweep delivers.
    pub inline_relay: bool,
    /// `OUTBOX_SWEEP_SECONDS`, default 5.
    pub sweep_every: Duration,
    /// `CITIZEN_WRITES_PER_MINUTE` / `CITIZEN_DRAFTS_PER_HOUR`: the applications write budget
    /// (SPEC defaults when unset); API testers that drive one citizen hard raise them.
    pub writes_per_minute: Option<u64>,
    pub drafts_per_hour: Option<u64>,
    // Demo agencies (issue 9, demo-agencies part).
    /// `DEMO_AGENCIES` (default on): seed agencies without a `delivery_url` are answered by the
    /// built-in simulator (SPEC §7); `0` turns it off.
    pub demo_agencies: bool,
    /// `DEMO_AGENCY_DELAY_MS`, default 2000: the simulator's pause before each step.
    pub demo_delay: Duration,
}

impl RunnerSettings {
    pub fn from_env() -> Result<Self, BoxError> {
        Self::from(&Env::process())
    }

    fn from(env: &Env) -> Result<Self, BoxError> {
        let bind: SocketAddr = env.parse("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 3000)), "an address with a port (e.g. 127.0.0.1:3000)")?;
        let public_base_url = env.text("PUBLIC_BASE_URL").unwrap_or_else(|| format!("http://{bind}")).trim_end_matches('/').to_owned();
        Ok(Self {
            bind,
            issuer: env.text("JWT_ISSUER").unwrap_or_else(|| public_base_url.clone()),
            public_base_url,
            inline_relay: env.flag("OUTBOX_INLINE_RELAY", true)?,
            sweep_every: env.seconds("OUTBOX_SWEEP_SECONDS", Duration::from_secs(5))?,
            writes_per_minute: env.count("CITIZEN_WRITES_PER_MINUTE")?,
            drafts_per_hour: env.count("CITIZEN_DRAFTS_PER_HOUR")?,
            demo_agencies: env.flag("DEMO_AGENCIES", true)?,
            demo_delay: env.millis("DEMO_AGENCY_DELAY_MS", Duration::from_millis(2000), 600_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<RunnerSettings, BoxError> {
        RunnerSettings::from(&Env::from_pairs(pairs))
    }

    #[test]
    fn defaults_follow_the_bound_address() {
        let s = parse(&[("BIND_ADDR", "127.0.0.1:4010")]).unwrap();
        assert_eq!(
            (s.public_base_url.as_str(), s.issuer.as_str(), s.inline_relay, s.sweep_every),
            ("http://127.0.0.1:4010", "http://127.0.0.1:4010", true, Duration::from_secs(5))
        );
    }

    #[test]
    fn demo_agencies_are_on_by_default_and_can_be_switched_off() {
        let s = parse(&[]).unwrap();
        assert_eq!((s.demo_agencies, s.demo_delay), (true, Duration::from_millis(2000)));
        let s = parse(&[("DEMO_AGENCIES", "0"), ("DEMO_AGENCY_DELAY_MS", "50")]).unwrap();
        assert_eq!((s.demo_agencies, s.demo_delay), (false, Duration::from_millis(50)));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("BIND_ADDR", "localhost"),
            ("OUTBOX_INLINE_RELAY", "yes"),
            ("OUTBOX_SWEEP_SECONDS", "soon"),
            ("OUTBOX_SWEEP_SECONDS", "0"),
            ("CITIZEN_WRITES_PER_MINUTE", "-1"),
            ("DEMO_AGENCIES", "yes"),
            ("DEMO_AGENCY_DELAY_MS", "2s"),
        ] {
            let error = parse(&[(name, value)]).unwrap_err().to_string();
            assert!(error.contains(name), "{name}={value}: {error}");
        }
    }
}

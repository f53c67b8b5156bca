//! The oauth function's settings, parsed once at start: a bad value stops the process naming it.

use shared::http::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use shared::settings::{Env, SettingError};

#[derive(Clone, Debug)]
pub struct Settings {
    /// `JWT_ISSUER`: the `iss` of every token, the same as the auth function's.
    pub issuer: String,
    /// `JWT_AUDIENCE`: the `aud` of client tokens, the same as citizens' (one verifier for both).
    pub audience: String,
    /// `OAUTH_FAILED_AUTH_PER_MINUTE` (default 10): failed client authentications a client id
    /// may collect in a minute before the token endpoint answers 429 until the minute ends.
    pub failed_auth_per_minute: u64,
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from(&Env::process())
    }

    pub fn from(env: &Env) -> Result<Self, SettingError> {
        let failed_auth_per_minute = env.parse("OAUTH_FAILED_AUTH_PER_MINUTE", 10u64, "a positive whole number")?;
        if failed_auth_per_minute == 0 {
            return Err(SettingError { name: "OAUTH_FAILED_AUTH_PER_MINUTE".into(), problem: "expected a positive whole number, got `0`".into() });
        }
        Ok(Self {
            issuer: env.text("JWT_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
            audience: env.text("JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned()),
            failed_auth_per_minute,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_auth_function_and_a_bad_limit_names_its_variable() {
        let settings = Settings::from(&Env::from_pairs(&[])).unwrap();
        assert_eq!((settings.issuer.as_str(), settings.audience.as_str(), settings.failed_auth_per_minute), (DEFAULT_ISSUER, DEFAULT_AUDIENCE, 10));
        for bad in ["0", "-1", "many"] {
            assert_eq!(Settings::from(&Env::from_pairs(&[("OAUTH_FAILED_AUTH_PER_MINUTE", bad)])).unwrap_err().name, "OAUTH_FAILED_AUTH_PER_MINUTE");
        }
    }
}

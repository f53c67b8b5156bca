//! ESIA identity: registration with one-time codes, login with a second factor and lockout,
//! recovery, EdDSA access tokens with rotating refresh tokens, sessions, login history,
//! password change and TOTP enrolment (SPEC §3).
//!
//! The crate is a library: `api(state)` declares every route with its contract once; `main.rs`
//! serves it (Lambda or plain HTTP) with `GET /health` and `GET /openapi.json`, and the local
//! runner merges `router(state)` next to the other functions.

pub mod domain;
mod errors;
mod handlers;
pub mod secrets;
pub mod store;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use shared::http::contract::{OpenApiRouter, routes};
use shared::http::rate_limit::Limit;
use shared::http::{RateLimiter, TokenVerifier};
use shared::keys::{IndexKey, KeyRing};
use shared::outbox::Relay;
use shared::ports::{KeyValue, Ticker};
use shared::settings::{Env, SettingError};

pub use tokens::Tokens;

/// Tunables; defaults follow SPEC §3.
#[derive(Clone, Debug)]
pub struct Settings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub otp_ttl: Duration,
    pub otp_resend: Duration,
    pub max_failed_logins: u32,
    pub max_code_attempts: u32,
    pub codes_per_destination_hourly: u64,
    pub login_per_ip: Limit,
    /// Password attempts per login as typed, known or not.
    pub login_per_account: Limit,
    pub register_per_ip: Limit,
    pub recover_per_ip: Limit,
    /// The agency asked to verify profiles (capability `identity_verification`).
    pub registry_agency_id: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:3000".into(),
            audience: "gosuslugi-api".into(),
            access_ttl: Duration::from_secs(15 * 60),
            session_idle: Duration::from_secs(60 * 60),
            session_absolute: Duration::from_secs(24 * 60 * 60),
            otp_ttl: Duration::from_secs(5 * 60),
            otp_resend: Duration::from_secs(60),
            max_failed_logins: 3,
            max_code_attempts: 5,
            codes_per_destination_hourly: 5,
            login_per_ip: Limit::per_minute(60),
            login_per_account: Limit::per_minute(20),
            register_per_ip: Limit::per_minute(20),
            recover_per_ip: Limit::per_minute(20),
            registry_agency_id: "sfr".into(),
        }
    }
}

impl Settings {
    /// Reads overrides from the environment (names in the README's configuration table); a
    /// bad value is an error naming its variable.
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from(&Env::process())
    }

    pub fn from(env: &Env) -> Result<Self, SettingError> {
        let d = Self::default();
        let registry_agency_id = match env.text("REGISTRY_AGENCY_ID") {
            Some(id) => id,
            // Without an explicit id, ask the agency registry (the dev seed locally).
            None => shared::agencies::Registry::load()
                .ok()
                .and_then(|r| r.first_with(shared::agencies::Capability::IdentityVerification).map(|a| a.id.clone()))
                .unwrap_or(d.registry_agency_id),
        };
        Ok(Self {
            issuer: env.text("JWT_ISSUER").unwrap_or(d.issuer),
            audience: env.text("JWT_AUDIENCE").unwrap_or(d.audience),
            session_idle: env.seconds("SESSION_IDLE_SECONDS", d.session_idle)?,
            session_absolute: env.seconds("SESSION_ABSOLUTE_SECONDS", d.session_absolute)?,
            otp_ttl: env.seconds("OTP_TTL_SECONDS", d.otp_ttl)?,
            otp_resend: env.seconds("OTP_RESEND_SECONDS", d.otp_resend)?,
            registry_agency_id,
            ..d
        })
    }
}

pub struct AuthState {
    pub kv: Arc<dyn KeyValue>,
    pub relay: Relay,
    pub keys: Arc<KeyRing>,
    /// Keys the login index and backup-code hashes.
    pub index_key: Arc<IndexKey>,
    pub verifier: Arc<TokenVerifier>,
    pub limiter: RateLimiter,
    pub settings: Settings,
    /// Time and new ids; every "now" and every id of the function comes from here.
    pub ticker: Ticker,
}

shared::router_state!(AppState(AuthState));

impl AuthState {
    pub fn new(kv: Arc<dyn KeyValue>, relay: Relay, keys: Arc<KeyRing>, index_key: Arc<IndexKey>, settings: Settings) -> Self {
        let verifier = Arc::new(TokenVerifier::new(settings.issuer.clone(), settings.audience.clone(), &keys).with_sessions(kv.clone()));
        secrets::warm_up();
        Self { limiter: RateLimiter::new(kv.clone()), kv, relay, keys, index_key, verifier, settings, ticker: Ticker::default() }
    }

    /// Runs on `ticker`'s clock and ids (tests: `Ticker::fixed`); the relay's sweep too.
    pub fn with_ticker(mut self, ticker: Ticker) -> Self {
        self.relay = self.relay.with_clock(ticker.clock.clone());
        self.ticker = ticker;
        self
    }
}

/// Every route of the auth function with its contract, declared once: the router and the
/// OpenAPI document both come from here (without the shared layers; see `shared::http::finish_api`).
/// Handlers of one path share a `routes!`.
pub fn api(state: Arc<AuthState>) -> OpenApiRouter {
    use handlers::*;
    OpenApiRouter::new()
        .routes(routes!(wellknown::jwks))
        .routes(routes!(wellknown::openid_configuration))
        .routes(routes!(registration::register))
        .routes(routes!(registration::confirm))
        .routes(routes!(registration::resend))
        .routes(routes!(login::login))
        .routes(routes!(login::mfa))
        .routes(routes!(recovery::recover))
        .routes(routes!(recovery::confirm))
        .routes(routes!(sessions::refresh))
        .routes(routes!(sessions::logout))
        .routes(routes!(me::me))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::revoke))
        .routes(routes!(me::login_history))
        .routes(routes!(me::change_password))
        .routes(routes!(profile::put_profile))
        .routes(routes!(mfa::totp_enrol, mfa::totp_disable))
        .routes(routes!(mfa::totp_confirm))
        .routes(routes!(mfa::sms_switch))
        .with_state(AppState(state))
}

/// The routes alone (tests and the local runner's merged router).
pub fn router(state: Arc<AuthState>) -> Router {
    api(state).split_for_parts().0
}

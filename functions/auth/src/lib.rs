//! ESIA identity: registration with one-time codes, login with a second factor and lockout,
//! recovery, EdDSA access tokens with rotating refresh tokens, sessions, login history,
//! password change and TOTP enrolment (SPEC §3).
//!
//! The crate is a library: `router(state)` is served by `main.rs` (Lambda or plain HTTP) and
//! by the local runner next to the other functions.

mod errors;
mod handlers;
pub mod secrets;
pub mod store;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, get, post, put};

use shared::http::rate_limit::Limit;
use shared::http::{RateLimiter, TokenVerifier};
use shared::keys::{IndexKey, KeyRing};
use shared::outbox::Relay;
use shared::ports::KeyValue;

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
    /// Reads overrides from the environment (names in the README's configuration table).
    pub fn from_env() -> Self {
        let mut s = Self::default();
        let secs = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs);
        if let Ok(v) = std::env::var("JWT_ISSUER") {
            s.issuer = v;
        }
        if let Ok(v) = std::env::var("JWT_AUDIENCE") {
            s.audience = v;
        }
        s.session_idle = secs("SESSION_IDLE_SECONDS").unwrap_or(s.session_idle);
        s.session_absolute = secs("SESSION_ABSOLUTE_SECONDS").unwrap_or(s.session_absolute);
        s.otp_ttl = secs("OTP_TTL_SECONDS").unwrap_or(s.otp_ttl);
        s.otp_resend = secs("OTP_RESEND_SECONDS").unwrap_or(s.otp_resend);
        match std::env::var("REGISTRY_AGENCY_ID") {
            Ok(v) => s.registry_agency_id = v,
            // Without an explicit id, ask the agency registry (the dev seed locally).
            Err(_) => {
                let registry = shared::agencies::Registry::load().ok();
                if let Some(agency) = registry.as_ref().and_then(|r| r.first_with(shared::agencies::Capability::IdentityVerification)) {
                    s.registry_agency_id = agency.id.clone();
                }
            }
        }
        s
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
}

#[derive(Clone)]
pub struct AppState(pub Arc<AuthState>);

impl std::ops::Deref for AppState {
    type Target = AuthState;
    fn deref(&self) -> &AuthState {
        &self.0
    }
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl AuthState {
    pub fn new(kv: Arc<dyn KeyValue>, relay: Relay, keys: Arc<KeyRing>, index_key: Arc<IndexKey>, settings: Settings) -> Self {
        let verifier = Arc::new(TokenVerifier::new(settings.issuer.clone(), settings.audience.clone(), &keys).with_sessions(kv.clone()));
        secrets::warm_up();
        Self { limiter: RateLimiter::new(kv.clone()), kv, relay, keys, index_key, verifier, settings }
    }
}

/// Every route of the auth function (without the shared layers; see `shared::http::finish`).
pub fn router(state: Arc<AuthState>) -> Router {
    use handlers::*;
    Router::new()
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/.well-known/openid-configuration", get(wellknown::openid_configuration))
        .route("/v1/auth/register", post(registration::register))
        .route("/v1/auth/register/confirm", post(registration::confirm))
        .route("/v1/auth/otp/resend", post(registration::resend))
        .route("/v1/auth/login", post(login::login))
        .route("/v1/auth/login/mfa", post(login::mfa))
        .route("/v1/auth/password/recover", post(recovery::recover))
        .route("/v1/auth/password/recover/confirm", post(recovery::confirm))
        .route("/v1/auth/token/refresh", post(sessions::refresh))
        .route("/v1/auth/logout", post(sessions::logout))
        .route("/v1/me", get(me::me))
        .route("/v1/me/sessions", get(sessions::list))
        .route("/v1/me/sessions/{id}", delete(sessions::revoke))
        .route("/v1/me/login-history", get(me::login_history))
        .route("/v1/me/password", post(me::change_password))
        .route("/v1/me/profile", put(profile::put_profile))
        .route("/v1/me/mfa/totp", post(mfa::totp_enrol).delete(mfa::totp_disable))
        .route("/v1/me/mfa/totp/confirm", post(mfa::totp_confirm))
        .route("/v1/me/mfa/sms", put(mfa::sms_switch))
        .with_state(AppState(state))
}

/// The routes this function serves, for the OpenAPI document and the SAM template check.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/register/confirm"),
    ("POST", "/v1/auth/otp/resend"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/login/mfa"),
    ("POST", "/v1/auth/password/recover"),
    ("POST", "/v1/auth/password/recover/confirm"),
    ("POST", "/v1/auth/token/refresh"),
    ("POST", "/v1/auth/logout"),
    ("GET", "/v1/me"),
    ("GET", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions/{id}"),
    ("GET", "/v1/me/login-history"),
    ("POST", "/v1/me/password"),
    ("PUT", "/v1/me/profile"),
    ("POST", "/v1/me/mfa/totp"),
    ("DELETE", "/v1/me/mfa/totp"),
    ("POST", "/v1/me/mfa/totp/confirm"),
    ("PUT", "/v1/me/mfa/sms"),
];

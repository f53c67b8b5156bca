//! Applications (заявления, SPEC §4): the service catalogue, the application lifecycle with
//! optimistic concurrency, the thread with the agency, and the signed agency webhooks that move
//! applications along and raise citizens' identity levels.
//!
//! The crate is a library: `router(state)` is served by `main.rs` (Lambda or plain HTTP) and
//! by the local runner next to the other functions.

pub mod catalogue;
mod errors;
mod handlers;
pub mod status;
pub mod store;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

use shared::agencies::Registry;
use shared::http::{Limit, RateLimiter, TokenVerifier, WriteBudget};
use shared::keys::{IndexKey, KeyRing};
use shared::outbox::Relay;
use shared::ports::KeyValue;

pub use catalogue::{Catalogue, Service};
pub use status::{ActorKind, ApplicationStatus, can_transition};

/// Drafts a citizen may create per hour: far more than anyone fills in by hand, and each one
/// is kept for years.
pub const DRAFTS_PER_HOUR: u64 = 20;

/// The citizen's budget for the write endpoints (create, patch, submit, withdraw, supplement,
/// messages): `WriteBudget::WRITES_PER_MINUTE` writes a minute, `DRAFTS_PER_HOUR` drafts an hour.
pub const WRITE_BUDGET: WriteBudget = WriteBudget::new("applications", Limit::per_hour(DRAFTS_PER_HOUR));

pub struct ApplicationsState {
    pub kv: Arc<dyn KeyValue>,
    pub relay: Relay,
    pub verifier: Arc<TokenVerifier>,
    pub catalogue: Arc<Catalogue>,
    pub agencies: Arc<Registry>,
    /// Keys the login index (a verified SNILS becomes a login here).
    pub index_key: Arc<IndexKey>,
    pub limiter: RateLimiter,
    pub write_budget: WriteBudget,
}

impl ApplicationsState {
    pub fn new(kv: Arc<dyn KeyValue>, relay: Relay, verifier: Arc<TokenVerifier>, catalogue: Arc<Catalogue>, agencies: Arc<Registry>, index_key: Arc<IndexKey>) -> Self {
        let limiter = RateLimiter::new(kv.clone());
        Self { kv, relay, verifier, catalogue, agencies, index_key, limiter, write_budget: WRITE_BUDGET }
    }

    /// Replaces `WRITE_BUDGET` (load tests drive one citizen far harder than a person would).
    pub fn with_write_budget(mut self, budget: WriteBudget) -> Self {
        self.write_budget = budget;
        self
    }

    /// Builds everything from the environment: the token verifier from `JWT_ISSUER` /
    /// `JWT_AUDIENCE` (defaults as in auth) and `keys`, the agency registry and the catalogue.
    pub fn from_env(kv: Arc<dyn KeyValue>, relay: Relay, keys: &KeyRing, index_key: Arc<IndexKey>) -> Result<Self, shared::runtime::BoxError> {
        let issuer = std::env::var("JWT_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:3000".into());
        let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "gosuslugi-api".into());
        let verifier = Arc::new(TokenVerifier::new(issuer, audience, keys).with_sessions(kv.clone()));
        let agencies = Arc::new(Registry::load()?);
        let catalogue = Arc::new(Catalogue::load(&agencies)?);
        Ok(Self::new(kv, relay, verifier, catalogue, agencies, index_key))
    }
}

#[derive(Clone)]
pub struct AppState(pub Arc<ApplicationsState>);

impl std::ops::Deref for AppState {
    type Target = ApplicationsState;
    fn deref(&self) -> &ApplicationsState {
        &self.0
    }
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// Every route of the applications function (without the shared layers; see `shared::http::finish`).
pub fn router(state: Arc<ApplicationsState>) -> Router {
    use handlers::*;
    Router::new()
        .route("/v1/services", get(services::list))
        .route("/v1/services/{code}", get(services::get))
        .route("/v1/applications", post(applications::create).get(applications::list))
        .route("/v1/applications/{id}", get(applications::get).patch(applications::patch))
        .route("/v1/applications/{id}/submit", post(applications::submit))
        .route("/v1/applications/{id}/withdraw", post(applications::withdraw))
        .route("/v1/applications/{id}/supplement", post(applications::supplement))
        .route("/v1/applications/{id}/messages", get(messages::list).post(messages::post))
        .route("/v1/webhooks/agencies/{agency_id}", post(webhooks::receive))
        .with_state(AppState(state))
}

/// The routes this function serves, for the OpenAPI document and the SAM template check.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/services"),
    ("GET", "/v1/services/{code}"),
    ("POST", "/v1/applications"),
    ("GET", "/v1/applications"),
    ("GET", "/v1/applications/{id}"),
    ("PATCH", "/v1/applications/{id}"),
    ("POST", "/v1/applications/{id}/submit"),
    ("POST", "/v1/applications/{id}/withdraw"),
    ("POST", "/v1/applications/{id}/supplement"),
    ("GET", "/v1/applications/{id}/messages"),
    ("POST", "/v1/applications/{id}/messages"),
    ("POST", "/v1/webhooks/agencies/{agency_id}"),
];

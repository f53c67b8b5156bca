//! Applications (заявления, SPEC §4): the service catalogue, the application lifecycle with
//! optimistic concurrency, the thread with the agency, and the signed agency webhooks that move
//! applications along and raise citizens' identity levels.
//!
//! The crate is a library: `api(state)` declares every route with its contract once; `main.rs`
//! serves it (Lambda or plain HTTP) with `GET /openapi.json`, and the local runner merges it
//! with the other functions.

pub mod body;
pub mod catalogue;
pub mod domain;
mod errors;
mod handlers;
pub mod outbound;
pub mod store;

use std::sync::Arc;

use axum::Router;

use shared::agencies::Registry;
use shared::http::contract::{OpenApiRouter, routes};
use shared::http::{Limit, RateLimiter, TokenVerifier, WriteBudget};
use shared::keys::{IndexKey, KeyRing};
use shared::outbox::Relay;
use shared::ports::{KeyValue, Ticker};

pub use catalogue::{Catalogue, Service};

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
    /// Time and new ids.
    pub ticker: Ticker,
}

impl ApplicationsState {
    pub fn new(
        kv: Arc<dyn KeyValue>,
        relay: Relay,
        verifier: Arc<TokenVerifier>,
        catalogue: Arc<Catalogue>,
        agencies: Arc<Registry>,
        index_key: Arc<IndexKey>,
    ) -> Self {
        let limiter = RateLimiter::new(kv.clone());
        Self { kv, relay, verifier, catalogue, agencies, index_key, limiter, write_budget: WRITE_BUDGET, ticker: Ticker::default() }
    }

    /// Replaces the system clock and random ids (tests fix time with `Ticker::fixed`).
    pub fn with_ticker(mut self, ticker: Ticker) -> Self {
        self.ticker = ticker;
        self
    }

    /// Replaces `WRITE_BUDGET` (load tests drive one citizen far harder than a person would).
    pub fn with_write_budget(mut self, budget: WriteBudget) -> Self {
        self.write_budget = budget;
        self
    }

    /// Builds everything from the environment: the token verifier from `JWT_ISSUER` /
    /// `JWT_AUDIENCE` (defaults as in auth) and `keys`, the agency registry and the catalogue.
    pub fn from_env(kv: Arc<dyn KeyValue>, relay: Relay, keys: &KeyRing, index_key: Arc<IndexKey>) -> Result<Self, shared::runtime::BoxError> {
        let verifier = Arc::new(TokenVerifier::from_settings(&shared::settings::Env::process(), keys, kv.clone()));
        let agencies = Arc::new(Registry::load()?);
        let catalogue = Arc::new(Catalogue::load(&agencies)?);
        Ok(Self::new(kv, relay, verifier, catalogue, agencies, index_key))
    }
}

shared::router_state!(AppState(ApplicationsState));

/// Every route of the applications function with its contract, declared once: the router and
/// the OpenAPI document both come from here (without the shared layers; see `shared::http::finish`).
pub fn api(state: Arc<ApplicationsState>) -> OpenApiRouter {
    use handlers::*;
    let mut api = OpenApiRouter::new()
        .routes(routes!(services::list))
        .routes(routes!(services::get))
        .routes(routes!(applications::create, applications::list))
        .routes(routes!(applications::get, applications::patch))
        .routes(routes!(applications::submit))
        .routes(routes!(applications::withdraw))
        .routes(routes!(applications::supplement))
        .routes(routes!(messages::list, messages::post))
        .routes(routes!(webhooks::receive))
        .routes(routes!(agency::list))
        .routes(routes!(agency::get));
    body_is_optional(api.get_openapi_mut(), "/v1/applications/{id}/withdraw");
    api.with_state(AppState(state))
}

/// Marks the body of `POST path` optional. utoipa can only say so as `oneOf [body, null]`, which
/// would promise that a JSON `null` is accepted; an empty body is what is.
fn body_is_optional(doc: &mut utoipa::openapi::OpenApi, path: &str) {
    let body = doc.paths.paths.get_mut(path).and_then(|item| item.post.as_mut()).and_then(|operation| operation.request_body.as_mut());
    if let Some(utoipa::openapi::RefOr::T(body)) = body {
        body.required = Some(utoipa::openapi::Required::False);
    }
}

/// The routes alone (tests and the local runner's merged router).
pub fn router(state: Arc<ApplicationsState>) -> Router {
    api(state).split_for_parts().0
}

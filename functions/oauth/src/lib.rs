//! The portal as an OAuth 2.0 authorization server (SPEC §8): the token endpoint over the client
//! registry (`shared::clients`). Today `client_credentials` for agencies and partners acting for
//! themselves; issue 10 adds the authorization-code flow (authorize, consent requests, ID tokens,
//! userinfo, introspection, revocation) beside it.
//!
//! The crate is a library: `api(state)` declares every route with its contract once; `main.rs`
//! serves it (Lambda or plain HTTP), and the local runner merges it with the other functions.

pub mod answer;
pub mod domain;
mod handlers;
pub mod settings;
pub mod store;

use std::sync::Arc;

use axum::Router;
use shared::clients::Registry;
use shared::http::contract::{OpenApiRouter, routes};
use shared::http::{RateLimiter, TokenVerifier};
use shared::keys::KeyRing;
use shared::ports::{KeyValue, Ticker};

pub use answer::TokenResponse;
pub use settings::Settings;

pub struct OAuthState {
    pub kv: Arc<dyn KeyValue>,
    /// Signs the tokens (the current key) and verifies them (every key).
    pub keys: Arc<KeyRing>,
    /// Citizens' and clients' tokens of this issuer (issue 10's consent endpoints need it).
    pub verifier: Arc<TokenVerifier>,
    pub clients: Arc<Registry>,
    pub limiter: RateLimiter,
    pub settings: Settings,
    /// Time and token ids (`jti`).
    pub ticker: Ticker,
}

impl OAuthState {
    pub fn new(kv: Arc<dyn KeyValue>, keys: Arc<KeyRing>, clients: Arc<Registry>, settings: Settings) -> Self {
        let verifier = Arc::new(TokenVerifier::new(settings.issuer.clone(), settings.audience.clone(), &keys).with_sessions(kv.clone()));
        let limiter = RateLimiter::new(kv.clone());
        Self { kv, keys, verifier, clients, limiter, settings, ticker: Ticker::default() }
    }

    /// Replaces the system clock and random ids (tests fix time with `Ticker::fixed`).
    pub fn with_ticker(mut self, ticker: Ticker) -> Self {
        self.ticker = ticker;
        self
    }

    /// Builds everything from the environment: settings, and the client registry
    /// (`CLIENTS_JSON`, `CLIENTS_FILE`, or the dev seed off Lambda).
    pub fn from_env(kv: Arc<dyn KeyValue>, keys: Arc<KeyRing>) -> Result<Self, shared::runtime::BoxError> {
        Ok(Self::new(kv, keys, Arc::new(Registry::load()?), Settings::from_env()?))
    }
}

shared::router_state!(AppState(OAuthState));

/// Every route of the oauth function with its contract, declared once: the router and the
/// OpenAPI document both come from here (without the shared layers; see `shared::http::finish`).
pub fn api(state: Arc<OAuthState>) -> OpenApiRouter {
    let mut api = OpenApiRouter::new().routes(routes!(handlers::token::token));
    declare_components(api.get_openapi_mut());
    api.with_state(AppState(state))
}

/// The RFC 6749 error schema and HTTP Basic client authentication, referred to by the operations.
fn declare_components(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::PartialSchema;
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert("OAuthError".into(), answer::OAuthErrorDoc::schema());
    components.add_security_scheme(
        "client_secret_basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some("client_secret_basic: the form-urlencoded client_id and secret (RFC 6749 §2.3.1)"))
                .build(),
        ),
    );
}

/// The routes alone (tests and the local runner's merged router).
pub fn router(state: Arc<OAuthState>) -> Router {
    api(state).split_for_parts().0
}

//! Deliveries to agencies (SPEC §4.5) and the agency's delivery log (§4.6).
//!
//! - [`Deliverer`]: reads each agency's due lane (`shared::deliveries`), claims, POSTs signed
//!   Standard Webhooks v1 requests, and records each outcome per [`domain::decide`].
//! - [`api`]: `GET /v1/agency/{agency_id}/deliveries` and `POST …/{delivery_id}/redeliver`,
//!   behind the agency's client token.
//!
//! `main.rs` runs one of them by `DELIVERIES_MODE` (`http` or `sweep`); the local runner runs both.

mod api;
pub mod deliverer;
pub mod domain;
pub mod roles;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use shared::http::TokenVerifier;
use shared::http::contract::{OpenApiRouter, routes};
use shared::ports::{KeyValue, Ticker};

pub use deliverer::{Deliverer, LaneReport, SweepReport};
pub use settings::Settings;

/// What the delivery log's routes need.
pub struct DeliveriesState {
    pub kv: Arc<dyn KeyValue>,
    pub verifier: Arc<TokenVerifier>,
    pub ticker: Ticker,
}

impl DeliveriesState {
    pub fn new(kv: Arc<dyn KeyValue>, verifier: Arc<TokenVerifier>) -> Self {
        Self { kv, verifier, ticker: Ticker::default() }
    }

    /// Replaces the system clock and random ids (tests).
    pub fn with_ticker(mut self, ticker: Ticker) -> Self {
        self.ticker = ticker;
        self
    }
}

shared::router_state!(ApiState(DeliveriesState));

/// Every route of the deliveries function with its contract, declared once.
pub fn api(state: Arc<DeliveriesState>) -> OpenApiRouter {
    OpenApiRouter::new().routes(routes!(api::list)).routes(routes!(api::redeliver)).with_state(ApiState(state))
}

/// The routes alone (tests).
pub fn router(state: Arc<DeliveriesState>) -> Router {
    api(state).split_for_parts().0
}

//! Notifications (SPEC §6): the queue consumer that turns domain events into SMS (Amazon SNS),
//! email (Amazon SES v2) and inbox entries, and the citizen's HTTP API for settings and inbox.
//!
//! - [`Notifier`] consumes the events queue: one-time codes, security events, application status
//!   changes and messages, identity verification and level changes, document verdicts. Each
//!   event is delivered at most once per destination (the [`ledger`]) and written to the inbox
//!   at most once (its entry's key derives from the event id); temporary failures are retried by
//!   the queue, and messages that keep failing land in its dead-letter queue.
//! - [`router`] serves `GET|PUT|DELETE /v1/me/notification-settings`,
//!   `GET /v1/me/notifications` and `POST /v1/me/notifications/{id}/read` (see [`api`]).
//!   `PUT` takes the GET shape, whole or in part, and answers 200 with the resulting settings;
//!   switching a security SMS/email/inbox channel off is refused with 422 `validation_failed`
//!   (SPEC: they "cannot be switched off" — refusing tells the client its request did not take
//!   effect, where forcing them on silently would not). `DELETE` answers 200 with the defaults.
//!
//! The binary (`main.rs`) is either half, chosen by `NOTIFICATIONS_MODE`:
//! - `queue` (default): on Lambda an SQS event source handler reporting partial batch failures
//!   (`ReportBatchItemFailures`); elsewhere a poller of `EVENTS_QUEUE_URL` / the embedded queue.
//! - `api`: the router, under `lambda_http` on Lambda or as plain HTTP on `$PORT` elsewhere.
//!   It verifies access tokens locally, so it needs `JWT_SIGNING_KEYS`, `JWT_ISSUER`, `JWT_AUDIENCE`.
//!
//! `PORTAL_URL` (optional) is the public address of the citizen's cabinet; emails link into it,
//! and without it they name the cabinet section instead.

pub mod api;
pub mod domain;
pub mod error;
pub mod inbox;
pub mod ledger;
pub mod notifier;
pub mod preferences;
pub mod sms;
pub mod templates;

use std::sync::Arc;

use axum::Router;
use shared::http::TokenVerifier;
use shared::http::contract::{OpenApiRouter, routes};
use shared::ports::Ticker;
use shared::ports::kv::KeyValue;

pub use domain::preferences::{Category, Channel, Preferences};
pub use ledger::DEFAULT_CLAIM_LEASE;
pub use notifier::{Notifier, parse_event};
pub use sms::{MAX_SMS_SEGMENTS, sms_segments};

/// What the HTTP handlers need.
pub struct NotificationsState {
    pub kv: Arc<dyn KeyValue>,
    pub verifier: Arc<TokenVerifier>,
    pub ticker: Ticker,
}

impl NotificationsState {
    pub fn new(kv: Arc<dyn KeyValue>, verifier: Arc<TokenVerifier>) -> Self {
        Self { kv, verifier, ticker: Ticker::default() }
    }

    /// The clock that stamps settings changes and read marks (tests fix it).
    pub fn with_ticker(self, ticker: Ticker) -> Self {
        Self { ticker, ..self }
    }
}

shared::router_state!(
    /// The router's state: cheap to clone, gives `Authenticated` its verifier.
    ApiState(NotificationsState)
);

/// Every route of the notifications API with its contract, declared once: the router and the
/// OpenAPI document both come from here (without the shared layers; see `shared::http::finish`).
pub fn api(state: Arc<NotificationsState>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(api::settings, api::update_settings, api::reset_settings))
        .routes(routes!(api::list))
        .routes(routes!(api::mark_read))
        .with_state(ApiState(state))
}

/// The routes alone (tests and the local runner's merged router).
pub fn router(state: Arc<NotificationsState>) -> Router {
    api(state).split_for_parts().0
}

//! Documents (SPEC §5): upload slots with presigned PUT URLs, asynchronous verification of
//! what landed in object storage, downloads by short-lived presigned GET URLs, the versioned
//! personal vault, deletion with a 30-day restore window, public share links, and result
//! documents uploaded by agencies (SPEC §4.4).
//!
//! Three entry points share [`DocumentsState`]:
//! - [`api`]: the HTTP API with its OpenAPI contract (citizen routes, the public share route, the
//!   signed agency upload); [`router`] is its routes alone;
//! - [`UploadHandler`]: a `shared::worker::MessageHandler` for S3 object-created notifications
//!   from the uploads queue (the local runner raises the same JSON, see [`notification`]);
//! - [`Purger`]: the scheduled purge of deleted documents and abandoned uploads.
//!
//! The bytes never pass through this function: clients upload and download with presigned
//! URLs, and verification reads only ranges (the head to sniff the format, then 1 MiB chunks
//! for the SHA-256).

pub mod domain;
pub mod errors;
mod handlers;
pub mod notification;
pub mod policy;
pub mod purge;
pub mod roles;
pub mod sniff;
pub mod store;
pub mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use chrono::{DateTime, Utc};
use shared::http::contract::{OpenApiRouter, routes};

use shared::agencies::Registry;
use shared::events::Event;
use shared::http::{RateLimiter, TokenVerifier};
use shared::keys::KeyRing;
use shared::outbox::Relay;
use shared::persist::Attempt;
use shared::ports::{KeyValue, KvError, ObjectStore, Ticker, TxOp};
use shared::settings::{Env, SettingError};

pub use purge::{PurgeReport, Purger};
pub use uploads::UploadHandler;

/// Tunables; defaults follow SPEC §5.
#[derive(Clone, Debug)]
pub struct Settings {
    pub issuer: String,
    pub audience: String,
    /// Base of the share links this API hands out (e.g. `https://api.example.ru`).
    pub public_base_url: String,
    pub upload_url_ttl: Duration,
    pub download_url_ttl: Duration,
    /// Lifetime of the presigned URL a share link redirects to: the most a revoked share can
    /// still be used by someone who already followed it.
    pub share_redirect_ttl: Duration,
    pub max_share_ttl: Duration,
    pub quota_bytes: u64,
    pub restore_window: chrono::Duration,
    /// Uploads that never arrived are purged after this long.
    pub pending_upload_timeout: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:3000".into(),
            audience: "gosuslugi-api".into(),
            public_base_url: "http://127.0.0.1:3000".into(),
            upload_url_ttl: Duration::from_secs(15 * 60),
            download_url_ttl: Duration::from_secs(5 * 60),
            share_redirect_ttl: Duration::from_secs(60),
            max_share_ttl: Duration::from_secs(7 * 24 * 60 * 60),
            quota_bytes: 500 * 1024 * 1024,
            restore_window: chrono::Duration::days(30),
            pending_upload_timeout: chrono::Duration::days(1),
        }
    }
}

impl Settings {
    /// Reads overrides from the environment: `JWT_ISSUER`, `JWT_AUDIENCE`, `PUBLIC_BASE_URL`,
    /// `UPLOAD_URL_TTL_SECONDS`, `DOWNLOAD_URL_TTL_SECONDS`, `SHARE_REDIRECT_TTL_SECONDS`,
    /// `DOCUMENT_QUOTA_BYTES`; a bad value is an error naming its variable.
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from(&Env::process())
    }

    pub fn from(env: &Env) -> Result<Self, SettingError> {
        let d = Self::default();
        Ok(Self {
            issuer: env.text("JWT_ISSUER").unwrap_or(d.issuer),
            audience: env.text("JWT_AUDIENCE").unwrap_or(d.audience),
            public_base_url: env.text("PUBLIC_BASE_URL").map(|v| v.trim_end_matches('/').to_owned()).unwrap_or(d.public_base_url),
            upload_url_ttl: env.seconds("UPLOAD_URL_TTL_SECONDS", d.upload_url_ttl)?,
            download_url_ttl: env.seconds("DOWNLOAD_URL_TTL_SECONDS", d.download_url_ttl)?,
            share_redirect_ttl: env.seconds("SHARE_REDIRECT_TTL_SECONDS", d.share_redirect_ttl)?,
            quota_bytes: env.parse("DOCUMENT_QUOTA_BYTES", d.quota_bytes, "a number of bytes")?,
            ..d
        })
    }
}

/// Everything the three entry points share.
pub struct DocumentsState {
    pub kv: Arc<dyn KeyValue>,
    pub objects: Arc<dyn ObjectStore>,
    /// Commits state changes with their events (`Relay::commit`) and relays them.
    pub relay: Relay,
    pub limiter: RateLimiter,
    pub settings: Settings,
    /// Time and new ids; tests fix and move time with `Ticker::fixed`.
    pub ticker: Ticker,
}

impl DocumentsState {
    pub fn new(kv: Arc<dyn KeyValue>, objects: Arc<dyn ObjectStore>, relay: Relay, settings: Settings) -> Self {
        Self { limiter: RateLimiter::new(kv.clone()), kv, objects, relay, settings, ticker: Ticker::default() }
    }

    /// Uses `ticker` for time and ids, the relay's sweep included.
    pub fn with_ticker(mut self, ticker: Ticker) -> Self {
        self.relay = self.relay.with_clock(ticker.clock.clone());
        self.ticker = ticker;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.ticker.now()
    }

    /// Commits `ops` with `events` as one round of `persist::retry`: `value` once written,
    /// `Conflict` when the round lost a race.
    pub(crate) async fn commit_round<T>(&self, ops: Vec<TxOp>, events: &[Event], value: T) -> Result<Attempt<T>, KvError> {
        Ok(match Attempt::of(self.relay.commit(ops, events).await)? {
            Attempt::Done(()) => Attempt::Done(value),
            Attempt::Conflict => Attempt::Conflict,
        })
    }
}

/// The HTTP API's state: the shared state plus what only HTTP needs.
#[derive(Clone)]
pub struct Api {
    pub docs: Arc<DocumentsState>,
    pub verifier: Arc<TokenVerifier>,
    /// Who may upload result documents, and their signing secrets.
    pub agencies: Arc<Registry>,
}

impl Api {
    /// Verifies citizens' access tokens with `keys` (issuer and audience from the settings)
    /// and agencies' signatures with `agencies`.
    pub fn new(docs: Arc<DocumentsState>, keys: &KeyRing, agencies: Arc<Registry>) -> Self {
        let verifier = Arc::new(TokenVerifier::new(docs.settings.issuer.clone(), docs.settings.audience.clone(), keys).with_sessions(docs.kv.clone()));
        Self { docs, verifier, agencies }
    }
}

impl std::ops::Deref for Api {
    type Target = DocumentsState;
    fn deref(&self) -> &DocumentsState {
        &self.docs
    }
}

impl FromRef<Api> for Arc<TokenVerifier> {
    fn from_ref(api: &Api) -> Self {
        api.verifier.clone()
    }
}

/// Every route of the documents API with its contract, declared once: the router and the
/// OpenAPI document both come from here (without the shared layers; see `shared::http::finish_api`).
pub fn api(api: Api) -> OpenApiRouter {
    use handlers::{agency, documents, shares};
    OpenApiRouter::new()
        .routes(routes!(documents::create, documents::list))
        .routes(routes!(documents::show, documents::delete))
        .routes(routes!(documents::versions))
        .routes(routes!(documents::restore))
        .routes(routes!(shares::create, shares::list))
        .routes(routes!(shares::revoke))
        .routes(routes!(shares::follow))
        .routes(routes!(agency::create))
        .routes(routes!(agency::download))
        .with_state(api)
}

/// The routes alone (tests and the local runner's merged router).
pub fn router(api: Api) -> Router {
    self::api(api).split_for_parts().0
}

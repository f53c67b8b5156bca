//! Every function's state and declared API, assembled into one process: one router and one
//! OpenAPI document, both from the functions' own declarations.

use std::collections::BTreeMap;
use std::sync::Arc;

use shared::adapters::embedded::outbox::DevOutbox;
use shared::config::{Adapters, Backend, Config};
use shared::http::contract::{self, OpenApiRouter};
use shared::outbox::Relay;
use shared::runtime::BoxError;

use crate::settings::RunnerSettings;

pub const TITLE: &str = "Citizen services portal API (Gosuslugi/ESIA model)";

/// The functions' states, built once from the adapters.
pub struct States {
    pub auth: Arc<auth::AuthState>,
    pub notifications: Arc<notifications::NotificationsState>,
    pub documents: Arc<documents::DocumentsState>,
    pub documents_api: documents::Api,
    pub applications: Arc<applications::ApplicationsState>,
    // OAuth (issue 9, oauth part): the client registry and POST /oauth2/token.
    pub oauth: Arc<oauth::OAuthState>,
    // Demo agencies (issue 9, demo-agencies part): started by main once the runner listens.
    pub catalogue: Arc<applications::Catalogue>,
    pub demo: Option<crate::demo::Prepared>,
    // Deliveries (issue 9, deliveries part): the delivery log's routes and the deliverer main runs.
    pub deliveries: Arc<deliveries::DeliveriesState>,
    pub deliverer: Arc<deliveries::Deliverer>,
}

impl States {
    /// Every function verifies tokens of the one issuer the runner names, and links point at
    /// the address it serves.
    pub fn build(adapters: &Adapters, relay: Relay, runner: &RunnerSettings) -> Result<Self, BoxError> {
        let mut registry = shared::agencies::Registry::load()?;
        // Demo agencies (issue 9, demo-agencies part): seed agencies without a delivery_url are
        // pointed at the simulator before the registry is shared.
        let demo = if runner.demo_agencies { Some(crate::demo::prepare(&mut registry)?) } else { None };
        let agencies = Arc::new(registry);
        let mut auth_settings = auth::Settings::from_env()?;
        auth_settings.issuer = runner.issuer.clone();
        let auth = Arc::new(auth::AuthState::new(adapters.kv.clone(), relay.clone(), adapters.require_keys()?, adapters.require_index_key()?, auth_settings));
        let notifications = Arc::new(notifications::NotificationsState::new(adapters.kv.clone(), auth.verifier.clone()));
        let mut documents_settings = documents::Settings::from_env()?;
        (documents_settings.issuer, documents_settings.public_base_url) = (runner.issuer.clone(), runner.public_base_url.clone());
        let documents = Arc::new(documents::DocumentsState::new(adapters.kv.clone(), adapters.objects.clone(), relay.clone(), documents_settings));
        let documents_api = documents::Api::new(documents.clone(), adapters.require_keys()?.as_ref(), agencies.clone());
        let catalogue = Arc::new(applications::Catalogue::load(&agencies)?);
        let mut budget = applications::WRITE_BUDGET;
        if let Some(n) = runner.writes_per_minute {
            budget.writes = shared::http::Limit::per_minute(n);
        }
        if let Some(n) = runner.drafts_per_hour {
            budget.creations = shared::http::Limit::per_hour(n);
        }
        let applications = Arc::new(
            applications::ApplicationsState::new(
                adapters.kv.clone(),
                relay,
                auth.verifier.clone(),
                catalogue.clone(),
                agencies.clone(),
                adapters.require_index_key()?,
            )
            .with_write_budget(budget),
        );
        // OAuth (issue 9, oauth part): client tokens of the runner's issuer, on the shared key ring.
        let mut oauth_settings = oauth::Settings::from_env()?;
        oauth_settings.issuer = runner.issuer.clone();
        let clients = Arc::new(shared::clients::Registry::load()?);
        let oauth = Arc::new(oauth::OAuthState::new(adapters.kv.clone(), adapters.require_keys()?, clients, oauth_settings));
        // Deliveries (issue 9, deliveries part): to every agency with a delivery_url (demo ones included).
        let deliveries = Arc::new(deliveries::DeliveriesState::new(adapters.kv.clone(), auth.verifier.clone()));
        let deliverer = Arc::new(deliveries::Deliverer::new(adapters.kv.clone(), agencies.clone(), deliveries::Settings::from_env()?, Default::default())?);
        Ok(Self { auth, notifications, documents, documents_api, applications, oauth, catalogue, demo, deliveries, deliverer })
    }

    /// Each function crate's declared API, by crate name.
    fn apis(&self) -> Vec<(&'static str, OpenApiRouter)> {
        vec![
            ("auth", auth::api(self.auth.clone())),
            ("notifications", notifications::api(self.notifications.clone())),
            ("documents", documents::api(self.documents_api.clone())),
            ("applications", applications::api(self.applications.clone())),
            ("oauth", oauth::api(self.oauth.clone())),
            ("deliveries", deliveries::api(self.deliveries.clone())),
        ]
    }
}

/// Every function's API and the runner's own, merged.
pub fn api(states: &States, dev_outbox: Option<Arc<DevOutbox>>) -> OpenApiRouter {
    states.apis().into_iter().fold(crate::local::dev_api(dev_outbox), |merged, (_, api)| merged.merge(api))
}

/// States over a throw-away embedded data dir: enough to read the declarations.
async fn scratch_states() -> Result<(States, tempfile::TempDir), BoxError> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::from_env()?;
    (config.backend, config.data_dir, config.jwt_signing_keys, config.index_key) = (Backend::Embedded, dir.path().to_owned(), None, None);
    let adapters = Adapters::build(&config).await?;
    let relay = Relay::new(adapters.kv.clone(), adapters.events_queue.clone());
    let settings = RunnerSettings { demo_agencies: false, ..RunnerSettings::from_env()? };
    Ok((States::build(&adapters, relay, &settings)?, dir))
}

/// `{"auth": [["GET", "/v1/me"], …], …}`: what each function serves, for the template check.
/// `/health` and `/openapi.json` answer on every function and are left out.
pub async fn routes_by_function() -> Result<String, BoxError> {
    let (states, _dir) = scratch_states().await?;
    let mut out = BTreeMap::new();
    for (name, api) in states.apis() {
        let (_, doc) = contract::split(api, TITLE);
        let routes: Vec<(String, String)> = contract::routes_of(&doc).into_iter().filter(|(_, path)| path != "/health" && path != "/openapi.json").collect();
        out.insert(name, routes);
    }
    Ok(serde_json::to_string_pretty(&out)?)
}

/// The merged OpenAPI document the runner serves at `/openapi.json`.
pub async fn document() -> Result<String, BoxError> {
    let (states, _dir) = scratch_states().await?;
    let (_, doc) = contract::split(api(&states, Some(Arc::new(DevOutbox::new(states.auth.kv.clone())))), TITLE);
    Ok(serde_json::to_string_pretty(&doc)?)
}

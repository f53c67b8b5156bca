//! The deliveries function. One binary, two roles by `DELIVERIES_MODE` (the template deploys it
//! twice): `sweep` (default) delivers for `DELIVERY_RUN_WINDOW` per schedule event on Lambda
//! (every `DELIVERY_SWEEP_INTERVAL` until SIGTERM elsewhere); `http` serves the delivery log.

use std::sync::Arc;

use deliveries::{Deliverer, DeliveriesState, Settings};
use shared::runtime::{BoxError, every, serve};
use shared::settings::Env;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    shared::runtime::init_tracing();
    let env = Env::process();
    let (mode, settings) = (env.choice("DELIVERIES_MODE", &["sweep", "http"], "sweep")?, Settings::from(&env)?);
    let adapters = shared::config::Adapters::build(&shared::config::Config::from_env()?).await?;
    if mode == "http" {
        let verifier = Arc::new(shared::http::TokenVerifier::from_settings(&env, &*adapters.require_keys()?, adapters.kv.clone()));
        return serve(shared::http::finish_api(deliveries::api(Arc::new(DeliveriesState::new(adapters.kv.clone(), verifier))), "Deliveries")).await;
    }
    let agencies = Arc::new(shared::agencies::Registry::load()?);
    let (window, interval) = (settings.window, settings.interval);
    let deliverer = Arc::new(Deliverer::new(adapters.kv.clone(), agencies, settings, Default::default())?);
    every(Some(interval), move || {
        let deliverer = deliverer.clone();
        async move { Ok(deliverer.run(Some(window), std::future::pending()).await) }
    })
    .await
}

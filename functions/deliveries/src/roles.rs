//! The deliveries binary's two roles, chosen by `DELIVERIES_MODE` (the template deploys it
//! twice): `sweep` (default) delivers for `DELIVERY_RUN_WINDOW` per schedule event on Lambda
//! (every `DELIVERY_SWEEP_INTERVAL` until SIGTERM elsewhere); `http` serves the delivery log.

use std::sync::Arc;

use shared::runtime::{BoxError, every, serve};
use shared::settings::Env;

use crate::{Deliverer, DeliveriesState, Settings};

pub async fn run(env: &Env) -> Result<(), BoxError> {
    let (mode, settings) = (env.choice("DELIVERIES_MODE", &["sweep", "http"], "sweep")?, Settings::from(env)?);
    let adapters = shared::config::Adapters::build(&shared::config::Config::from_env()?).await?;
    if mode == "http" {
        let verifier = Arc::new(shared::http::TokenVerifier::from_settings(env, &*adapters.require_keys()?, adapters.kv.clone()));
        return serve(shared::http::finish_api(crate::api(Arc::new(DeliveriesState::new(adapters.kv.clone(), verifier))), "Deliveries")).await;
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

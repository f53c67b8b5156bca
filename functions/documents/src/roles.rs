//! The documents binary's three roles, chosen by `DOCUMENTS_MODE` (the SAM template deploys the
//! binary three times): `http` (default) the API; `uploads` the object-created consumer;
//! `purge` one purge run per schedule event (once and exit off Lambda, for cron).

use std::sync::Arc;

use shared::config::{Adapters, Config};
use shared::outbox::Relay;
use shared::runtime::{BoxError, consume, every, serve};
use shared::settings::Env;

use crate::{Api, DocumentsState, Purger, Settings, UploadHandler};

pub async fn run(env: &Env) -> Result<(), BoxError> {
    let (mode, settings) = (env.choice("DOCUMENTS_MODE", &["http", "uploads", "purge"], "http")?, Settings::from(env)?);
    let adapters = Adapters::build(&Config::from_env()?).await?;
    let relay = Relay::new(adapters.kv.clone(), adapters.events_queue.clone());
    let state = Arc::new(DocumentsState::new(adapters.kv.clone(), adapters.objects.clone(), relay, settings));
    match mode {
        "uploads" => consume(adapters.uploads_queue.clone(), Arc::new(UploadHandler::new(state))).await,
        "purge" => {
            let purger = Arc::new(Purger::new(state.clone()));
            every(None, move || {
                let (purger, state) = (purger.clone(), state.clone());
                async move { Ok(purger.run(state.now()).await?) }
            })
            .await
        }
        _ => {
            let api = Api::new(state, adapters.require_keys()?.as_ref(), Arc::new(shared::agencies::Registry::load()?));
            serve(shared::http::finish_api(crate::api(api), "Documents")).await
        }
    }
}

//! The applications function: its routes and `GET /openapi.json` under Lambda (API Gateway HTTP
//! API) or plain HTTP on `$PORT`.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), shared::runtime::BoxError> {
    shared::runtime::init_tracing();
    let config = shared::config::Config::from_env()?;
    let adapters = shared::config::Adapters::build(&config).await?;
    let relay = shared::outbox::Relay::new(adapters.kv.clone(), adapters.events_queue.clone());
    let state = applications::ApplicationsState::from_env(adapters.kv.clone(), relay, &*adapters.require_keys()?, adapters.require_index_key()?)?;
    shared::runtime::serve(shared::http::finish_api(applications::api(Arc::new(state)), "Applications")).await
}

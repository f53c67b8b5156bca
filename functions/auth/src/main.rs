//! The auth function: its router under Lambda (API Gateway HTTP API) or plain HTTP on `$PORT`.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), shared::runtime::BoxError> {
    shared::runtime::init_tracing();
    let config = shared::config::Config::from_env()?;
    let adapters = shared::config::Adapters::build(&config).await?;
    let settings = auth::Settings::from_env()?;
    let relay = shared::outbox::Relay::new(adapters.kv.clone(), adapters.events_queue.clone());
    let state = Arc::new(auth::AuthState::new(adapters.kv.clone(), relay, adapters.require_keys()?, adapters.require_index_key()?, settings));
    shared::runtime::serve(shared::http::finish_api(auth::api(state), "Auth")).await
}

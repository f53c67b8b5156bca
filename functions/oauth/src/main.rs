//! The oauth function: `POST /oauth2/token` and `GET /openapi.json` under Lambda (API Gateway
//! HTTP API) or plain HTTP on `$PORT`.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), shared::runtime::BoxError> {
    shared::runtime::init_tracing();
    let config = shared::config::Config::from_env()?;
    let adapters = shared::config::Adapters::build(&config).await?;
    let state = oauth::OAuthState::from_env(adapters.kv.clone(), adapters.require_keys()?)?;
    shared::runtime::serve(shared::http::finish_api(oauth::api(Arc::new(state)), "OAuth")).await
}

//! The notifications function. One binary, two roles chosen by `NOTIFICATIONS_MODE`:
//! `queue` (default) consumes the events queue (Lambda's SQS event source, or a poller);
//! `api` serves the settings and inbox routes (`lambda_http`, or plain HTTP on `$PORT`).

use std::sync::Arc;

use notifications::{NotificationsState, Notifier, api};
use shared::config::{Adapters, Config};
use shared::http::TokenVerifier;
use shared::runtime::{BoxError, consume, serve};
use shared::settings::Env;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    shared::runtime::init_tracing();
    let env = Env::process();
    let mode = env.choice("NOTIFICATIONS_MODE", &["queue", "api"], "queue")?;
    let adapters = Adapters::build(&Config::from_env()?).await?;
    if mode == "api" {
        let verifier = Arc::new(TokenVerifier::from_settings(&env, adapters.require_keys()?.as_ref(), adapters.kv.clone()));
        return serve(shared::http::finish_api(api(Arc::new(NotificationsState::new(adapters.kv, verifier))), "Notifications")).await;
    }
    let notifier = Notifier::new(adapters.kv, adapters.sms, adapters.email).with_portal_url(env.text("PORTAL_URL"));
    consume(adapters.events_queue.clone(), Arc::new(notifier)).await
}

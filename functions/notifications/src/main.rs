//! The notifications function. One binary, two roles chosen by `NOTIFICATIONS_MODE`:
//! - `queue` (default): consumes the events queue — Lambda's SQS event source (partial batch
//!   failures) on AWS, a poller of the queue anywhere else (container, VM);
//! - `api`: serves the settings and inbox routes — under `lambda_http` on AWS, plain HTTP on
//!   `$PORT` elsewhere.
//!
//! Adapters come from the environment (`shared::config`).

use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use notifications::{NotificationsState, Notifier, api, portal_url_from_env};
use shared::config::{Adapters, Config};
use shared::http::TokenVerifier;
use shared::runtime::{BoxError, init_tracing, on_lambda, serve, shutdown_signal};
use shared::worker::{ConsumerOptions, DEFAULT_BATCH_CONCURRENCY, run_consumer, sqs_batch_handler};

/// Defaults of the configuration contract, as auth uses them.
const DEFAULT_ISSUER: &str = "http://127.0.0.1:3000";
const DEFAULT_AUDIENCE: &str = "gosuslugi-api";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Api,
    Queue,
}

impl Mode {
    fn from_env() -> Result<Self, BoxError> {
        match std::env::var("NOTIFICATIONS_MODE").ok().as_deref().map(str::trim) {
            None | Some("") | Some("queue") => Ok(Self::Queue),
            Some("api") => Ok(Self::Api),
            Some(other) => Err(format!("NOTIFICATIONS_MODE must be `api` or `queue`, not `{other}`").into()),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    init_tracing();
    let mode = Mode::from_env()?;
    let adapters = Adapters::build(&Config::from_env()?).await?;
    match mode {
        Mode::Api => {
            let env = |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned());
            let keys = adapters.require_keys()?;
            let verifier = Arc::new(
                TokenVerifier::new(env("JWT_ISSUER", DEFAULT_ISSUER), env("JWT_AUDIENCE", DEFAULT_AUDIENCE), &keys).with_sessions(adapters.kv.clone()),
            );
            serve(shared::http::finish_api(api(Arc::new(NotificationsState::new(adapters.kv, verifier))), "Notifications")).await
        }
        Mode::Queue => {
            let notifier = Arc::new(Notifier::new(adapters.kv, adapters.sms, adapters.email).with_portal_url(portal_url_from_env()));
            if on_lambda() {
                lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
                    let notifier = notifier.clone();
                    async move { Ok::<SqsBatchResponse, Infallible>(sqs_batch_handler(notifier.as_ref(), event.payload, DEFAULT_BATCH_CONCURRENCY).await) }
                }))
                .await
            } else {
                run_consumer(adapters.events_queue, notifier, ConsumerOptions::default(), shutdown_signal()).await;
                Ok(())
            }
        }
    }
}

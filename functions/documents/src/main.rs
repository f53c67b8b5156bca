//! The documents function. One binary, three roles chosen by `DOCUMENTS_MODE` (the SAM
//! template deploys it three times with different values):
//! - `http` (default): the API — under `lambda_http` on Lambda, plain HTTP on `$PORT` elsewhere;
//! - `uploads`: the object-created consumer — Lambda's SQS event source on Lambda, a poller of
//!   `UPLOADS_QUEUE_URL` (or the embedded uploads queue) elsewhere;
//! - `purge`: one purge run — per EventBridge schedule event on Lambda, once and exit elsewhere
//!   (for cron or a Kubernetes CronJob).

use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use documents::{Api, DocumentsState, Purger, Settings, UploadHandler};
use lambda_runtime::{LambdaEvent, service_fn};
use shared::config::{Adapters, Config};
use shared::outbox::Relay;
use shared::runtime::{BoxError, init_tracing, on_lambda, shutdown_signal};
use shared::worker::{ConsumerOptions, DEFAULT_BATCH_CONCURRENCY, run_consumer, sqs_batch_handler};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    init_tracing();
    let mode = std::env::var("DOCUMENTS_MODE").unwrap_or_else(|_| "http".into());
    if !matches!(mode.as_str(), "http" | "uploads" | "purge") {
        return Err(format!("DOCUMENTS_MODE must be http, uploads or purge, not `{mode}`").into());
    }
    let adapters = Adapters::build(&Config::from_env()?).await?;
    let relay = Relay::new(adapters.kv.clone(), adapters.events_queue.clone());
    let state = Arc::new(DocumentsState::new(adapters.kv.clone(), adapters.objects.clone(), relay, Settings::from_env()));
    match mode.as_str() {
        "http" => {
            let api = Api::new(state, adapters.require_keys()?.as_ref(), Arc::new(shared::agencies::Registry::load()?));
            shared::runtime::serve(shared::http::finish_api(documents::api(api), "Documents")).await
        }
        "uploads" => {
            let handler = Arc::new(UploadHandler::new(state));
            if on_lambda() {
                lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
                    let handler = handler.clone();
                    async move { Ok::<SqsBatchResponse, Infallible>(sqs_batch_handler(handler.as_ref(), event.payload, DEFAULT_BATCH_CONCURRENCY).await) }
                }))
                .await
            } else {
                run_consumer(adapters.uploads_queue, handler, ConsumerOptions::default(), shutdown_signal()).await;
                Ok(())
            }
        }
        "purge" => {
            let purger = Arc::new(Purger::new(state.clone()));
            if on_lambda() {
                lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
                    let (purger, state) = (purger.clone(), state.clone());
                    async move { purger.run(state.now()).await.map_err(BoxError::from) }
                }))
                .await
            } else {
                let report = purger.run(state.now()).await?;
                println!("{}", serde_json::to_string(&report)?);
                Ok(())
            }
        }
        _ => unreachable!("checked above"),
    }
}

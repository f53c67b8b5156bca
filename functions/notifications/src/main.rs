//! The notifications function: Lambda's SQS event source on AWS, a poller of the events queue
//! anywhere else (container, VM). Adapters come from the environment (`shared::config`).

use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use notifications::Notifier;
use shared::config::{Adapters, Config};
use shared::runtime::{BoxError, init_tracing, on_lambda, shutdown_signal};
use shared::worker::{ConsumerOptions, DEFAULT_BATCH_CONCURRENCY, run_consumer, sqs_batch_handler};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    init_tracing();
    let adapters = Adapters::build(&Config::from_env()?).await?;
    let notifier = Arc::new(Notifier::new(adapters.kv, adapters.sms, adapters.email));
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

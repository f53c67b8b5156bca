//! The outbox sweep: on a schedule (EventBridge on AWS), relays every staged event older than
//! a minute to the events queue. Requests relay their own events at once; this catches the
//! ones a crash or a queue outage left behind (ARCHITECTURE.md, "Events and delivery guarantees").
//! Off Lambda it sweeps every `SWEEP_INTERVAL_SECONDS` (default 30) until SIGTERM.

use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use shared::config::{Adapters, Config};
use shared::outbox::Relay;
use shared::runtime::BoxError;

const MIN_AGE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    shared::runtime::init_tracing();
    let config = Config::from_env()?;
    let adapters = Adapters::build(&config).await?;
    let relay = Relay::new(adapters.kv.clone(), adapters.events_queue.clone());
    if shared::runtime::on_lambda() {
        let relay = &relay;
        return lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
            let relayed = relay.sweep(MIN_AGE).await?;
            tracing::info!(relayed, "outbox sweep done");
            Ok::<_, BoxError>(serde_json::json!({ "relayed": relayed }))
        }))
        .await;
    }
    let every = std::env::var("SWEEP_INTERVAL_SECONDS").ok().and_then(|v| v.parse().ok()).map(Duration::from_secs).unwrap_or(Duration::from_secs(30));
    let shutdown = shared::runtime::shutdown_signal();
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tick.tick() => match relay.sweep(MIN_AGE).await {
                Ok(relayed) => tracing::info!(relayed, "outbox sweep done"),
                Err(e) => tracing::warn!(error = %e, "outbox sweep failed"),
            },
        }
    }
}

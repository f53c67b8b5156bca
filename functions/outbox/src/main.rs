//! The outbox sweep: on a schedule (EventBridge on AWS), relays every staged event older than
//! a minute to the events queue. Requests relay their own events at once; this catches the
//! ones a crash or a queue outage left behind (ARCHITECTURE.md, "Events and delivery guarantees").
//! Off Lambda it sweeps every `SWEEP_INTERVAL_SECONDS` (default 30) until SIGTERM.

use std::time::Duration;

use shared::config::{Adapters, Config};
use shared::outbox::Relay;
use shared::runtime::{BoxError, every};
use shared::settings::Env;

const MIN_AGE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    shared::runtime::init_tracing();
    let period = Env::process().seconds("SWEEP_INTERVAL_SECONDS", Duration::from_secs(30))?;
    let adapters = Adapters::build(&Config::from_env()?).await?;
    let relay = Relay::new(adapters.kv.clone(), adapters.events_queue.clone());
    every(Some(period), move || {
        let relay = relay.clone();
        async move { Ok(serde_json::json!({ "relayed": relay.sweep(MIN_AGE).await? })) }
    })
    .await
}

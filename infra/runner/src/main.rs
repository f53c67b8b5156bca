//! The local runner: every function's routes on one port, the queue consumer and the outbox
//! sweep in-process, everything stored under `DATA_DIR` (redb file, files). No server, no
//! Docker, no AWS account. With `BACKEND=aws` the same process runs against AWS or an emulator.

mod app;
mod demo;
mod local;
mod settings;

use std::time::Duration;

use shared::config::{Adapters, Config};
use shared::http::contract;
use shared::outbox::Relay;
use shared::runtime::BoxError;
use shared::worker::{ConsumerOptions, run_consumer};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    match std::env::args().nth(1).as_deref() {
        // Ops helper: a fresh key ring for JWT_SIGNING_KEYS (the template's JwtSigningKeys), on stdout.
        Some("--generate-jwt-keys") => {
            println!("{}", shared::keys::KeyRing::generate_json()?);
            return Ok(());
        }
        // Ops helper (oauth, issue 9): a new OAuth client secret and its argon2id hash for the
        // client registry (CLIENTS_JSON), as JSON on stdout.
        Some("--generate-client-secret") => {
            let (secret, hash) = shared::clients::generate_secret().map_err(|e| e.to_string())?;
            println!("{}", serde_json::json!({"client_secret": secret, "client_secret_hash": hash}));
            return Ok(());
        }
        // The routes each function crate declares, for the template check (infra/lambda/check_routes.py).
        Some("--routes") => {
            println!("{}", app::routes_by_function().await?);
            return Ok(());
        }
        // The whole OpenAPI document, for generated clients and API testers.
        Some("--openapi") => {
            println!("{}", app::document().await?);
            return Ok(());
        }
        _ => {}
    }
    shared::runtime::init_tracing();
    let settings = settings::RunnerSettings::from_env()?;
    let mut config = Config::from_env()?;
    config.public_base_url = settings.public_base_url.clone();
    local::check_dev_outbox_bind(config.dev_outbox, settings.bind)?;
    let adapters = Adapters::build(&config).await?;
    let relay = Relay::new(adapters.kv.clone(), adapters.events_queue.clone()).with_inline_publish(settings.inline_relay);
    let mut states = app::States::build(&adapters, relay.clone(), &settings)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let notifier = std::sync::Arc::new(
        notifications::Notifier::new(adapters.kv.clone(), adapters.sms.clone(), adapters.email.clone())
            .with_portal_url(shared::settings::Env::process().text("PORTAL_URL")),
    );
    let consumer = tokio::spawn(run_consumer(adapters.events_queue.clone(), notifier, ConsumerOptions::default(), stopped(stop_rx.clone())));
    let sweeper = tokio::spawn(sweep_outbox(relay, settings.sweep_every, stopped(stop_rx.clone())));
    let uploads_handler = std::sync::Arc::new(documents::UploadHandler::new(states.documents.clone()));
    let uploads_consumer = tokio::spawn(run_consumer(adapters.uploads_queue.clone(), uploads_handler, ConsumerOptions::default(), stopped(stop_rx.clone())));
    let purger = tokio::spawn(purge_documents(states.documents.clone(), stopped(stop_rx.clone())));
    // Deliveries (issue 9, deliveries part): every agency's lane in its own loop (DELIVERY_SWEEP_INTERVAL).
    let (deliverer, stop_delivering) = (states.deliverer.clone(), stopped(stop_rx.clone()));
    let delivering = tokio::spawn(async move { deliverer.run(None, stop_delivering).await });

    let (api, _) = contract::split(app::api(&states, adapters.dev_outbox.clone()), app::TITLE);
    let app = shared::http::finish(api.merge(local::docs_routes()).merge(local::local_object_routes(&adapters)));
    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let addr = listener.local_addr()?;
    // Demo agencies (issue 9, demo-agencies part): they call the runner back on its own address.
    let demo = states.demo.take().map(|prepared| {
        let loopback = if addr.ip().is_unspecified() { std::net::SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
        let portal = demo::Portal { base_url: format!("http://{loopback}"), kv: adapters.kv.clone(), catalogue: states.catalogue.clone() };
        tokio::spawn(prepared.run(portal, settings.demo_delay, stopped(stop_rx.clone())))
    });
    tracing::info!(%addr, backend = ?config.backend, data_dir = %config.data_dir.display(), "local runner ready");
    println!("listening on http://{addr}");
    shared::runtime::serve_plain(listener, app).await?;

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = consumer.await;
        let _ = sweeper.await;
        let _ = uploads_consumer.await;
        let _ = purger.await;
        let _ = delivering.await;
        if let Some(demo) = demo {
            let _ = demo.await;
        }
    })
    .await;
    Ok(())
}

/// The documents purge, hourly (on AWS an EventBridge schedule invokes it).
async fn purge_documents(state: std::sync::Arc<documents::DocumentsState>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let purger = documents::Purger::new(state.clone());
    let mut tick = tokio::time::interval(Duration::from_secs(60 * 60));
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {
                if let Err(e) = purger.run(state.now()).await {
                    tracing::warn!(error = %e, "documents purge failed");
                }
            }
        }
    }
}

/// Relays outbox events a crashed or slow request left behind.
async fn sweep_outbox(relay: Relay, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {
                match relay.sweep(Duration::from_secs(5)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(relayed = n, "outbox sweep relayed left-behind events"),
                    Err(e) => tracing::warn!(error = %e, "outbox sweep failed"),
                }
            }
        }
    }
}

//! The local runner: every function's routes on one port, the queue consumer and the outbox
//! sweep in-process, everything stored under `DATA_DIR` (redb file, files). No server, no
//! Docker, no AWS account. With `BACKEND=aws` the same process runs against AWS or an emulator.

mod openapi;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use shared::adapters::embedded::outbox::DevOutbox;
use shared::config::{Adapters, Config};
use shared::http::ApiError;
use shared::outbox::Relay;
use shared::runtime::BoxError;
use shared::worker::{ConsumerOptions, run_consumer};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Ops helper: a fresh key ring for JWT_SIGNING_KEYS (the template's JwtSigningKeys), on stdout.
    if std::env::args().nth(1).as_deref() == Some("--generate-jwt-keys") {
        println!("{}", shared::keys::KeyRing::generate_json()?);
        return Ok(());
    }
    shared::runtime::init_tracing();
    // The dev outbox defaults on for the embedded backend only: beside real AWS senders it
    // would expose codes sent to real people (an emulator run opts in with DEV_OUTBOX=1).
    let embedded = std::env::var("BACKEND").map(|b| b.is_empty() || b == "embedded").unwrap_or(true);
    if embedded && std::env::var_os("DEV_OUTBOX").is_none() {
        // SAFETY: single-threaded at this point; set before any task reads the environment.
        unsafe { std::env::set_var("DEV_OUTBOX", "1") };
    }
    let bind: SocketAddr = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into()).parse()?;
    let public_base = std::env::var("PUBLIC_BASE_URL").unwrap_or_else(|_| format!("http://{bind}"));
    if std::env::var_os("JWT_ISSUER").is_none() {
        // SAFETY: as above.
        unsafe { std::env::set_var("JWT_ISSUER", &public_base) };
    }
    if std::env::var_os("PUBLIC_BASE_URL").is_none() {
        // SAFETY: as above. Presigned object URLs and share links must name the port actually bound.
        unsafe { std::env::set_var("PUBLIC_BASE_URL", &public_base) };
    }
    let config = Config::from_env()?;
    check_dev_outbox_bind(config.dev_outbox, bind)?;
    let adapters = Adapters::build(&config).await?;
    // OUTBOX_INLINE_RELAY=0 simulates a crash between commit and relay: only the sweep delivers.
    let inline_relay = std::env::var("OUTBOX_INLINE_RELAY").map(|v| v != "0").unwrap_or(true);
    let relay = Relay::new(adapters.kv.clone(), adapters.events_queue.clone()).with_inline_publish(inline_relay);

    let auth_state = Arc::new(auth::AuthState::new(adapters.kv.clone(), relay.clone(), adapters.require_keys()?, adapters.require_index_key()?, auth::Settings::from_env()));
    let notifier = Arc::new(notifications::Notifier::new(adapters.kv.clone(), adapters.sms.clone(), adapters.email.clone()).with_portal_url(notifications::portal_url_from_env()));
    let notifications_state = Arc::new(notifications::NotificationsState::new(adapters.kv.clone(), auth_state.verifier.clone()));

    let documents_state = Arc::new(documents::DocumentsState::new(adapters.kv.clone(), adapters.objects.clone(), relay.clone(), documents::Settings::from_env()));
    let documents_api = documents::Api::new(documents_state.clone(), adapters.require_keys()?.as_ref(), Arc::new(shared::agencies::Registry::load()?));
    let applications_state = Arc::new(applications::ApplicationsState::from_env(adapters.kv.clone(), relay.clone(), adapters.require_keys()?.as_ref(), adapters.require_index_key()?)?);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let consumer = tokio::spawn(run_consumer(adapters.events_queue.clone(), notifier, ConsumerOptions::default(), stopped(stop_rx.clone())));
    let sweeper = tokio::spawn(sweep_outbox(relay, stopped(stop_rx.clone())));
    let uploads_handler = Arc::new(documents::UploadHandler::new(documents_state.clone()));
    let uploads_consumer = tokio::spawn(run_consumer(adapters.uploads_queue.clone(), uploads_handler, ConsumerOptions::default(), stopped(stop_rx.clone())));
    let purger = tokio::spawn(purge_documents(documents_state, stopped(stop_rx.clone())));

    let app = shared::http::finish(
        Router::new()
            .merge(auth::router(auth_state))
            .merge(notifications::router(notifications_state))
            .merge(documents::router(documents_api))
            .merge(applications::router(applications_state))
            .merge(local_object_routes(&adapters))
            .merge(local_routes(adapters.dev_outbox.clone())),
    );
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = ?config.backend, data_dir = %config.data_dir.display(), "local runner ready");
    println!("listening on http://{addr}");
    shared::runtime::serve_plain(listener, app).await?;

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = consumer.await;
        let _ = sweeper.await;
        let _ = uploads_consumer.await;
        let _ = purger.await;
    })
    .await;
    Ok(())
}

/// Routes only the runner has: health, the OpenAPI document and the dev outbox.
fn local_routes(outbox: Option<Arc<DevOutbox>>) -> Router {
    let router = Router::new().route("/health", get(|| async { Json(serde_json::json!({"status": "ok"})) })).route("/openapi.json", get(|| async { Json(openapi::document()) }));
    match outbox {
        Some(outbox) => router.merge(Router::new().route("/dev/outbox", get(dev_outbox)).with_state(outbox)),
        None => router,
    }
}

/// The dev outbox shows every one-time code it holds to whoever asks, so it is served on a
/// loopback address only; anything else must switch it off.
fn check_dev_outbox_bind(dev_outbox: bool, bind: SocketAddr) -> Result<(), BoxError> {
    if dev_outbox && !bind.ip().is_loopback() {
        return Err(format!(
            "DEV_OUTBOX is on (the default for BACKEND=embedded) but BIND_ADDR={bind} is not a loopback address: \
             GET /dev/outbox would show one-time codes to the network. Bind to 127.0.0.1 or [::1], or set DEV_OUTBOX=0"
        )
        .into());
    }
    Ok(())
}

/// The longest recipient: an email address (SPEC §2: a login ≤ 320).
const MAX_RECIPIENT_CHARS: usize = 320;

#[derive(Deserialize)]
struct OutboxQuery {
    to: Option<String>,
    limit: Option<usize>,
}

/// `GET /dev/outbox?to=` (SPEC §7): what would have been sent to one recipient, newest first.
/// `to` is required: nobody lists everyone's codes.
async fn dev_outbox(State(outbox): State<Arc<DevOutbox>>, shared::http::ApiQuery(q): shared::http::ApiQuery<OutboxQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let raw = q.to.unwrap_or_default();
    if raw.trim().is_empty() {
        return Err(ApiError::field("to", "required", "Укажите получателя: ?to=<телефон или email>"));
    }
    // A `+` in an unencoded query string arrives as a space.
    let to = raw.trim_end().replace(' ', "+");
    if to.chars().count() > MAX_RECIPIENT_CHARS || shared::domain::text::has_forbidden_characters(&to, false) {
        return Err(ApiError::field("to", "invalid", "Неверный получатель"));
    }
    let items = outbox.list(Some(&to), q.limit.unwrap_or(50).clamp(1, 500)).await?;
    Ok(Json(serde_json::json!({ "items": items, "next_cursor": null })))
}

/// The embedded object store's presigned-URL routes (`/local-objects/...`). Every completed
/// upload raises the same S3 event notification JSON that S3 sends to SQS, into the uploads
/// queue, so the documents consumer runs exactly as it does on AWS. Absent on `BACKEND=aws`,
/// where S3 itself serves the URLs and notifies the queue.
fn local_object_routes(adapters: &Adapters) -> Router {
    let Some(store) = adapters.file_objects.clone() else { return Router::new() };
    let uploads = adapters.uploads_queue.clone();
    let on_created: shared::adapters::embedded::objects::OnObjectCreated = Arc::new(move |created| {
        let body = documents::notification::s3_object_created(LOCAL_BUCKET, &created);
        let uploads = uploads.clone();
        tokio::spawn(async move {
            if let Err(error) = uploads.send(&body).await {
                // The purge verifies uploads whose notification was lost, a day later.
                tracing::error!(%error, "object-created notification not queued");
            }
        });
    });
    shared::adapters::embedded::objects::routes(store, on_created)
}

/// The bucket name local notifications carry.
const LOCAL_BUCKET: &str = "local-documents";

/// The documents purge, hourly (on AWS an EventBridge schedule invokes it).
async fn purge_documents(state: Arc<documents::DocumentsState>, shutdown: impl std::future::Future<Output = ()>) {
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
async fn sweep_outbox(relay: Relay, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let every = std::env::var("OUTBOX_SWEEP_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut tick = tokio::time::interval(Duration::from_secs(every));
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ports::KeyValue;
    use shared::ports::senders::SmsSender;

    fn outbox() -> (std::path::PathBuf, Arc<DevOutbox>) {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("runner-outbox-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = shared::adapters::embedded::open_database(&dir.join("data.redb")).expect("open redb");
        let kv: Arc<dyn KeyValue> = Arc::new(shared::adapters::embedded::RedbKv::new(db).expect("kv"));
        (dir, Arc::new(DevOutbox::new(kv)))
    }

    async fn list(outbox: &Arc<DevOutbox>, to: Option<&str>) -> Result<serde_json::Value, ApiError> {
        let query = OutboxQuery { to: to.map(str::to_owned), limit: None };
        dev_outbox(State(outbox.clone()), shared::http::ApiQuery(query)).await.map(|Json(body)| body)
    }

    #[tokio::test]
    async fn the_dev_outbox_lists_one_recipient_and_refuses_to_list_everyone() {
        let (dir, outbox) = outbox();
        outbox.send_sms("+79990000001", "Код 111111").await.expect("sms");
        outbox.send_sms("+79990000002", "Код 222222").await.expect("sms");
        for to in [None, Some(""), Some("   ")] {
            let refused = list(&outbox, to).await.expect_err("no recipient");
            assert_eq!((refused.status.as_u16(), refused.code, refused.errors[0].field.as_str()), (400, "validation_failed", "to"), "{to:?}");
        }
        assert_eq!(list(&outbox, Some("+7999\u{0}")).await.expect_err("control character").code, "validation_failed");
        let mine = list(&outbox, Some("+79990000001")).await.expect("listed");
        let bodies: Vec<&str> = mine["items"].as_array().expect("items").iter().filter_map(|m| m["body"].as_str()).collect();
        assert_eq!(bodies, ["Код 111111"]);
        // An unencoded `+` arrives as a space and still names the number.
        assert_eq!(list(&outbox, Some(" 79990000002")).await.expect("listed")["items"].as_array().map(Vec::len), Some(1));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_dev_outbox_is_served_on_loopback_addresses_only() {
        for loopback in ["127.0.0.1:3000", "127.0.0.2:0", "[::1]:3000"] {
            check_dev_outbox_bind(true, loopback.parse().expect("addr")).expect(loopback);
        }
        for open in ["0.0.0.0:3000", "[::]:3000", "192.168.1.10:3000"] {
            let error = check_dev_outbox_bind(true, open.parse().expect("addr")).expect_err(open).to_string();
            assert!(error.contains("DEV_OUTBOX") && error.contains("BIND_ADDR"), "{error}");
        }
        check_dev_outbox_bind(false, "0.0.0.0:3000".parse().expect("addr")).expect("no dev outbox, any address");
    }
}

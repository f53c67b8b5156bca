//! Routes only the runner has: the dev outbox (SPEC §7), the API document rendered at `/docs`
//! with assets it serves itself (no CDN), and the embedded object store's presigned URLs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Deserialize;

use shared::adapters::embedded::outbox::DevOutbox;
use shared::config::Adapters;
use shared::http::ApiError;
use shared::http::contract::{OpenApiRouter, routes};
use shared::runtime::BoxError;

/// The dev outbox, declared with its contract; absent when the dev flag is off.
pub fn dev_api(outbox: Option<Arc<DevOutbox>>) -> OpenApiRouter {
    match outbox {
        Some(outbox) => OpenApiRouter::new().routes(routes!(dev_outbox)).with_state(outbox),
        None => OpenApiRouter::new(),
    }
}

/// `GET /docs`: Swagger UI over `/openapi.json`, its assets vendored (infra/runner/assets).
pub fn docs_routes() -> Router {
    const PAGE: &str = r##"<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>API — Госуслуги (модель)</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script></body></html>"##;
    const SCRIPT: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
    const STYLE: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
    Router::new()
        .route("/docs", get(|| async { Html(PAGE) }))
        .route("/docs/swagger-ui-bundle.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response() }))
        .route("/docs/swagger-ui.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response() }))
}

/// The dev outbox shows every one-time code it holds to whoever asks, so it is served on a
/// loopback address only; anything else must switch it off.
pub fn check_dev_outbox_bind(dev_outbox: bool, bind: SocketAddr) -> Result<(), BoxError> {
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutboxQuery {
    /// The recipient: a phone (E.164) or an email address. Required.
    #[param(max_length = 320)]
    to: Option<String>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// One message as it would have been sent (schema of `GET /dev/outbox` items).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct OutboxMessage {
    /// `sms` or `email`.
    channel: String,
    to: String,
    subject: Option<String>,
    body: String,
    at: chrono::DateTime<chrono::Utc>,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
struct OutboxPage {
    items: Vec<OutboxMessage>,
    /// Always null: the newest `limit` messages.
    next_cursor: Option<String>,
}

shared::problems!(OutboxErrors { 400 => ["validation_failed"] });

/// `GET /dev/outbox?to=` (SPEC §7): what would have been sent to one recipient, newest first.
/// `to` is required: nobody lists everyone's codes.
#[utoipa::path(get, path = "/dev/outbox", tag = "dev", params(OutboxQuery),
    responses((status = 200, description = "Messages to that recipient, newest first (local mode only)", body = OutboxPage), OutboxErrors))]
async fn dev_outbox(
    State(outbox): State<Arc<DevOutbox>>,
    shared::http::ApiQuery(q): shared::http::ApiQuery<OutboxQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
pub fn local_object_routes(adapters: &Adapters) -> Router {
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
        outbox.send_sms(&shared::domain::Phone::parse("+79990000001").expect("phone"), "Код 111111").await.expect("sms");
        outbox.send_sms(&shared::domain::Phone::parse("+79990000002").expect("phone"), "Код 222222").await.expect("sms");
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

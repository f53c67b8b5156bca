//! The runtime switch: one `axum::Router` served under `lambda_http` when the Lambda Runtime
//! API is present, or as a plain HTTP server on `$PORT` anywhere else (container, VM, Knative).

use std::net::{IpAddr, SocketAddr};

use axum::Router;

use crate::http::ClientIp;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

pub async fn serve(router: Router) -> Result<(), BoxError> {
    if on_lambda() {
        lambda_http::run(router.layer(axum::middleware::from_fn(lambda_client_ip))).await
    } else {
        let port: u16 = crate::settings::Env::process().parse("PORT", 8080, "a port number")?;
        let addr = SocketAddr::from(([0, 0, 0, 0], port));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(%addr, "serving plain HTTP");
        serve_plain(listener, router).await
    }
}

/// Serves `router` on an already bound listener until SIGINT/SIGTERM.
pub async fn serve_plain(listener: tokio::net::TcpListener, router: Router) -> Result<(), BoxError> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Copies API Gateway's view of the caller's IP into the runtime-neutral `ClientIp`.
async fn lambda_client_ip(mut req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use lambda_http::request::RequestContext;
    let ip = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()),
        _ => None,
    };
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

/// Structured logs: JSON on Lambda (CloudWatch), readable text locally; `RUST_LOG` filters.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn"));
    let json = std::env::var("LOG_FORMAT").map(|f| f == "json").unwrap_or_else(|_| on_lambda());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().flatten_event(true).without_time().try_init() } else { builder.try_init() };
}

/// Consumes a queue with `handler`: Lambda's SQS event source (partial batch failures) on
/// Lambda, a poller of `queue` until SIGTERM anywhere else.
pub async fn consume(queue: std::sync::Arc<dyn crate::ports::Queue>, handler: std::sync::Arc<dyn crate::worker::MessageHandler>) -> Result<(), BoxError> {
    use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
    if on_lambda() {
        lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
            let handler = handler.clone();
            async move {
                Ok::<SqsBatchResponse, std::convert::Infallible>(
                    crate::worker::sqs_batch_handler(handler.as_ref(), event.payload, crate::worker::DEFAULT_BATCH_CONCURRENCY).await,
                )
            }
        }))
        .await
    } else {
        crate::worker::run_consumer(queue, handler, crate::worker::ConsumerOptions::default(), shutdown_signal()).await;
        Ok(())
    }
}

/// Runs a scheduled job: once per schedule event on Lambda (EventBridge); elsewhere every
/// `period` until SIGTERM, or once and exit when there is no period (for cron). Each run's
/// report is logged (and printed when run once).
pub async fn every<F, Fut, R>(period: Option<std::time::Duration>, job: F) -> Result<(), BoxError>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<R, BoxError>> + Send,
    R: serde::Serialize + Send,
{
    if on_lambda() {
        let job = &job;
        return lambda_runtime::run(lambda_runtime::service_fn(move |_: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let report = job().await?;
            Ok::<_, BoxError>(serde_json::to_value(report)?)
        }))
        .await;
    }
    let Some(period) = period else {
        println!("{}", serde_json::to_string(&job().await?)?);
        return Ok(());
    };
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tick.tick() => match job().await {
                Ok(report) => tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "scheduled run done"),
                Err(e) => tracing::warn!(error = %e, "scheduled run failed"),
            },
        }
    }
}

//! The cold-start baseline for `infra/lambda/check.py`: the smallest `lambda_runtime` function,
//! built with the workspace's release profile in the same `cargo lambda build` as the real
//! functions, so their start-up can be compared with what the runtime alone costs.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(json!({ "hello": "world", "request_id": event.context.request_id }))
    }))
    .await
}

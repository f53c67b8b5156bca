//! AWS adapters. Every client is built from one `SdkConfig`, which honours
//! `AWS_ENDPOINT_URL` (and per-service `AWS_ENDPOINT_URL_<SERVICE>`), so the same binary runs
//! against AWS, the moto server or LocalStack.

pub mod dynamodb;
pub mod s3;
pub mod ses;
pub mod sns;
pub mod sqs;

pub use dynamodb::DynamoKv;

/// Loads region, credentials and endpoint overrides from the default chain (environment,
/// profile, container/instance metadata); `AWS_ENDPOINT_URL` is read there too.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

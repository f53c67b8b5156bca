//! Adapters for the ports: `embedded` (redb file, files, dev outbox) and `aws`
//! (DynamoDB, S3, SQS, SNS, SES v2). Domain code never names an adapter; `crate::config`
//! picks them from the environment.

pub mod aws;
pub mod embedded;
pub mod unconfigured;

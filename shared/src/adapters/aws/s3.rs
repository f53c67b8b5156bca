//! Object store port on Amazon S3: a private bucket reached by SigV4 presigned URLs.
//!
//! Encryption: every write asks for server-side encryption (SSE-S3 by default, SSE-KMS by
//! configuration). For presigned PUTs the encryption header is part of the signature and is
//! returned in `PresignedRequest::headers` next to `content-type` and `content-length`, so the
//! client sends it verbatim and S3 refuses an upload that drops it.
//!
//! One upload per URL: presigned PUTs sign `If-None-Match: *` (returned in the headers too),
//! so S3 answers 412 to a second PUT of the same URL instead of replacing verified content.
//! moto 5.2 accepts the header; whether it enforces it is checked by the adapter's tests.
//!
//! Addressing: custom endpoints (moto, LocalStack, S3-compatible clouds) rarely resolve
//! virtual-hosted bucket names, so [`S3ObjectStore::from_sdk_config`] switches to path-style
//! URLs whenever `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3` is set; plain AWS keeps
//! virtual-hosted style.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::adapters::embedded::objects::{attachment_disposition, default_download_name};
use crate::ports::objects::{ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest};

/// How objects are encrypted at rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Encryption {
    /// SSE-S3 (`AES256`), keys managed by S3.
    #[default]
    S3Managed,
    /// SSE-KMS with the given key, or the account's `aws/s3` key when `None`.
    Kms { key_id: Option<String> },
}

/// Objects in one S3 bucket.
#[derive(Clone, Debug)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
    encryption: Encryption,
}

impl S3ObjectStore {
    /// Wraps a ready client (SSE-S3 encryption; see [`Self::with_encryption`]).
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into(), encryption: Encryption::default() }
    }

    /// Builds the client from shared config, with path-style addressing on custom endpoints.
    pub fn from_sdk_config(sdk_config: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        Self::new(client_for(sdk_config), bucket)
    }

    pub fn with_encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = encryption;
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A PUT of `key` in the bucket, encrypted as configured; uploads and presigned uploads alike.
    fn put_object(&self, key: &str, content_type: &str) -> PutObjectFluentBuilder {
        let (sse, kms_key) = match &self.encryption {
            Encryption::S3Managed => (ServerSideEncryption::Aes256, None),
            Encryption::Kms { key_id } => (ServerSideEncryption::AwsKms, key_id.clone()),
        };
        self.client.put_object().bucket(&self.bucket).key(key).content_type(content_type).server_side_encryption(sse).set_ssekms_key_id(kms_key)
    }

    fn get_object(&self, key: &str) -> GetObjectFluentBuilder {
        self.client.get_object().bucket(&self.bucket).key(key)
    }
}

/// An S3 client that uses path-style URLs when an endpoint override is configured.
pub fn client_for(sdk_config: &aws_config::SdkConfig) -> Client {
    let custom_endpoint = sdk_config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let config = aws_sdk_s3::config::Builder::from(sdk_config).force_path_style(custom_endpoint).build();
    Client::from_conf(config)
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn presign_put(&self, key: &str, content_type: &str, content_length: u64, expires_in: Duration) -> Result<PresignedRequest, ObjectStoreError> {
        let length = i64::try_from(content_length).map_err(|_| ObjectStoreError::Backend("content length out of range".into()))?;
        let signed_at = whole_second_now();
        let presigned = self
            .put_object(key, content_type)
            .content_length(length)
            // One upload per URL: S3 refuses (412) a PUT onto an existing key.
            .if_none_match("*")
            .presigned(presigning(signed_at, expires_in)?)
            .await
            .map_err(|e| backend("presign put", e))?;
        let mut request = presigned_request(&presigned, signed_at, expires_in);
        // Browsers set Content-Length themselves, but it is signed, so the client must know it.
        request.headers.entry("content-length".to_owned()).or_insert_with(|| content_length.to_string());
        Ok(request)
    }

    async fn presign_get(&self, key: &str, expires_in: Duration, download_name: Option<&str>) -> Result<PresignedRequest, ObjectStoreError> {
        let signed_at = whole_second_now();
        let presigned = self
            .get_object(key)
            // SPEC §2 wants `nosniff` too, but a presigned GET cannot ask S3 for it: the only
            // response overrides are content-type/-language/-disposition/-encoding, cache-control
            // and expires, and object metadata cannot carry it either (user metadata comes back
            // as `x-amz-meta-*`). It takes a CDN response-headers policy in front of the bucket.
            // A forced attachment with our content type is what S3 itself can do.
            .response_content_disposition(attachment_disposition(download_name.unwrap_or_else(|| default_download_name(key))))
            .presigned(presigning(signed_at, expires_in)?)
            .await
            .map_err(|e| backend("presign get", e))?;
        Ok(presigned_request(&presigned, signed_at, expires_in))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => Ok(Some(ObjectMeta {
                size: output.content_length.and_then(|length| u64::try_from(length).ok()).unwrap_or(0),
                content_type: output.content_type,
            })),
            Err(SdkError::ServiceError(service)) if matches!(service.err(), HeadObjectError::NotFound(_)) => Ok(None),
            Err(e) => Err(backend("head object", e)),
        }
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, ObjectStoreError> {
        if len == 0 {
            // `bytes=o-(o-1)` is not a valid range; an empty read needs no request.
            return Ok(Bytes::new());
        }
        let last = offset.saturating_add(len - 1);
        let result = self.get_object(key).range(format!("bytes={offset}-{last}")).send().await;
        let output = match result {
            Ok(output) => output,
            Err(SdkError::ServiceError(service)) if matches!(service.err(), GetObjectError::NoSuchKey(_)) => {
                return Err(ObjectStoreError::NotFound);
            }
            // A range starting at or past the end is an empty read, as in the embedded store.
            Err(SdkError::ServiceError(service)) if service.err().code() == Some("InvalidRange") || service.raw().status().as_u16() == 416 => {
                return Ok(Bytes::new());
            }
            Err(e) => return Err(backend("read object range", e)),
        };
        let body = output.body.collect().await.map_err(|e| ObjectStoreError::Backend(format!("read object body: {e}")))?;
        Ok(body.into_bytes())
    }

    async fn put(&self, key: &str, content_type: &str, body: Bytes) -> Result<(), ObjectStoreError> {
        self.put_object(key, content_type).body(ByteStream::from(body)).send().await.map(|_| ()).map_err(|e| backend("put object", e))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map(|_| ()).map_err(|e| backend("delete object", e))
    }
}

/// SigV4 dates have whole seconds; signing at one keeps `expires_at` exact.
fn whole_second_now() -> SystemTime {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs())
}

/// Signs as of `signed_at`, so the reported `expires_at` is exactly when S3 stops honouring the URL.
fn presigning(signed_at: SystemTime, expires_in: Duration) -> Result<PresigningConfig, ObjectStoreError> {
    PresigningConfig::builder().start_time(signed_at).expires_in(expires_in).build().map_err(|e| ObjectStoreError::Backend(format!("presigning config: {e}")))
}

fn presigned_request(presigned: &aws_sdk_s3::presigning::PresignedRequest, signed_at: SystemTime, expires_in: Duration) -> PresignedRequest {
    let headers: BTreeMap<String, String> = presigned.headers().map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned())).collect();
    let expires_at = DateTime::<Utc>::from(signed_at + expires_in);
    PresignedRequest { method: presigned.method().to_owned(), url: presigned.uri().to_owned(), headers, expires_at }
}

fn backend<E: std::error::Error + 'static>(action: &str, error: E) -> ObjectStoreError {
    ObjectStoreError::Backend(format!("{action}: {}", DisplayErrorContext(error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> S3ObjectStore {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "static"))
            .build();
        S3ObjectStore::new(Client::from_conf(config), "documents")
    }

    #[tokio::test]
    async fn presigned_put_signs_if_none_match_so_a_url_uploads_once() {
        let upload = store().presign_put("documents/01ABC", "application/pdf", 42, Duration::from_secs(60)).await.expect("presign");
        assert_eq!(upload.headers.get("if-none-match").map(String::as_str), Some("*"));
        let signed = query_param(&upload.url, "X-Amz-SignedHeaders").unwrap_or_default();
        assert!(signed.split(';').any(|h| h == "if-none-match"), "{signed}");
    }

    fn query_param(url: &str, name: &str) -> Option<String> {
        url::Url::parse(url).expect("url").query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
    }

    #[tokio::test]
    async fn presigned_get_always_asks_for_an_attachment_with_a_safe_name() {
        let unnamed = store().presign_get("documents/01ABC", Duration::from_secs(60), None).await.expect("presign");
        let disposition = query_param(&unnamed.url, "response-content-disposition");
        assert_eq!(disposition.as_deref(), Some("attachment; filename=\"01ABC\"; filename*=UTF-8''01ABC"));

        let spoofed = store().presign_get("documents/01ABC", Duration::from_secs(60), Some("scan\u{202E}fdp.exe")).await.expect("presign");
        let disposition = query_param(&spoofed.url, "response-content-disposition").unwrap_or_default();
        assert!(disposition.starts_with("attachment;") && !disposition.contains('\u{202E}') && !disposition.contains("%E2%80%AE"), "{disposition}");
        // The disposition is part of what the signature covers.
        assert!(query_param(&spoofed.url, "X-Amz-Signature").is_some());
    }
}

//! Object store port, S3-shaped: private objects reached by short-lived presigned URLs.
//! Keys never contain personal data (they are opaque ids).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a client needs to perform one HTTP request against the store without our credentials.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    /// Headers the client must send verbatim (e.g. `content-type`); they are part of the signature.
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub content_type: Option<String>,
}

/// A new object landed through a presigned PUT (S3's `ObjectCreated:Put` notification).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectCreated {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    #[error("object not found")]
    NotFound,
    #[error("object store backend: {0}")]
    Backend(String),
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// A URL that accepts exactly one PUT of `content_length` bytes of `content_type` at `key`.
    async fn presign_put(&self, key: &str, content_type: &str, content_length: u64, expires_in: Duration) -> Result<PresignedRequest, ObjectStoreError>;
    /// A URL that downloads `key`; `download_name` sets Content-Disposition when given.
    async fn presign_get(&self, key: &str, expires_in: Duration, download_name: Option<&str>) -> Result<PresignedRequest, ObjectStoreError>;
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError>;
    /// Reads `len` bytes from `offset` (fewer at the end of the object).
    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, ObjectStoreError>;
    /// Server-side write (agency results, tests); clients use `presign_put`.
    async fn put(&self, key: &str, content_type: &str, body: Bytes) -> Result<(), ObjectStoreError>;
    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError>;
}

//! Object store on the local disk: the local runner's stand-in for S3.
//!
//! Layout under `<data_dir>/objects/`:
//! - `<key>`: the object's bytes (keys are `/`-separated paths);
//! - `.meta/<key>`: a JSON sidecar `{"content_type", "size"}`;
//! - `.tmp/`: uploads in flight, renamed into place when complete.
//!
//! Key segments may not start with `.`, which reserves the two hidden directories and rules out
//! `.`/`..` traversal. Presigned URLs point at the local runner's `/local-objects/{key}` routes
//! (see [`routes`]) and carry an HMAC-SHA256 signature over everything they grant. Downloads
//! always answer `Content-Disposition: attachment` and `X-Content-Type-Options: nosniff`. A presigned
//! PUT stores an object only where none exists (412 otherwise), as S3 does with the
//! `If-None-Match: *` the S3 adapter signs into its upload URLs.

use std::collections::BTreeMap;
use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::domain::text;
use crate::ports::objects::{ObjectCreated, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest};

/// Longest key accepted, as on S3.
const MAX_KEY_BYTES: usize = 1024;
/// Shortest signing secret accepted: an HMAC key shorter than this is guessable.
const MIN_SECRET_BYTES: usize = 16;
const ROUTE_PREFIX: &str = "/local-objects/";

/// Objects as files under `<data_dir>/objects/`, reached by presigned URLs of the local runner.
pub struct FileObjectStore {
    root: PathBuf,
    /// Where the local runner is reachable, without a trailing `/` (e.g. `http://127.0.0.1:3000`).
    public_base_url: String,
    secret: Vec<u8>,
}

/// Called after a presigned PUT stored an object, like S3's object-created notification.
/// It runs inside the upload request, so it should hand the event off (channel, queue) quickly.
pub type OnObjectCreated = Arc<dyn Fn(ObjectCreated) + Send + Sync>;

impl FileObjectStore {
    /// Creates `<data_dir>/objects/` if needed. `secret` signs the presigned URLs (at least 16 bytes).
    pub fn new(data_dir: &Path, public_base_url: &str, secret: impl Into<Vec<u8>>) -> Result<Self, ObjectStoreError> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ObjectStoreError::Backend(format!("object URL secret must be at least {MIN_SECRET_BYTES} bytes")));
        }
        let root = data_dir.join("objects");
        for dir in [root.clone(), root.join(".meta"), root.join(".tmp")] {
            std::fs::create_dir_all(&dir).map_err(|e| io_error("create object directory", &e))?;
        }
        Ok(Self { root, public_base_url: public_base_url.trim_end_matches('/').to_owned(), secret })
    }

    fn presign(&self, grant: Grant, expires_in: Duration) -> PresignedRequest {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("method", grant.method.as_str());
        query.append_pair("expires", &grant.expires.to_string());
        if let Some(content_type) = &grant.content_type {
            query.append_pair("ct", content_type);
        }
        if let Some(length) = grant.content_length {
            query.append_pair("len", &length.to_string());
        }
        if let Some(name) = &grant.download_name {
            query.append_pair("dl", name);
        }
        query.append_pair("sig", &URL_SAFE_NO_PAD.encode(self.signature(&grant)));

        let mut headers = BTreeMap::new();
        if let Some(content_type) = &grant.content_type {
            headers.insert("content-type".to_owned(), content_type.clone());
        }
        if let Some(length) = grant.content_length {
            headers.insert("content-length".to_owned(), length.to_string());
        }
        let expires_at = DateTime::from_timestamp(grant.expires, 0).unwrap_or_else(|| Utc::now() + expires_in);
        PresignedRequest {
            method: grant.method.as_str().to_owned(),
            url: format!("{}{ROUTE_PREFIX}{}?{}", self.public_base_url, grant.key, query.finish()),
            headers,
            expires_at,
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length")
    }

    fn signature(&self, grant: &Grant) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(&grant.canonical());
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks the signature (in constant time) and the expiry of a grant read from a URL.
    fn verify(&self, grant: &Grant, signature: &str) -> Result<(), S3Error> {
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| S3Error::signature_mismatch())?;
        let mut mac = self.mac();
        mac.update(&grant.canonical());
        mac.verify_slice(&signature).map_err(|_| S3Error::signature_mismatch())?;
        if Utc::now().timestamp() > grant.expires {
            return Err(S3Error::new(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"));
        }
        Ok(())
    }

    fn blob_path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.root.join(".meta").join(key)
    }

    fn temp_path(&self) -> PathBuf {
        self.root.join(".tmp").join(super::queue::next_monotonic_ulid().to_string())
    }

    /// Moves a finished upload into place and writes its sidecar; the blob goes first, so a
    /// crash in between leaves an object without a content type rather than a dangling sidecar.
    async fn commit(&self, temp: &Path, key: &str, content_type: &str, size: u64) -> Result<(), ObjectStoreError> {
        rename_into_place(temp, &self.blob_path(key)).await?;
        self.write_sidecar(key, content_type, size).await
    }

    /// Like [`Self::commit`], but only if no object is at `key` yet (a presigned PUT is good
    /// for one upload, like S3 with `If-None-Match: *`): the hard link fails atomically when
    /// the key exists, so of two racing uploads exactly one wins.
    async fn commit_new(&self, temp: &Path, key: &str, content_type: &str, size: u64) -> Result<(), S3Error> {
        let blob = self.blob_path(key);
        if let Some(parent) = blob.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| S3Error::from(io_error("create object directory", &e)))?;
        }
        let linked = tokio::fs::hard_link(temp, &blob).await;
        let _ = tokio::fs::remove_file(temp).await;
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(S3Error::already_exists()),
            Err(e) => return Err(S3Error::from(io_error("move object into place", &e))),
        }
        self.write_sidecar(key, content_type, size).await.map_err(S3Error::from)
    }

    async fn write_sidecar(&self, key: &str, content_type: &str, size: u64) -> Result<(), ObjectStoreError> {
        let sidecar = serde_json::to_vec(&Sidecar { content_type: Some(content_type.to_owned()), size })
            .map_err(|e| ObjectStoreError::Backend(format!("encode object metadata: {e}")))?;
        let temp_meta = self.temp_path();
        write_file(&temp_meta, &sidecar).await?;
        rename_into_place(&temp_meta, &self.meta_path(key)).await
    }

    async fn content_type(&self, key: &str) -> Result<Option<String>, ObjectStoreError> {
        match tokio::fs::read(self.meta_path(key)).await {
            Ok(raw) => Ok(serde_json::from_slice::<Sidecar>(&raw).ok().and_then(|sidecar| sidecar.content_type)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read object metadata", &e)),
        }
    }
}

#[async_trait]
impl ObjectStore for FileObjectStore {
    async fn presign_put(&self, key: &str, content_type: &str, content_length: u64, expires_in: Duration) -> Result<PresignedRequest, ObjectStoreError> {
        validate_key(key)?;
        validate_content_type(content_type)?;
        let grant = Grant {
            method: Method::Put,
            key: key.to_owned(),
            expires: expiry(expires_in),
            content_type: Some(content_type.to_owned()),
            content_length: Some(content_length),
            download_name: None,
        };
        Ok(self.presign(grant, expires_in))
    }

    async fn presign_get(&self, key: &str, expires_in: Duration, download_name: Option<&str>) -> Result<PresignedRequest, ObjectStoreError> {
        validate_key(key)?;
        let grant = Grant {
            method: Method::Get,
            key: key.to_owned(),
            expires: expiry(expires_in),
            content_type: None,
            content_length: None,
            download_name: download_name.map(str::to_owned),
        };
        Ok(self.presign(grant, expires_in))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        validate_key(key)?;
        let size = match tokio::fs::metadata(self.blob_path(key)).await {
            Ok(meta) if meta.is_file() => meta.len(),
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("stat object", &e)),
        };
        Ok(Some(ObjectMeta { size, content_type: self.content_type(key).await? }))
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, ObjectStoreError> {
        validate_key(key)?;
        let mut file = open_blob(&self.blob_path(key)).await?;
        let size = file.metadata().await.map_err(|e| io_error("stat object", &e))?.len();
        if offset >= size || len == 0 {
            return Ok(Bytes::new());
        }
        file.seek(SeekFrom::Start(offset)).await.map_err(|e| io_error("seek object", &e))?;
        let wanted = len.min(size - offset);
        let mut buffer = Vec::with_capacity(usize::try_from(wanted).unwrap_or(0));
        file.take(wanted).read_to_end(&mut buffer).await.map_err(|e| io_error("read object", &e))?;
        Ok(Bytes::from(buffer))
    }

    async fn put(&self, key: &str, content_type: &str, body: Bytes) -> Result<(), ObjectStoreError> {
        validate_key(key)?;
        validate_content_type(content_type)?;
        let temp = self.temp_path();
        write_file(&temp, &body).await?;
        let size = body.len() as u64;
        let committed = self.commit(&temp, key, content_type, size).await;
        if committed.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        committed
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        validate_key(key)?;
        for path in [self.blob_path(key), self.meta_path(key)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("delete object", &e)),
            }
        }
        Ok(())
    }
}

/// The local runner's `/local-objects/{*key}` routes: `PUT` stores an upload granted by
/// [`FileObjectStore::presign_put`] and then calls `on_created`; `GET` (and `HEAD`) serve a
/// download granted by [`FileObjectStore::presign_get`]. Failures answer S3-style XML errors.
pub fn routes(store: Arc<FileObjectStore>, on_created: OnObjectCreated) -> Router {
    Router::new().route("/local-objects/{*key}", put(put_object).get(get_object)).with_state(RouteState { store, on_created })
}

/// Builds a `Content-Disposition: attachment` value that keeps a file name readable
/// (RFC 6266 `filename*`) with an ASCII fallback for old clients. Path separators, controls and
/// characters that hide or reorder text (SPEC §2) become `_`, so the saved name is the shown one.
pub fn attachment_disposition(file_name: &str) -> String {
    let safe = safe_file_name(file_name);
    let fallback: String = safe.chars().map(|c| if c == ' ' || (c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';')) { c } else { '_' }).collect();
    let encoded = utf8_percent_encode(&safe, RFC5987_ATTR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The name a download is saved under when the URL names none: the key's last segment.
pub fn default_download_name(key: &str) -> &str {
    key.rsplit('/').next().filter(|segment| !segment.is_empty()).unwrap_or("download")
}

fn safe_file_name(file_name: &str) -> String {
    let mut buffer = [0u8; 4];
    let safe: String =
        file_name.chars().map(|c| if matches!(c, '/' | '\\') || text::has_forbidden_characters(c.encode_utf8(&mut buffer), false) { '_' } else { c }).collect();
    if safe.trim().is_empty() { "download".to_owned() } else { safe }
}

/// RFC 5987 `attr-char`s stay literal; everything else is percent-encoded.
const RFC5987_ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[derive(Clone)]
struct RouteState {
    store: Arc<FileObjectStore>,
    on_created: OnObjectCreated,
}

async fn put_object(State(state): State<RouteState>, UrlPath(key): UrlPath<String>, RawQuery(query): RawQuery, headers: HeaderMap, body: Body) -> Response {
    match store_upload(&state, key, query.as_deref().unwrap_or(""), &headers, body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn store_upload(state: &RouteState, key: String, query: &str, headers: &HeaderMap, body: Body) -> Result<(), S3Error> {
    let store = &state.store;
    let grant = Grant::from_request(key, query, Method::Put)?;
    store.verify(&grant, &signature_param(query)?)?;
    let (Some(content_type), Some(content_length)) = (grant.content_type.as_deref(), grant.content_length) else {
        return Err(S3Error::signature_mismatch());
    };
    if header_str(headers, header::CONTENT_TYPE) != Some(content_type) {
        return Err(S3Error::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", "Content-Type differs from the signed value"));
    }
    if header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok()) != Some(content_length) {
        return Err(S3Error::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", "Content-Length differs from the signed value"));
    }

    // Refused before the body is read when possible; `commit_new` decides races.
    if tokio::fs::try_exists(store.blob_path(&grant.key)).await.unwrap_or(false) {
        return Err(S3Error::already_exists());
    }
    let temp = store.temp_path();
    let received = receive_body(&temp, body, content_length).await;
    let stored = match received {
        Ok(()) => store.commit_new(&temp, &grant.key, content_type, content_length).await,
        Err(error) => Err(error),
    };
    if let Err(error) = stored {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(error);
    }
    (state.on_created)(ObjectCreated { key: grant.key, size: content_length });
    Ok(())
}

/// Streams the request body to `temp`, refusing anything but exactly `expected` bytes.
async fn receive_body(temp: &Path, body: Body, expected: u64) -> Result<(), S3Error> {
    let mut file = tokio::fs::File::create(temp).await.map_err(|e| S3Error::from(io_error("create upload file", &e)))?;
    let mut stream = body.into_data_stream();
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| S3Error::incomplete_body())?;
        written += chunk.len() as u64;
        if written > expected {
            return Err(S3Error::new(StatusCode::BAD_REQUEST, "EntityTooLarge", "Body exceeds the signed Content-Length"));
        }
        file.write_all(&chunk).await.map_err(|e| S3Error::from(io_error("write upload file", &e)))?;
    }
    if written != expected {
        return Err(S3Error::incomplete_body());
    }
    // Durable before the rename publishes it, so a crash never leaves a truncated object.
    file.sync_all().await.map_err(|e| S3Error::from(io_error("sync upload file", &e)))?;
    Ok(())
}

async fn get_object(State(state): State<RouteState>, UrlPath(key): UrlPath<String>, RawQuery(query): RawQuery) -> Response {
    match serve_download(&state.store, key, query.as_deref().unwrap_or("")).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn serve_download(store: &FileObjectStore, key: String, query: &str) -> Result<Response, S3Error> {
    let grant = Grant::from_request(key, query, Method::Get)?;
    store.verify(&grant, &signature_param(query)?)?;
    let file = open_blob(&store.blob_path(&grant.key)).await?;
    let size = file.metadata().await.map_err(|e| S3Error::from(io_error("stat object", &e)))?.len();
    let content_type = store.content_type(&grant.key).await?.unwrap_or_else(|| "application/octet-stream".to_owned());

    let mut response = Body::from_stream(ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    // SPEC §2: a download is always saved, never rendered, and never re-typed by sniffing.
    let name = grant.download_name.as_deref().unwrap_or_else(|| default_download_name(&grant.key));
    let disposition = HeaderValue::from_str(&attachment_disposition(name)).unwrap_or(HeaderValue::from_static("attachment"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(response)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Put,
    Get,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Put => "PUT",
            Self::Get => "GET",
        }
    }
}

/// Everything a presigned URL allows; the signature covers all of it.
#[derive(Clone, Debug)]
struct Grant {
    method: Method,
    key: String,
    /// Unix seconds; the URL works up to and including this second.
    expires: i64,
    content_type: Option<String>,
    content_length: Option<u64>,
    download_name: Option<String>,
}

impl Grant {
    /// Length-prefixed fields: an unambiguous encoding whatever characters they hold.
    fn canonical(&self) -> Vec<u8> {
        let fields = [
            Some(self.method.as_str().to_owned()),
            Some(self.key.clone()),
            Some(self.expires.to_string()),
            self.content_type.clone(),
            self.content_length.map(|length| length.to_string()),
            self.download_name.clone(),
        ];
        let mut out = b"local-objects-v1".to_vec();
        for field in fields {
            match field {
                None => out.push(b'-'),
                Some(value) => {
                    out.extend_from_slice(format!("+{}:", value.len()).as_bytes());
                    out.extend_from_slice(value.as_bytes());
                }
            }
        }
        out
    }

    /// Reads a grant from a request; the route's method must match the signed one.
    fn from_request(key: String, query: &str, method: Method) -> Result<Self, S3Error> {
        validate_key(&key).map_err(|_| S3Error::new(StatusCode::BAD_REQUEST, "InvalidURI", "Invalid object key"))?;
        let mut grant = Self { method, key, expires: 0, content_type: None, content_length: None, download_name: None };
        let mut signed_method = None;
        let mut expires = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "method" => signed_method = Some(value.into_owned()),
                "expires" => expires = value.parse::<i64>().ok(),
                "ct" => grant.content_type = Some(value.into_owned()),
                "len" => grant.content_length = Some(value.parse::<u64>().map_err(|_| S3Error::signature_mismatch())?),
                "dl" => grant.download_name = Some(value.into_owned()),
                _ => {}
            }
        }
        match (signed_method, expires) {
            (Some(signed), Some(expires)) if signed == method.as_str() => {
                grant.expires = expires;
                Ok(grant)
            }
            (Some(_), Some(_)) => Err(S3Error::signature_mismatch()),
            _ => Err(S3Error::new(StatusCode::FORBIDDEN, "AccessDenied", "Query-string authentication requires method, expires and sig")),
        }
    }
}

fn signature_param(query: &str) -> Result<String, S3Error> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "sig")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| S3Error::new(StatusCode::FORBIDDEN, "AccessDenied", "Query-string authentication requires method, expires and sig"))
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    content_type: Option<String>,
    size: u64,
}

/// An S3-style error answer: these URLs are object-storage URLs, not our JSON API.
#[derive(Debug)]
struct S3Error {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl S3Error {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self { status, code, message }
    }

    fn signature_mismatch() -> Self {
        Self::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", "The request signature does not match")
    }

    /// What S3 answers a PUT with `If-None-Match: *` when the key exists.
    fn already_exists() -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", "An object already exists at this key; upload URLs are good for one upload")
    }

    fn incomplete_body() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "IncompleteBody", "Body is shorter than the signed Content-Length")
    }
}

impl From<ObjectStoreError> for S3Error {
    fn from(error: ObjectStoreError) -> Self {
        match error {
            ObjectStoreError::NotFound => Self::new(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist"),
            ObjectStoreError::Backend(detail) => {
                tracing::error!(error = %detail, "local object store failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "We encountered an internal error")
            }
        }
    }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>", self.code, self.message);
        (self.status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
    }
}

fn validate_key(key: &str) -> Result<(), ObjectStoreError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-');
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && key.bytes().all(allowed)
        && !key.contains("..")
        && key.split('/').all(|segment| !segment.is_empty() && !segment.starts_with('.') && segment.len() <= 255);
    if valid { Ok(()) } else { Err(ObjectStoreError::Backend("invalid object key".into())) }
}

/// Printable ASCII only: the value is echoed in a header and signed with `\n`-free encoding.
fn validate_content_type(content_type: &str) -> Result<(), ObjectStoreError> {
    let valid = !content_type.is_empty() && content_type.len() <= 255 && content_type.bytes().all(|b| (0x20..0x7f).contains(&b));
    if valid { Ok(()) } else { Err(ObjectStoreError::Backend("invalid content type".into())) }
}

fn expiry(expires_in: Duration) -> i64 {
    let seconds = i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX / 2);
    // A fraction of a second still grants that second, rounding up like the S3 presigner.
    let seconds = if expires_in.subsec_nanos() > 0 { seconds.saturating_add(1) } else { seconds };
    Utc::now().timestamp().saturating_add(seconds)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn open_blob(path: &Path) -> Result<tokio::fs::File, ObjectStoreError> {
    match tokio::fs::File::open(path).await {
        Ok(file) => match file.metadata().await {
            Ok(meta) if meta.is_file() => Ok(file),
            Ok(_) => Err(ObjectStoreError::NotFound),
            Err(e) => Err(io_error("stat object", &e)),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Err(ObjectStoreError::NotFound),
        Err(e) => Err(io_error("open object", &e)),
    }
}

async fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ObjectStoreError> {
    let mut file = tokio::fs::File::create(path).await.map_err(|e| io_error("create object file", &e))?;
    file.write_all(bytes).await.map_err(|e| io_error("write object file", &e))?;
    file.sync_all().await.map_err(|e| io_error("sync object file", &e))
}

async fn rename_into_place(from: &Path, to: &Path) -> Result<(), ObjectStoreError> {
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| io_error("create object directory", &e))?;
    }
    tokio::fs::rename(from, to).await.map_err(|e| io_error("move object into place", &e))
}

fn io_error(action: &str, error: &std::io::Error) -> ObjectStoreError {
    ObjectStoreError::Backend(format!("{action}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_upload_url_stores_once_and_a_second_put_is_refused() {
        use tower::ServiceExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileObjectStore::new(dir.path(), "http://objects.test", vec![7u8; 32]).unwrap());
        let created = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = created.clone();
        let app = routes(
            store.clone(),
            Arc::new(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        );
        let upload = store.presign_put("documents/once", "application/pdf", 4, Duration::from_secs(60)).await.unwrap();
        let put = |body: &'static [u8]| {
            let path = upload.url.strip_prefix("http://objects.test").unwrap().to_owned();
            let request =
                axum::http::Request::put(path).header("content-type", "application/pdf").header("content-length", "4").body(Body::from(body)).unwrap();
            let app = app.clone();
            async move { app.oneshot(request).await.unwrap().status() }
        };
        assert_eq!(put(b"good").await, StatusCode::OK);
        assert_eq!(put(b"evil").await, StatusCode::PRECONDITION_FAILED);
        assert_eq!(store.read_range("documents/once", 0, 10).await.unwrap(), Bytes::from_static(b"good"));
        assert_eq!(created.load(std::sync::atomic::Ordering::SeqCst), 1, "no notification for the refused PUT");
        let leftovers = std::fs::read_dir(dir.path().join("objects/.tmp")).unwrap().count();
        assert_eq!(leftovers, 0, "the refused upload leaves nothing behind");
    }

    #[test]
    fn keys_with_traversal_hidden_or_odd_characters_are_refused() {
        for key in ["", "/abs", "a/../b", "..", "a/./b", ".meta/x", "a//b", "a/", "a b", "a\\b", "ключ", "a/.tmp"] {
            assert!(validate_key(key).is_err(), "{key:?} should be refused");
        }
        for key in ["documents/01J0ABC/v1", "a.b-c_d", "x/y/z.pdf"] {
            assert!(validate_key(key).is_ok(), "{key:?} should be accepted");
        }
    }

    #[test]
    fn disposition_keeps_cyrillic_names_and_gives_an_ascii_fallback() {
        let value = attachment_disposition("Паспорт \"скан\".pdf");
        let expected = "attachment; filename=\"_______ ______.pdf\"; \
                        filename*=UTF-8''%D0%9F%D0%B0%D1%81%D0%BF%D0%BE%D1%80%D1%82%20%22%D1%81%D0%BA%D0%B0%D0%BD%22.pdf";
        assert_eq!(value, expected);
    }

    #[test]
    fn changing_any_signed_field_changes_the_canonical_bytes() {
        let base = Grant { method: Method::Put, key: "k".into(), expires: 10, content_type: Some("a/b".into()), content_length: Some(5), download_name: None };
        let variants = [
            Grant { method: Method::Get, ..base.clone() },
            Grant { key: "k2".into(), ..base.clone() },
            Grant { expires: 11, ..base.clone() },
            Grant { content_type: Some("a/c".into()), ..base.clone() },
            Grant { content_type: None, ..base.clone() },
            Grant { content_length: Some(6), ..base.clone() },
            Grant { download_name: Some("x".into()), ..base.clone() },
            Grant { download_name: Some(String::new()), ..base.clone() },
        ];
        for variant in variants {
            assert_ne!(variant.canonical(), base.canonical(), "{variant:?}");
        }
    }
}

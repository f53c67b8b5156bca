//! Function-level tests: the documents router, the upload handler and the purge in-process
//! over the real embedded adapters (redb in a temp dir, the file object store). Uploads and
//! downloads go through the embedded store's presigned-URL routes, in-process as well; the
//! object-created callback collects notifications that the tests hand to the upload handler,
//! as the local runner does through the uploads queue.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use common::OBJECTS_BASE;
use documents::notification::s3_object_created;
use documents::{DocumentsState, Purger, Settings, UploadHandler};
use shared::adapters::embedded::objects::{FileObjectStore, routes};
use shared::events::{Event, EventPayload};
use shared::http::AccessClaims;
use shared::keys::KeyRing;
use shared::ports::objects::ObjectCreated;
use shared::ports::{ManualClock, ObjectStore, Queue, Ticker};
use shared::records::DocumentStatus;
use shared::vocabulary::RejectionReason;
use shared::worker::MessageHandler;

mod common;
const MIB: u64 = 1024 * 1024;
const DAY: i64 = 24 * 60 * 60;

/// Checks every answer of the router against its OpenAPI document: the status is declared for
/// the operation, and a problem's `code` is one the operation lists for that status.
async fn conform(contract: &Value, request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = request.method().as_str().to_ascii_lowercase();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let Some((template, operation)) = operation_for(contract, &method, &path) else { return response };
    if response.status().is_server_error() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let status = parts.status.as_str();
    let declared = &operation["responses"][status];
    assert!(declared.is_object(), "{method} {template} answered {status}, which its document does not declare");
    if parts.headers.get(header::CONTENT_TYPE).is_some_and(|v| v == shared::http::contract::PROBLEM_CONTENT_TYPE) {
        let code = serde_json::from_slice::<Value>(&bytes).unwrap()["code"].clone();
        let codes = &declared["content"][shared::http::contract::PROBLEM_CONTENT_TYPE]["schema"]["allOf"][1]["properties"]["code"]["enum"];
        assert!(codes.as_array().is_some_and(|codes| codes.contains(&code)), "{method} {template} answered {status} {code}, which its document does not list");
    }
    axum::response::Response::from_parts(parts, Body::from(bytes))
}

/// The operation of the document that serves `method` on `path`, with its path template.
fn operation_for<'a>(contract: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let matches = |template: &str| {
        let (template, path): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
        template.len() == path.len() && template.iter().zip(&path).all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
    };
    contract["paths"].as_object()?.iter().filter(|(template, _)| matches(template)).find_map(|(template, item)| Some((template.as_str(), item.get(method)?)))
}

struct Harness {
    app: axum::Router,
    objects_app: axum::Router,
    objects: Arc<FileObjectStore>,
    state: Arc<DocumentsState>,
    handler: UploadHandler,
    created: Arc<Mutex<Vec<ObjectCreated>>>,
    events: Arc<dyn Queue>,
    /// Bytes the documents function read from the object store.
    read_bytes: Arc<std::sync::atomic::AtomicU64>,
    keys: Arc<KeyRing>,
    /// The documents function's clock.
    clock: Arc<ManualClock>,
    _backend: common::Backend,
}

impl Harness {
    async fn new() -> Self {
        Self::with_settings(Settings { public_base_url: "https://api.test".into(), ..Settings::default() }).await
    }

    /// A fresh harness and a new citizen's id.
    async fn with_user() -> (Self, String) {
        (Self::new().await, user())
    }

    async fn with_settings(settings: Settings) -> Self {
        let backend = common::Backend::open().await;
        let objects = backend.objects.clone();
        let read_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted: Arc<dyn ObjectStore> = Arc::new(CountingStore { inner: objects.clone(), read_bytes: read_bytes.clone() });
        let (ticker, clock) = Ticker::fixed(Utc::now());
        let state = Arc::new(backend.state(counted, settings).with_ticker(ticker));
        let keys = common::key_ring();
        let api = common::api(state.clone(), &keys);
        let contract = Arc::new(serde_json::to_value(shared::http::contract::split(documents::api(api.clone()), "Documents").1).unwrap());
        let app = shared::http::finish(documents::router(api)).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let contract = contract.clone();
                async move { conform(&contract, request, next).await }
            },
        ));
        let created = Arc::new(Mutex::new(Vec::new()));
        let sink = created.clone();
        let objects_app = routes(objects.clone(), Arc::new(move |event| sink.lock().unwrap().push(event)));
        let events = backend.events.clone();
        Self { app, objects_app, objects, handler: UploadHandler::new(state.clone()), state, created, events, read_bytes, keys, clock, _backend: backend }
    }

    /// A fresh access token with a live session behind it (the verifier checks sessions).
    async fn token(&self, user_id: &str) -> String {
        let sid = ulid::Ulid::new().to_string();
        let (pk, sk) = shared::records::session_key(user_id, &sid);
        self.state.kv.put(shared::ports::Item::new(pk, sk, b"{}".to_vec()), shared::ports::Condition::None).await.unwrap();
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "http://127.0.0.1:3000".into(),
            sub: user_id.into(),
            aud: "gosuslugi-api".into(),
            exp: now + 900,
            iat: now,
            jti: ulid::Ulid::new().to_string(),
            sid,
            lvl: "simplified".into(),
            amr: vec!["pwd".into()],
        };
        let key = self.keys.current();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>, user: Option<&str>) -> (StatusCode, Value) {
        let response = self.raw(method, path, body, user).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>, user: Option<&str>) -> axum::response::Response {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            req = req.header("authorization", format!("Bearer {}", self.token(user).await));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())).unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        self.app.clone().oneshot(req).await.unwrap()
    }

    /// Sends a request to a presigned URL of the embedded store.
    async fn object_request(&self, method: &str, url: &str, headers: &Value, body: Vec<u8>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let path = url.strip_prefix(OBJECTS_BASE).unwrap_or_else(|| panic!("{url} is not an object URL"));
        let mut req = Request::builder().method(method).uri(path);
        if let Some(headers) = headers.as_object() {
            for (name, value) in headers {
                req = req.header(name.as_str(), value.as_str().unwrap());
            }
        }
        let response = self.objects_app.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20).await.unwrap().to_vec();
        (status, headers, bytes)
    }

    async fn create(&self, user: &str, body: Value) -> Value {
        let (status, slot) = self.call("POST", "/v1/documents", Some(body), Some(user)).await;
        assert_eq!(status, StatusCode::CREATED, "{slot}");
        slot
    }

    /// PUTs `bytes` to the slot's upload URL with its headers; returns the store's status.
    async fn upload(&self, slot: &Value, bytes: &[u8]) -> StatusCode {
        let upload = &slot["upload"];
        assert_eq!(upload["method"], "PUT");
        self.object_request("PUT", upload["url"].as_str().unwrap(), &upload["headers"], bytes.to_vec()).await.0
    }

    /// Hands every collected object-created notification to the upload handler (as JSON, the
    /// way the uploads queue carries it).
    async fn deliver_notifications(&self) {
        let pending: Vec<ObjectCreated> = self.created.lock().unwrap().drain(..).collect();
        for created in pending {
            self.handler.handle(&s3_object_created("local-documents", &created)).await.unwrap();
        }
    }

    /// Creates a slot, uploads, verifies; returns the document as GET shows it.
    async fn stored(&self, user: &str, body: Value, bytes: &[u8]) -> Value {
        let slot = self.create(user, body).await;
        assert_eq!(self.upload(&slot, bytes).await, StatusCode::OK);
        self.deliver_notifications().await;
        self.get_doc(user, slot["document_id"].as_str().unwrap()).await
    }

    /// A verified PDF of `user` saying `text`: the document as GET shows it, and its bytes.
    async fn stored_pdf(&self, user: &str, doc_type: &str, purpose: &str, file_name: &str, text: &str) -> (Value, Vec<u8>) {
        let bytes = pdf(text);
        (self.stored(user, slot_body(doc_type, purpose, file_name, "application/pdf", bytes.len()), &bytes).await, bytes)
    }

    async fn get_doc(&self, user: &str, id: &str) -> Value {
        let (status, doc) = self.call("GET", &format!("/v1/documents/{id}"), None, Some(user)).await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        doc
    }

    /// A pending `inn.pdf` of `user` with `bytes` uploaded: its id, and the object-created
    /// notification, which is kept back instead of delivered.
    async fn uploaded_unnotified(&self, user: &str, bytes: &[u8]) -> (String, String) {
        let slot = self.create(user, slot_body("inn", "identity", "inn.pdf", "application/pdf", bytes.len())).await;
        assert_eq!(self.upload(&slot, bytes).await, StatusCode::OK);
        let created = self.created.lock().unwrap().drain(..).next().unwrap();
        (slot["document_id"].as_str().unwrap().to_owned(), s3_object_created("local-documents", &created))
    }

    /// The `document.verdict` events published so far (and not seen before).
    async fn verdicts(&self) -> Vec<Event> {
        self.published().await.into_iter().filter(|e| matches!(e.payload, EventPayload::DocumentVerdict { .. })).collect()
    }

    /// Shares document `id` of `user` for `seconds`; answers the link's token.
    async fn share_token(&self, user: &str, id: &str, seconds: i64) -> String {
        let (status, share) = self.call("POST", &format!("/v1/documents/{id}/shares"), Some(json!({"expires_in_seconds": seconds})), Some(user)).await;
        assert_eq!(status, StatusCode::CREATED, "{share}");
        share["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
    }

    async fn published(&self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let batch = self.events.receive(10, Duration::from_secs(30), Duration::ZERO).await.unwrap();
            if batch.is_empty() {
                return out;
            }
            for m in batch {
                out.push(serde_json::from_str(&m.body).unwrap());
                self.events.ack(&m.receipt).await.unwrap();
            }
        }
    }

    fn travel(&self, seconds: i64) {
        self.clock.advance(chrono::Duration::seconds(seconds));
    }
}

/// The function's view of the object store, counting the bytes it reads.
struct CountingStore {
    inner: Arc<FileObjectStore>,
    read_bytes: Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait::async_trait]
impl ObjectStore for CountingStore {
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
        expires_in: Duration,
    ) -> Result<shared::ports::PresignedRequest, shared::ports::ObjectStoreError> {
        self.inner.presign_put(key, content_type, length, expires_in).await
    }
    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        name: Option<&str>,
    ) -> Result<shared::ports::PresignedRequest, shared::ports::ObjectStoreError> {
        self.inner.presign_get(key, expires_in, name).await
    }
    async fn head(&self, key: &str) -> Result<Option<shared::ports::ObjectMeta>, shared::ports::ObjectStoreError> {
        self.inner.head(key).await
    }
    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<bytes::Bytes, shared::ports::ObjectStoreError> {
        let bytes = self.inner.read_range(key, offset, len).await?;
        self.read_bytes.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(bytes)
    }
    async fn put(&self, key: &str, content_type: &str, body: bytes::Bytes) -> Result<(), shared::ports::ObjectStoreError> {
        self.inner.put(key, content_type, body).await
    }
    async fn delete(&self, key: &str) -> Result<(), shared::ports::ObjectStoreError> {
        self.inner.delete(key).await
    }
}

fn user() -> String {
    ulid::Ulid::new().to_string()
}

/// A small but well-formed PDF.
fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n% {text}\ntrailer<</Root 1 0 R>>\n%%EOF\n")
        .into_bytes()
}

fn elf() -> Vec<u8> {
    let mut bytes = b"\x7FELF\x02\x01\x01\0".to_vec();
    bytes.resize(4096, 0x90);
    bytes
}

fn slot_body(doc_type: &str, purpose: &str, file_name: &str, content_type: &str, size: usize) -> Value {
    json!({"type": doc_type, "purpose": purpose, "file_name": file_name, "content_type": content_type, "size_bytes": size})
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn citizen_uploads_a_pdf_and_downloads_the_same_bytes_after_verification() {
    let (h, alice) = Harness::with_user().await;
    let bytes = pdf("passport scan");
    let slot = h.create(&alice, slot_body("passport", "identity", "Паспорт.pdf", "application/pdf", bytes.len())).await;
    assert_eq!(slot["status"], "pending_upload");
    assert_eq!(slot["upload"]["headers"]["content-type"], "application/pdf");
    assert_eq!(slot["upload"]["headers"]["content-length"], bytes.len().to_string());
    let expires_at = chrono::DateTime::parse_from_rfc3339(slot["upload"]["expires_at"].as_str().unwrap()).unwrap();
    let lifetime = expires_at.signed_duration_since(Utc::now()).num_seconds();
    assert!((880..=901).contains(&lifetime), "upload URL lives 15 minutes, got {lifetime}s");
    let id = slot["document_id"].as_str().unwrap();
    assert!(!slot["upload"]["url"].as_str().unwrap().contains("Паспорт"), "object keys carry no names");

    let pending = h.get_doc(&alice, id).await;
    assert_eq!((pending["status"].as_str(), &pending["download"]), (Some("pending_upload"), &Value::Null));

    assert_eq!(h.upload(&slot, &bytes).await, StatusCode::OK);
    h.deliver_notifications().await;

    let doc = h.get_doc(&alice, id).await;
    assert_eq!(doc["status"], "available", "{doc}");
    assert_eq!(doc["sha256"], sha256_hex(&bytes));
    assert_eq!(doc["size_bytes"], bytes.len());
    assert_eq!(doc["type"], "passport");
    assert_eq!(doc["version"], 1);
    let (status, headers, downloaded) = h.object_request("GET", doc["download"]["url"].as_str().unwrap(), &Value::Null, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(downloaded, bytes);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");
    let url = doc["download"]["url"].as_str().unwrap();
    assert!(!url.contains("%D0%9F") && !url.contains("Паспорт"), "the file name stays out of download URLs: {url}");
    assert!(headers[header::CONTENT_DISPOSITION].to_str().unwrap().contains(&format!("filename=\"document-{id}.pdf\"")), "a neutral download name");
    assert_eq!(doc["file_name"], "Паспорт.pdf", "the real name is in the API's JSON");
    let download_expiry = chrono::DateTime::parse_from_rfc3339(doc["download"]["expires_at"].as_str().unwrap()).unwrap();
    assert!(download_expiry.signed_duration_since(Utc::now()).num_seconds() <= 301, "downloads are short-lived");

    let verdicts = h.verdicts().await;
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0].user_id.as_deref(), Some(alice.as_str()));
    assert!(
        matches!(&verdicts[0].payload, EventPayload::DocumentVerdict { status, rejection_reason: None, file_name, .. } if *status == DocumentStatus::Available && file_name == "Паспорт.pdf")
    );
}

#[tokio::test]
async fn downloads_and_share_links_pass_no_bytes_through_the_function() {
    let (h, alice) = Harness::with_user().await;
    // Big enough for several hash chunks.
    let bytes = pdf(&" ".repeat(3 * MIB as usize + 12345));
    let doc = h.stored(&alice, slot_body("other", "vault", "big.pdf", "application/pdf", bytes.len()), &bytes).await;
    assert_eq!(doc["status"], "available", "{doc}");
    let verification = h.read_bytes.swap(0, Ordering::SeqCst);
    assert_eq!(verification, bytes.len() as u64 + 64 * 1024 + 1024, "the head for sniffing, the tail for the end marker, then every byte once for the hash");
    eprintln!("verification read {verification} bytes for a {}-byte upload", bytes.len());

    let id = doc["document_id"].as_str().unwrap();
    let doc = h.get_doc(&alice, id).await;
    let token = h.share_token(&alice, id, 60).await;
    let followed = h.raw("GET", &format!("/v1/shares/{token}"), None, None).await;
    let location = followed.headers()[header::LOCATION].to_str().unwrap().to_owned();
    for url in [doc["download"]["url"].as_str().unwrap(), location.as_str()] {
        let (status, _, downloaded) = h.object_request("GET", url, &Value::Null, Vec::new()).await;
        assert_eq!((status, downloaded.len()), (StatusCode::OK, bytes.len()));
    }
    h.call("GET", "/v1/documents", None, Some(&alice)).await;
    h.call("GET", &format!("/v1/documents/{id}/versions"), None, Some(&alice)).await;
    assert_eq!(h.read_bytes.load(Ordering::SeqCst), 0, "downloads go from the object store to the client directly");
}

#[tokio::test]
async fn executable_renamed_pdf_is_rejected_as_content_mismatch_and_deleted() {
    let (h, alice) = Harness::with_user().await;
    let exe = elf();
    let doc = h.stored(&alice, slot_body("other", "application", "invoice.pdf", "application/pdf", exe.len()), &exe).await;
    assert_eq!(doc["status"], "rejected", "{doc}");
    assert_eq!(doc["rejection_reason"], "content_mismatch");
    assert_eq!(doc["download"], Value::Null);
    assert_eq!(doc["sha256"], Value::Null);
    let key = format!("documents/{}", doc["document_id"].as_str().unwrap());
    assert_eq!(h.objects.head(&key).await.unwrap(), None, "rejected content is not kept");
    let verdict = h.published().await.into_iter().find_map(|e| match e.payload {
        EventPayload::DocumentVerdict { status, rejection_reason, .. } => Some((status, rejection_reason)),
        _ => None,
    });
    assert_eq!(verdict, Some((DocumentStatus::Rejected, Some(RejectionReason::ContentMismatch))));
}

#[tokio::test]
async fn declared_png_that_is_a_pdf_and_docx_outside_the_vault_are_content_mismatches() {
    let (h, alice) = Harness::with_user().await;
    let bytes = pdf("not a picture");
    let doc = h.stored(&alice, slot_body("photo", "identity", "photo.png", "image/png", bytes.len()), &bytes).await;
    assert_eq!((doc["status"].as_str(), doc["rejection_reason"].as_str()), (Some("rejected"), Some("content_mismatch")));
}

#[tokio::test]
async fn docx_and_xml_are_accepted_in_the_vault() {
    let (h, alice) = Harness::with_user().await;
    let docx = docx_bytes();
    let doc = h.stored(&alice, slot_body("power_of_attorney", "vault", "доверенность.docx", documents::policy::DOCX_CONTENT_TYPE, docx.len()), &docx).await;
    assert_eq!(doc["status"], "available", "{doc}");
    let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Выписка><ИНН>7707083893</ИНН></Выписка>\n".as_bytes().to_vec();
    let doc = h.stored(&alice, slot_body("inn", "vault", "inn.xml", "application/xml", xml.len()), &xml).await;
    assert_eq!(doc["status"], "available", "{doc}");
    assert_eq!(doc["content_type"], "application/xml");

    // A plain ZIP declared as DOCX is not one.
    let zip = zip_bytes(&[("notes.txt", b"hello")]);
    let doc = h.stored(&alice, slot_body("other", "vault", "fake.docx", documents::policy::DOCX_CONTENT_TYPE, zip.len()), &zip).await;
    assert_eq!((doc["status"].as_str(), doc["rejection_reason"].as_str()), (Some("rejected"), Some("content_mismatch")));
}

#[tokio::test]
async fn empty_upload_is_rejected_as_empty() {
    let (h, alice) = Harness::with_user().await;
    let doc = h.stored(&alice, slot_body("other", "vault", "empty.pdf", "application/pdf", 0), b"").await;
    assert_eq!((doc["status"].as_str(), doc["rejection_reason"].as_str()), (Some("rejected"), Some("empty")));
}

#[tokio::test]
async fn slot_limits_answer_413_and_415_with_the_spec_codes() {
    let (h, alice) = Harness::with_user().await;
    let (status, body) = h.call("POST", "/v1/documents", Some(slot_body("passport", "identity", "scan.pdf", "application/pdf", 6_000_000)), Some(&alice)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let (status, body) =
        h.call("POST", "/v1/documents", Some(slot_body("other", "application", "a.pdf", "application/pdf", (10 * MIB + 1) as usize)), Some(&alice)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let (status, _) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", "a.pdf", "application/pdf", (20 * MIB) as usize)), Some(&alice)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) =
        h.call("POST", "/v1/documents", Some(slot_body("other", "application", "a.docx", documents::policy::DOCX_CONTENT_TYPE, 10)), Some(&alice)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
    let (status, body) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", "a.exe", "application/x-msdownload", 10)), Some(&alice)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
}

#[tokio::test]
async fn quota_counts_pending_and_deleted_documents_and_answers_quota_exceeded() {
    let h = Harness::with_settings(Settings { quota_bytes: 1000, ..Settings::default() }).await;
    let alice = user();
    let (doc, bytes) = h.stored_pdf(&alice, "other", "vault", "a.pdf", "x").await;
    let (status, _) = h.call("DELETE", &format!("/v1/documents/{}", doc["document_id"].as_str().unwrap()), None, Some(&alice)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let rest = 1000 - bytes.len();
    let (status, body) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", "b.pdf", "application/pdf", rest + 1)), Some(&alice)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")), "deleted documents still count");
    let pending = h.create(&alice, slot_body("other", "vault", "b.pdf", "application/pdf", rest)).await;
    let (status, body) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", "c.pdf", "application/pdf", 1)), Some(&alice)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")), "pending uploads count");

    // A rejected upload gives its bytes back.
    let mut junk = elf();
    junk.truncate(rest);
    assert_eq!(h.upload(&pending, &junk).await, StatusCode::OK);
    h.deliver_notifications().await;
    let (status, _) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", "c.pdf", "application/pdf", rest)), Some(&alice)).await;
    assert_eq!(status, StatusCode::CREATED);
    // Someone else's quota is their own.
    let (status, _) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", "c.pdf", "application/pdf", 900)), Some(&user())).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_slot_requests_name_every_bad_field() {
    let (h, alice) = Harness::with_user().await;
    let (status, body) = h
        .call(
            "POST",
            "/v1/documents",
            Some(json!({"type": "result", "purpose": "drawer", "file_name": "../x/y.pdf", "content_type": "application/pdf", "size_bytes": -1})),
            Some(&alice),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{body}");
    let mut fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, vec!["file_name", "purpose", "size_bytes", "type"]);
    let (status, _) = h.call("POST", "/v1/documents", Some(slot_body("passport", "identity", "a.pdf", "application/pdf", 1)), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_citizen_gets_404_for_everything_about_a_document() {
    let h = Harness::new().await;
    let (alice, mallory) = (user(), user());
    let (doc, _) = h.stored_pdf(&alice, "snils", "vault", "snils.pdf", "mine").await;
    let id = doc["document_id"].as_str().unwrap();
    let (status, share) = h.call("POST", &format!("/v1/documents/{id}/shares"), Some(json!({"expires_in_seconds": 600})), Some(&alice)).await;
    assert_eq!(status, StatusCode::CREATED);
    let share_id = share["share_id"].as_str().unwrap();

    for (method, path, body) in [
        ("GET", format!("/v1/documents/{id}"), None),
        ("GET", format!("/v1/documents/{id}/versions"), None),
        ("DELETE", format!("/v1/documents/{id}"), None),
        ("POST", format!("/v1/documents/{id}/restore"), None),
        ("POST", format!("/v1/documents/{id}/shares"), Some(json!({"expires_in_seconds": 60}))),
        ("GET", format!("/v1/documents/{id}/shares"), None),
        ("DELETE", format!("/v1/documents/{id}/shares/{share_id}"), None),
    ] {
        let (status, body) = h.call(method, &path, body, Some(&mallory)).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{method} {path}");
    }
    let (_, list) = h.call("GET", "/v1/documents", None, Some(&mallory)).await;
    assert_eq!(list["items"], json!([]));
    assert_eq!(h.get_doc(&alice, id).await["status"], "available", "nothing changed");
}

#[tokio::test]
async fn redelivered_notification_changes_nothing_and_emits_one_verdict() {
    let (h, alice) = Harness::with_user().await;
    let (id, message) = h.uploaded_unnotified(&alice, &pdf("twice")).await;
    h.handler.handle(&message).await.unwrap();
    let before = h.get_doc(&alice, &id).await;
    h.travel(60);
    for _ in 0..3 {
        h.handler.handle(&message).await.unwrap();
    }
    assert_eq!(before["updated_at"], h.get_doc(&alice, &id).await["updated_at"]);
    assert_eq!(h.verdicts().await.len(), 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_notification_apply_one_verdict() {
    let h = Harness::new().await;
    let (_, message) = h.uploaded_unnotified(&user(), &pdf("race")).await;
    let results = futures::future::join_all((0..8).map(|_| h.handler.handle(&message))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(h.verdicts().await.len(), 1);
}

#[tokio::test]
async fn an_upload_url_cannot_replace_a_verified_file() {
    let (h, alice) = Harness::with_user().await;
    let good = pdf("good");
    let slot = h.create(&alice, slot_body("passport", "identity", "p.pdf", "application/pdf", good.len())).await;
    h.upload(&slot, &good).await;
    h.deliver_notifications().await;
    let id = slot["document_id"].as_str().unwrap();
    assert_eq!(h.get_doc(&alice, id).await["status"], "available");

    let mut bad = elf();
    bad.resize(good.len(), 0);
    assert_eq!(h.upload(&slot, &bad).await, StatusCode::PRECONDITION_FAILED, "the URL is still valid but good for one upload");
    assert!(h.created.lock().unwrap().is_empty(), "nothing landed");
    let doc = h.get_doc(&alice, id).await;
    assert_eq!((doc["status"].as_str(), doc["sha256"].as_str()), (Some("available"), Some(sha256_hex(&good).as_str())));
    let (_, _, downloaded) = h.object_request("GET", doc["download"]["url"].as_str().unwrap(), &Value::Null, Vec::new()).await;
    assert_eq!(downloaded, good);
}

#[tokio::test]
async fn s3_test_events_and_foreign_keys_are_acknowledged_and_ignored() {
    let h = Harness::new().await;
    h.handler.handle(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-03-14T09:12:03.118Z","Bucket":"b"}"#).await.unwrap();
    h.handler.handle(&s3_object_created("b", &ObjectCreated { key: "other/thing".into(), size: 3 })).await.unwrap();
    h.handler.handle(&s3_object_created("b", &ObjectCreated { key: "documents/01JQ3B5N7X9K2M4P6R8T0V1W3Y".into(), size: 3 })).await.unwrap();
    assert!(matches!(h.handler.handle("{not json").await, Err(shared::worker::HandlerError::Reject(_))));
    let fixture = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/s3-object-created.json")).unwrap();
    h.handler.handle(&fixture).await.unwrap();
}

#[tokio::test]
async fn lambda_sqs_batch_of_s3_notifications_verifies_uploads_and_acks_the_test_event() {
    let (h, alice) = Harness::with_user().await;
    let bytes = pdf("through lambda");
    let slot = h.create(&alice, slot_body("inn", "identity", "inn.pdf", "application/pdf", bytes.len())).await;
    h.upload(&slot, &bytes).await;
    h.created.lock().unwrap().clear();
    let id = slot["document_id"].as_str().unwrap();
    // The fixture as SQS hands it to Lambda, pointed at the object just uploaded.
    let fixture = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/sqs-s3-notification.json")).unwrap();
    let fixture = fixture.replace("01JQ3B5N7X9K2M4P6R8T0V1W3Y", id).replace("48213", &bytes.len().to_string());
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&fixture).unwrap();

    let response = shared::worker::sqs_batch_handler(&h.handler, event, 10).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(h.get_doc(&alice, id).await["status"], "available");
}

#[tokio::test]
async fn vault_reupload_creates_a_new_version_and_the_list_shows_the_latest() {
    let (h, alice) = Harness::with_user().await;
    let first = pdf("v1");
    let second = pdf("v2 with more text");
    let v1 = h.stored(&alice, slot_body("passport", "vault", "passport-2019.pdf", "application/pdf", first.len()), &first).await;
    let v2 = h.stored(&alice, slot_body("passport", "vault", "passport-2024.pdf", "application/pdf", second.len()), &second).await;
    assert_eq!((v1["version"].as_u64(), v2["version"].as_u64()), (Some(1), Some(2)));
    // Outside the vault there are no versions.
    let identity = h.stored(&alice, slot_body("passport", "identity", "scan.pdf", "application/pdf", first.len()), &first).await;
    assert_eq!(identity["version"], 1);

    let (status, versions) = h.call("GET", &format!("/v1/documents/{}/versions", v1["document_id"].as_str().unwrap()), None, Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = versions["items"].as_array().unwrap().iter().map(|d| d["file_name"].as_str().unwrap()).collect();
    assert_eq!(listed, vec!["passport-2024.pdf", "passport-2019.pdf"]);

    let (_, list) = h.call("GET", "/v1/documents?type=passport", None, Some(&alice)).await;
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|d| d["file_name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["scan.pdf", "passport-2024.pdf"], "the old vault version is listed under versions only");
    let (_, all) = h.call("GET", "/v1/documents?type=passport&all_versions=true", None, Some(&alice)).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn list_filters_by_status_and_type_and_pages_with_a_cursor() {
    let (h, alice) = Harness::with_user().await;
    let bytes = pdf("page");
    for i in 0..5 {
        h.stored(&alice, slot_body("other", "application", &format!("{i}.pdf"), "application/pdf", bytes.len()), &bytes).await;
    }
    h.create(&alice, slot_body("snils", "identity", "pending.pdf", "application/pdf", 10)).await;

    let mut seen = Vec::new();
    let mut path = "/v1/documents?status=available&limit=2".to_owned();
    loop {
        let (status, page) = h.call("GET", &path, None, Some(&alice)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(page["items"].as_array().unwrap().iter().map(|d| d["file_name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/documents?status=available&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, vec!["4.pdf", "3.pdf", "2.pdf", "1.pdf", "0.pdf"], "newest first, each once");
    let (_, pending) = h.call("GET", "/v1/documents?status=pending_upload", None, Some(&alice)).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    let (_, snils) = h.call("GET", "/v1/documents?type=snils", None, Some(&alice)).await;
    assert_eq!(snils["items"][0]["file_name"], "pending.pdf");
    for bad in ["/v1/documents?status=lost", "/v1/documents?type=diploma", "/v1/documents?limit=101", "/v1/documents?cursor=../x"] {
        let (status, body) = h.call("GET", bad, None, Some(&alice)).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{bad}");
    }
}

#[tokio::test]
async fn deleted_document_is_restorable_for_30_days_then_purged_with_its_object() {
    let h = Harness::with_settings(Settings { quota_bytes: 4096, ..Settings::default() }).await;
    let alice = user();
    let (doc, _) = h.stored_pdf(&alice, "other", "vault", "old.pdf", "to delete").await;
    let id = doc["document_id"].as_str().unwrap().to_owned();
    let key = format!("documents/{id}");

    let (status, _) = h.call("DELETE", &format!("/v1/documents/{id}"), None, Some(&alice)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deleted = h.get_doc(&alice, &id).await;
    assert_eq!((deleted["status"].as_str(), &deleted["download"]), (Some("deleted"), &Value::Null));
    assert!(deleted["restorable_until"].is_string());
    let (_, list) = h.call("GET", "/v1/documents", None, Some(&alice)).await;
    assert_eq!(list["items"], json!([]), "deleted documents leave the default list");
    let (_, list) = h.call("GET", "/v1/documents?status=deleted", None, Some(&alice)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let (status, restored) = h.call("POST", &format!("/v1/documents/{id}/restore"), None, Some(&alice)).await;
    assert_eq!((status, restored["status"].as_str()), (StatusCode::OK, Some("available")));
    assert!(restored["download"]["url"].is_string());
    let (status, body) = h.call("POST", &format!("/v1/documents/{id}/restore"), None, Some(&alice)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("document_not_deleted")));

    assert_eq!(h.call("DELETE", &format!("/v1/documents/{id}"), None, Some(&alice)).await.0, StatusCode::NO_CONTENT);
    // Nothing is purged before the window ends.
    let early = Purger::new(h.state.clone()).run(Utc::now() + chrono::Duration::days(29)).await.unwrap();
    assert_eq!(early.purged_deleted, 0);
    assert!(h.objects.head(&key).await.unwrap().is_some());

    h.travel(31 * DAY);
    let (status, _) = h.call("POST", &format!("/v1/documents/{id}/restore"), None, Some(&alice)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "past the window a document cannot be restored");
    let report = Purger::new(h.state.clone()).run(h.state.now()).await.unwrap();
    assert_eq!(report.purged_deleted, 1, "{report:?}");
    assert_eq!(h.objects.head(&key).await.unwrap(), None);
    let (status, _) = h.call("GET", &format!("/v1/documents/{id}"), None, Some(&alice)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(shared::records::load_document(h.state.kv.as_ref(), &alice, &id).await.unwrap().is_none());
    // The quota is free again.
    let (status, _) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", "new.pdf", "application/pdf", 4096)), Some(&alice)).await;
    assert_eq!(status, StatusCode::CREATED);
    // A second run finds nothing left to do.
    let again = Purger::new(h.state.clone()).run(h.state.now()).await.unwrap();
    assert_eq!((again.purged_deleted, again.failed), (0, 0));
}

#[tokio::test]
async fn abandoned_uploads_are_purged_after_a_day_but_late_arrivals_are_verified() {
    let (h, alice) = Harness::with_user().await;
    let abandoned = h.create(&alice, slot_body("other", "application", "never.pdf", "application/pdf", 100)).await;
    let bytes = pdf("arrived without notice");
    let late = h.create(&alice, slot_body("other", "application", "late.pdf", "application/pdf", bytes.len())).await;
    h.upload(&late, &bytes).await;
    h.created.lock().unwrap().clear(); // the notification is lost

    let report = Purger::new(h.state.clone()).run(Utc::now() + chrono::Duration::hours(25)).await.unwrap();
    assert_eq!((report.purged_abandoned, report.verified_late, report.failed), (1, 1, 0), "{report:?}");
    let (status, _) = h.call("GET", &format!("/v1/documents/{}", abandoned["document_id"].as_str().unwrap()), None, Some(&alice)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let doc = h.get_doc(&alice, late["document_id"].as_str().unwrap()).await;
    assert_eq!((doc["status"].as_str(), doc["sha256"].as_str()), (Some("available"), Some(sha256_hex(&bytes).as_str())));
}

#[tokio::test]
async fn upload_finishing_after_deletion_is_verified_silently_and_restored_with_its_verdict() {
    let (h, alice) = Harness::with_user().await;
    let bytes = pdf("deleted while uploading");
    let slot = h.create(&alice, slot_body("other", "vault", "a.pdf", "application/pdf", bytes.len())).await;
    let id = slot["document_id"].as_str().unwrap();
    assert_eq!(h.call("DELETE", &format!("/v1/documents/{id}"), None, Some(&alice)).await.0, StatusCode::NO_CONTENT);
    h.upload(&slot, &bytes).await;
    h.deliver_notifications().await;
    assert_eq!(h.get_doc(&alice, id).await["status"], "deleted");
    assert!(h.verdicts().await.is_empty(), "no verdict for a deleted document");

    let (status, restored) = h.call("POST", &format!("/v1/documents/{id}/restore"), None, Some(&alice)).await;
    assert_eq!((status, restored["status"].as_str()), (StatusCode::OK, Some("available")));
    assert_eq!(restored["sha256"], sha256_hex(&bytes));
}

#[tokio::test]
async fn share_link_downloads_without_login_until_revoked_or_expired() {
    let (h, alice) = Harness::with_user().await;
    let (doc, bytes) = h.stored_pdf(&alice, "birth_certificate", "vault", "birth.pdf", "shared").await;
    let id = doc["document_id"].as_str().unwrap();

    let (status, share) = h.call("POST", &format!("/v1/documents/{id}/shares"), Some(json!({"expires_in_seconds": 3600})), Some(&alice)).await;
    assert_eq!(status, StatusCode::CREATED, "{share}");
    let url = share["url"].as_str().unwrap();
    let token = url.strip_prefix("https://api.test/v1/shares/").expect("a route of this API");
    assert!(token.len() >= 22, "at least 128 random bits");

    let followed = h.raw("GET", &format!("/v1/shares/{token}"), None, None).await;
    assert_eq!(followed.status(), StatusCode::FOUND);
    assert_eq!(followed.headers()[header::CACHE_CONTROL], "no-store");
    let location = followed.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let (status, _, downloaded) = h.object_request("GET", &location, &Value::Null, Vec::new()).await;
    assert_eq!((status, downloaded), (StatusCode::OK, bytes.clone()));

    let (_, listed) = h.call("GET", &format!("/v1/documents/{id}/shares"), None, Some(&alice)).await;
    assert_eq!(listed["items"][0]["share_id"], share["share_id"]);
    let (status, _) = h.call("DELETE", &format!("/v1/documents/{id}/shares/{}", share["share_id"].as_str().unwrap()), None, Some(&alice)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.raw("GET", &format!("/v1/shares/{token}"), None, None).await.status(), StatusCode::NOT_FOUND);

    let short_token = h.share_token(&alice, id, 60).await;
    assert_eq!(h.raw("GET", &format!("/v1/shares/{short_token}"), None, None).await.status(), StatusCode::FOUND);
    h.travel(61);
    assert_eq!(h.raw("GET", &format!("/v1/shares/{short_token}"), None, None).await.status(), StatusCode::NOT_FOUND);
    h.travel(-61);

    // Deleting the document stops its links too.
    let third_token = h.share_token(&alice, id, 60).await;
    h.call("DELETE", &format!("/v1/documents/{id}"), None, Some(&alice)).await;
    assert_eq!(h.raw("GET", &format!("/v1/shares/{third_token}"), None, None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.raw("GET", "/v1/shares/not-a-token", None, None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shares_last_at_most_seven_days_and_only_for_available_documents() {
    let (h, alice) = Harness::with_user().await;
    let (doc, _) = h.stored_pdf(&alice, "other", "vault", "a.pdf", "limits").await;
    let id = doc["document_id"].as_str().unwrap();
    for bad in [json!({"expires_in_seconds": 7 * DAY + 1}), json!({"expires_in_seconds": 0}), json!({})] {
        let (status, body) = h.call("POST", &format!("/v1/documents/{id}/shares"), Some(bad.clone()), Some(&alice)).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{bad}");
    }
    let (status, share) = h.call("POST", &format!("/v1/documents/{id}/shares"), Some(json!({"expires_in_seconds": 7 * DAY})), Some(&alice)).await;
    assert_eq!(status, StatusCode::CREATED, "{share}");
    let pending = h.create(&alice, slot_body("other", "vault", "b.pdf", "application/pdf", 10)).await;
    let (status, body) = h
        .call("POST", &format!("/v1/documents/{}/shares", pending["document_id"].as_str().unwrap()), Some(json!({"expires_in_seconds": 60})), Some(&alice))
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("document_not_available")));
}

// ---------------------------------------------------------------------------------------------
// Agency result documents (SPEC §4.4)
// ---------------------------------------------------------------------------------------------

/// The dev seed's current secret of `mvd` (infra/local/seed/agencies.json).
const MVD_SECRET: &str = "whsec_4yfK5COdeB1U32Y6EdMEAq+W57coihQLYRR/mOzBorQ=";
const FNS_SECRET: &str = "whsec_2NHSev+Uspje00NmbiQo6G2SZe3gSRYwuRDl8NuHX6k=";

impl Harness {
    /// Stores an application the way the applications function does (its read contract).
    async fn application(&self, citizen: &str, agency_id: &str, status: &str) -> String {
        let id = ulid::Ulid::new().to_string();
        let record =
            json!({"application_id": id, "user_id": citizen, "agency_id": agency_id, "service_code": "passport_replacement", "status": status, "number": null});
        let (pk, sk) = shared::records::application_key(&id);
        self.state.kv.put(shared::ports::Item::json(pk, sk, &record).unwrap(), shared::ports::Condition::NotExists).await.unwrap();
        id
    }

    /// Asserts that `user` has no document at all (no version of any), saying `why`.
    async fn assert_no_documents(&self, user: &str, why: &str) {
        let (_, list) = self.call("GET", "/v1/documents?all_versions=true", None, Some(user)).await;
        assert_eq!(list["items"], json!([]), "{why}");
    }

    /// `POST /v1/agency/{agency}/documents` signed per Standard Webhooks v1 with `secret`.
    async fn agency_upload(&self, agency: &str, secret: &str, webhook_id: &str, body: &Value) -> (StatusCode, Value) {
        use base64::Engine;
        use hmac::Mac;
        let raw = body.to_string();
        let timestamp = Utc::now().timestamp().to_string();
        let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{webhook_id}.{timestamp}.{raw}").as_bytes());
        let signature = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
        let req = Request::builder()
            .method("POST")
            .uri(format!("/v1/agency/{agency}/documents"))
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(Body::from(raw))
            .unwrap();
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn agency_uploads_a_result_that_becomes_the_citizens_document() {
    let (h, alice) = Harness::with_user().await;
    let application_id = h.application(&alice, "mvd", "in_progress").await;
    let bytes = pdf("Решение о выдаче паспорта");
    let body = json!({"application_id": application_id, "file_name": "Решение.pdf", "content_type": "application/pdf", "size_bytes": bytes.len()});

    let (status, slot) = h.agency_upload("mvd", MVD_SECRET, "msg_result_1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{slot}");
    assert_eq!(slot["status"], "pending_upload");
    assert_eq!(h.upload(&slot, &bytes).await, StatusCode::OK);
    h.deliver_notifications().await;

    let id = slot["document_id"].as_str().unwrap();
    let doc = h.get_doc(&alice, id).await;
    assert_eq!((doc["type"].as_str(), doc["purpose"].as_str(), doc["status"].as_str()), (Some("result"), Some("application"), Some("available")));
    let read = shared::records::load_document(h.state.kv.as_ref(), &alice, id).await.unwrap().expect("the citizen owns it");
    assert_eq!(read.doc_type, "result");

    // The same webhook-id again: the first answer, nothing new.
    let (status, again) = h.agency_upload("mvd", MVD_SECRET, "msg_result_1", &body).await;
    assert_eq!((status, &again["document_id"]), (StatusCode::CREATED, &slot["document_id"]));
    let (_, list) = h.call("GET", "/v1/documents?type=result&status=available", None, Some(&alice)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, pending) = h.call("GET", "/v1/documents?status=pending_upload", None, Some(&alice)).await;
    assert_eq!(pending["items"], json!([]));
}

#[tokio::test]
async fn only_the_applications_agency_may_upload_results_and_signatures_are_checked() {
    let (h, alice) = Harness::with_user().await;
    let application_id = h.application(&alice, "mvd", "accepted").await;
    let body = json!({"application_id": application_id, "file_name": "r.pdf", "content_type": "application/pdf", "size_bytes": 100});

    let draft = h.application(&alice, "mvd", "draft").await;
    let file = |application_id: &str, file_name: &str, content_type: &str, size_bytes: u64| json!({"application_id": application_id, "file_name": file_name, "content_type": content_type, "size_bytes": size_bytes});
    let refusals = [
        ("fns", FNS_SECRET, "msg_other_agency", body.clone(), StatusCode::NOT_FOUND, "not_found"),
        ("mvd", FNS_SECRET, "msg_bad_signature", body.clone(), StatusCode::UNAUTHORIZED, "signature_invalid"),
        ("nobody", MVD_SECRET, "msg_unknown", body.clone(), StatusCode::UNAUTHORIZED, "signature_invalid"),
        // Drafts were never sent to the agency.
        ("mvd", MVD_SECRET, "msg_draft", file(&draft, "r.pdf", "application/pdf", 100), StatusCode::NOT_FOUND, "not_found"),
        ("mvd", MVD_SECRET, "msg_big", file(&application_id, "r.pdf", "application/pdf", 11 * MIB), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ("mvd", MVD_SECRET, "msg_xml", file(&application_id, "r.xml", "application/xml", 100), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("mvd", MVD_SECRET, "msg_bad_body", json!({"file_name": ""}), StatusCode::BAD_REQUEST, "validation_failed"),
    ];
    for (agency, secret, webhook_id, body, status, code) in refusals {
        let (answered, problem) = h.agency_upload(agency, secret, webhook_id, &body).await;
        assert_eq!((answered, problem["code"].as_str()), (status, Some(code)), "{webhook_id}");
    }
    h.assert_no_documents(&alice, "nothing was created").await;
}

// ---------------------------------------------------------------------------------------------
// Agency downloads (SPEC §4.6)
// ---------------------------------------------------------------------------------------------

impl Harness {
    /// Stores an application with its documents the way the applications function does.
    async fn application_with(&self, citizen: &str, agency_id: &str, status: &str, document_ids: &[&str], result_document_ids: &[&str]) -> String {
        let id = ulid::Ulid::new().to_string();
        let record = json!({"application_id": id, "user_id": citizen, "agency_id": agency_id, "service_code": "passport-replacement", "status": status,
            "number": "2026-0000042", "document_ids": document_ids, "result_document_ids": result_document_ids});
        let (pk, sk) = shared::records::application_key(&id);
        self.state.kv.put(shared::ports::Item::json(pk, sk, &record).unwrap(), shared::ports::Condition::NotExists).await.unwrap();
        id
    }

    /// An agency's `client_credentials` access token (scope `agency`), as `POST /oauth2/token` issues.
    fn client_token(&self, agency: &str) -> String {
        let now = Utc::now();
        shared::http::auth::issue_client_token(&self.keys, "http://127.0.0.1:3000", "gosuslugi-api", agency, "agency", ulid::Ulid::new().to_string(), now)
            .unwrap()
    }

    /// `GET path` with `Authorization: Bearer <token>` (or none).
    async fn get_with(&self, path: &str, token: Option<&str>) -> axum::response::Response {
        let mut req = Request::builder().method("GET").uri(path);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        self.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }
}

#[tokio::test]
async fn an_agency_downloads_the_documents_of_its_application_through_a_60_second_redirect() {
    let (h, alice) = Harness::with_user().await;
    let (attached, bytes) = h.stored_pdf(&alice, "passport", "application", "паспорт.pdf", "attached").await;
    let attached = attached["document_id"].as_str().unwrap();
    let (result, result_bytes) = h.stored_pdf(&alice, "other", "application", "решение.pdf", "result").await;
    let result = result["document_id"].as_str().unwrap();
    let application = h.application_with(&alice, "mvd", "submitted", &[attached], &[result]).await;
    let mvd = h.client_token("mvd");

    for (document, expected) in [(attached, &bytes), (result, &result_bytes)] {
        let before = Utc::now().timestamp();
        let response = h.get_with(&format!("/v1/agency/mvd/applications/{application}/documents/{document}"), Some(&mvd)).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let location = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
        let expires: i64 = location.split(['?', '&']).find_map(|pair| pair.strip_prefix("expires=")).unwrap().parse().unwrap();
        assert!((before + 59..=Utc::now().timestamp() + 60).contains(&expires), "the URL lives 60 s: {}", expires - before);
        let (status, headers, downloaded) = h.object_request("GET", &location, &Value::Null, Vec::new()).await;
        assert_eq!((status, &downloaded), (StatusCode::OK, expected));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(headers[header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment"));
    }
}

#[tokio::test]
async fn an_agency_gets_404_for_documents_not_attached_to_its_application_and_401_without_its_token() {
    let (h, alice) = Harness::with_user().await;
    let (attached, _) = h.stored_pdf(&alice, "passport", "application", "паспорт.pdf", "attached").await;
    let attached = attached["document_id"].as_str().unwrap().to_owned();
    let (loose, _) = h.stored_pdf(&alice, "snils", "identity", "снилс.pdf", "not attached").await;
    let loose = loose["document_id"].as_str().unwrap().to_owned();
    let application = h.application_with(&alice, "mvd", "in_progress", &[&attached], &[]).await;
    let draft = h.application_with(&alice, "mvd", "draft", &[&attached], &[]).await;
    let (mvd, fns) = (h.client_token("mvd"), h.client_token("fns"));
    let path = |agency: &str, application: &str, document: &str| format!("/v1/agency/{agency}/applications/{application}/documents/{document}");
    assert_eq!(h.get_with(&path("mvd", &application, &attached), Some(&mvd)).await.status(), StatusCode::FOUND, "the control case");

    let not_found = [
        (path("mvd", &application, &loose), &mvd, "a document of the citizen not attached to the application"),
        (path("mvd", &application, "01JNOSUCHDOCUMENT000000000"), &mvd, "no such document"),
        (path("mvd", &draft, &attached), &mvd, "a draft never reached the agency"),
        (path("mvd", "01JNOSUCHAPPLICATION000000", &attached), &mvd, "no such application"),
        (path("mvd", &application, &attached), &fns, "another agency's path"),
        (path("fns", &application, &attached), &fns, "another agency's application"),
    ];
    for (path, token, why) in not_found {
        let response = h.get_with(&path, Some(token)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{why}");
        assert!(response.headers().get(header::LOCATION).is_none(), "{why}");
    }
    let citizen = h.token(&alice).await;
    for (token, why) in [(None, "no token"), (Some(citizen.as_str()), "a citizen's token"), (Some("garbage"), "garbage")] {
        let response = h.get_with(&path("mvd", &application, &attached), token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
    }
    // Deleted by the citizen: no longer downloadable.
    h.call("DELETE", &format!("/v1/documents/{attached}"), None, Some(&alice)).await;
    assert_eq!(h.get_with(&path("mvd", &application, &attached), Some(&mvd)).await.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// Test files
// ---------------------------------------------------------------------------------------------

const DOCX_CONTENT_TYPES: &[u8] = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

fn docx_bytes() -> Vec<u8> {
    zip_bytes(&[
        ("[Content_Types].xml", DOCX_CONTENT_TYPES),
        ("_rels/.rels", b"<?xml version=\"1.0\"?><Relationships/>"),
        ("word/document.xml", b"<?xml version=\"1.0\"?><w:document/>"),
    ])
}

/// A ZIP archive with deflated entries.
fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// A tiny JPEG: start of image, a JFIF header, end of image.
fn jpeg() -> Vec<u8> {
    let mut bytes = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
    bytes.extend_from_slice(&[0x42; 200]);
    bytes.extend_from_slice(b"\xFF\xD9");
    bytes
}

/// A tiny PNG: signature, an IHDR chunk, the IEND chunk.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90\x77\x53\xDE".to_vec();
    bytes.extend_from_slice(b"\x00\x00\x00\x00IEND\xAE\x42\x60\x82");
    bytes
}

// ---------------------------------------------------------------------------------------------
// Security review fixes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_document_revokes_its_shares_for_good() {
    let (h, alice) = Harness::with_user().await;
    let (doc, _) = h.stored_pdf(&alice, "other", "vault", "a.pdf", "shared then deleted").await;
    let id = doc["document_id"].as_str().unwrap();
    // More links than fit into the deletion's own transaction.
    let mut tokens = Vec::new();
    for _ in 0..14 {
        let (status, share) = h.call("POST", &format!("/v1/documents/{id}/shares"), Some(json!({"expires_in_seconds": 3600})), Some(&alice)).await;
        assert_eq!(status, StatusCode::CREATED, "{share}");
        tokens.push(share["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned());
    }
    assert_eq!(h.call("DELETE", &format!("/v1/documents/{id}"), None, Some(&alice)).await.0, StatusCode::NO_CONTENT);
    let (status, listed) = h.call("GET", &format!("/v1/documents/{id}/shares"), None, Some(&alice)).await;
    assert_eq!((status, &listed["items"]), (StatusCode::OK, &json!([])));

    let (status, _) = h.call("POST", &format!("/v1/documents/{id}/restore"), None, Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    for token in &tokens {
        assert_eq!(h.raw("GET", &format!("/v1/shares/{token}"), None, None).await.status(), StatusCode::NOT_FOUND, "a restore does not revive links");
    }
    let (_, listed) = h.call("GET", &format!("/v1/documents/{id}/shares"), None, Some(&alice)).await;
    assert_eq!(listed["items"], json!([]));
    let (pk, _) = shared::records::document_key(&alice, id);
    let leftovers = h.state.kv.query(shared::ports::Query::partition(pk).prefix("DOCSHARE#")).await.unwrap();
    assert!(leftovers.items.is_empty(), "no share pointers are left");
}

#[tokio::test]
async fn undecodable_ids_and_repeated_query_parameters_answer_problem_json() {
    let (h, alice) = Harness::with_user().await;
    for (path, expected) in [
        ("/v1/documents/%FF", StatusCode::NOT_FOUND),
        ("/v1/documents/%FF/shares", StatusCode::NOT_FOUND),
        ("/v1/shares/%FF", StatusCode::NOT_FOUND),
        ("/v1/documents?type=a&type=b", StatusCode::BAD_REQUEST),
    ] {
        let response = h.raw("GET", path, None, Some(&alice)).await;
        assert_eq!(response.status(), expected, "{path}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json", "{path}");
    }
}

#[tokio::test]
async fn an_oversized_agency_body_answers_problem_json_413() {
    let h = Harness::new().await;
    let body = json!({"application_id": "x".repeat(3 * MIB as usize)});
    let (status, problem) = h.agency_upload("mvd", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_big", &body).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")), "{problem}");
}

#[tokio::test]
async fn a_runnable_jar_declared_as_docx_is_a_content_mismatch() {
    let (h, alice) = Harness::with_user().await;
    let jar = zip_bytes(&[
        ("[Content_Types].xml", DOCX_CONTENT_TYPES),
        ("word/document.xml", b"<w:document/>"),
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nMain-Class: Payload\n"),
        ("Payload.class", b"\xCA\xFE\xBA\xBE\x00\x00\x00\x34"),
    ]);
    let doc = h.stored(&alice, slot_body("other", "vault", "contract.docx", documents::policy::DOCX_CONTENT_TYPE, jar.len()), &jar).await;
    assert_eq!((doc["status"].as_str(), doc["rejection_reason"].as_str()), (Some("rejected"), Some("content_mismatch")));
    // Part names alone are not enough either: the content types must declare a Word document.
    let names_only = zip_bytes(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w:document/>")]);
    let doc = h.stored(&alice, slot_body("other", "vault", "x.docx", documents::policy::DOCX_CONTENT_TYPE, names_only.len()), &names_only).await;
    assert_eq!(doc["rejection_reason"], "content_mismatch");
}

#[tokio::test]
async fn magic_bytes_without_the_end_marker_are_content_mismatches() {
    let (h, alice) = Harness::with_user().await;
    let truncated_pdf = b"%PDF-1.7\n1 0 obj<<>>endobj\n".to_vec();
    let mut padded_jpeg = jpeg();
    padded_jpeg.extend_from_slice(&[0, 0, 0, b'\n']);
    let mut jpeg_then_payload = jpeg();
    jpeg_then_payload.extend_from_slice(&elf());
    let mut png_then_payload = png();
    png_then_payload.extend_from_slice(b"<?php system($_GET['c']); ?>");
    let mut big_pdf_cut = pdf(&" ".repeat(100 * 1024));
    big_pdf_cut.truncate(big_pdf_cut.len() - 10);
    for (name, content_type, bytes, expected) in [
        ("tiny.pdf", "application/pdf", b"%PDF".to_vec(), "rejected"),
        ("cut.pdf", "application/pdf", truncated_pdf, "rejected"),
        ("big-cut.pdf", "application/pdf", big_pdf_cut, "rejected"),
        ("ok.jpg", "image/jpeg", jpeg(), "available"),
        ("padded.jpg", "image/jpeg", padded_jpeg, "available"),
        ("glued.jpg", "image/jpeg", jpeg_then_payload, "rejected"),
        ("ok.png", "image/png", png(), "available"),
        ("glued.png", "image/png", png_then_payload, "rejected"),
    ] {
        let doc = h.stored(&alice, slot_body("other", "vault", name, content_type, bytes.len()), &bytes).await;
        assert_eq!(doc["status"], expected, "{name}: {doc}");
        if expected == "rejected" {
            assert_eq!(doc["rejection_reason"], "content_mismatch", "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_slot_requests_fill_the_quota_exactly_without_conflicts() {
    let h = Arc::new(Harness::with_settings(Settings { quota_bytes: 25 * 1000, ..Settings::default() }).await);
    let alice = user();
    let requests = (0..40).map(|i| {
        let (h, alice) = (h.clone(), alice.clone());
        tokio::spawn(async move {
            h.call("POST", "/v1/documents", Some(slot_body("other", "vault", &format!("{i}.pdf"), "application/pdf", 1000)), Some(&alice)).await
        })
    });
    let mut created = 0;
    let mut refused = 0;
    for answer in futures::future::join_all(requests).await {
        let (status, body) = answer.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::PAYLOAD_TOO_LARGE if body["code"] == "quota_exceeded" => refused += 1,
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    assert_eq!((created, refused), (25, 15));
    let usage = h.state.kv.get(&shared::identity::user_pk(&alice), "DOCUSAGE").await.unwrap().unwrap();
    assert_eq!(usage.parse::<Value>().unwrap()["bytes"], 25 * 1000);
}

// ---------------------------------------------------------------------------------------------
// Security issue 15: text bounds, hostile content, download headers
// ---------------------------------------------------------------------------------------------

/// Characters that hide or reorder what a reader sees (SPEC §2), each smuggled into a name.
const INVISIBLE_OR_REORDERING: [char; 17] = [
    '\u{0}', '\u{1F}', '\u{7F}', '\u{85}', '\u{9F}', '\u{200B}', '\u{200D}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2060}', '\u{2066}', '\u{2069}',
    '\u{FEFF}', '\u{061C}', '\u{200E}', '\u{2067}',
];

/// The `file_name` field error of a 400 problem, after checking the problem never echoes `value`.
fn file_name_error(status: StatusCode, problem: &Value, value: &str) -> Value {
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{problem}");
    assert!(!problem.to_string().contains(value), "the problem echoes the submitted value: {problem}");
    let errors = problem["errors"].as_array().expect("field errors");
    errors.iter().find(|e| e["field"] == "file_name").cloned().unwrap_or_else(|| panic!("no file_name error: {problem}"))
}

#[tokio::test]
async fn a_right_to_left_override_in_a_file_name_is_refused_without_echoing_it() {
    let (h, alice) = Harness::with_user().await;
    let spoof = "scan\u{202E}fdp.exe";
    let (status, problem) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", spoof, "application/pdf", 10)), Some(&alice)).await;
    let error = file_name_error(status, &problem, "fdp.exe");
    assert_eq!(error["code"], "forbidden_characters", "{problem}");
    assert!(error["message"].as_str().unwrap().chars().any(|c| ('а'..='я').contains(&c)), "Russian message: {error}");

    for c in INVISIBLE_OR_REORDERING {
        let name = format!("паспорт{c}скан.pdf");
        let (status, problem) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", &name, "application/pdf", 10)), Some(&alice)).await;
        let error = file_name_error(status, &problem, "паспорт");
        assert_eq!(error["code"], "forbidden_characters", "U+{:04X}: {problem}", c as u32);
    }
    h.assert_no_documents(&alice, "no slot was created").await;
}

#[tokio::test]
async fn a_file_name_of_255_characters_is_accepted_and_256_refused() {
    let (h, alice) = Harness::with_user().await;
    let at_bound = format!("{}.pdf", "ж".repeat(251));
    let (status, _) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", &at_bound, "application/pdf", 10)), Some(&alice)).await;
    assert_eq!(status, StatusCode::CREATED);
    let too_long = format!("{}.pdf", "ж".repeat(252));
    let (status, problem) = h.call("POST", "/v1/documents", Some(slot_body("other", "vault", &too_long, "application/pdf", 10)), Some(&alice)).await;
    assert_eq!(file_name_error(status, &problem, &"ж".repeat(20))["code"], "too_long");
}

#[tokio::test]
async fn agency_result_file_names_are_held_to_the_same_rules() {
    let (h, alice) = Harness::with_user().await;
    let application_id = h.application(&alice, "mvd", "in_progress").await;
    for (webhook_id, name, code) in [
        ("msg_rlo", "Решение\u{202E}fdp.exe".to_owned(), "forbidden_characters"),
        ("msg_zw", "Реше\u{200B}ние.pdf".to_owned(), "forbidden_characters"),
        ("msg_long", format!("{}.pdf", "р".repeat(252)), "too_long"),
    ] {
        let body = json!({"application_id": application_id, "file_name": name, "content_type": "application/pdf", "size_bytes": 100});
        let (status, problem) = h.agency_upload("mvd", MVD_SECRET, webhook_id, &body).await;
        assert_eq!(file_name_error(status, &problem, &name)["code"], code, "{webhook_id}");
    }
    h.assert_no_documents(&alice, "nothing was created").await;
}

#[tokio::test]
async fn oversized_string_fields_are_refused_at_the_edge_without_echo() {
    let (h, alice) = Harness::with_user().await;
    let huge = "Щ".repeat(10_000);
    for (field, body) in [
        ("type", json!({"type": huge, "purpose": "vault", "file_name": "a.pdf", "content_type": "application/pdf", "size_bytes": 10})),
        ("purpose", json!({"type": "other", "purpose": huge, "file_name": "a.pdf", "content_type": "application/pdf", "size_bytes": 10})),
        (
            "content_type",
            json!({"type": "other", "purpose": "vault", "file_name": "a.pdf", "content_type": format!("application/pdf; x={huge}"), "size_bytes": 10}),
        ),
    ] {
        let (status, problem) = h.call("POST", "/v1/documents", Some(body), Some(&alice)).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{field}: {problem}");
        assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{field}: {problem}");
        assert!(!problem.to_string().contains("ЩЩЩ"), "{field}: the problem echoes the value");
    }

    // An application id longer than any id is refused before the store is asked (not a 404).
    let application_id = h.application(&alice, "mvd", "in_progress").await;
    let long_id = format!("{application_id}{}", "A".repeat(64));
    let body = json!({"application_id": long_id, "file_name": "r.pdf", "content_type": "application/pdf", "size_bytes": 100});
    let (status, problem) = h.agency_upload("mvd", MVD_SECRET, "msg_long_id", &body).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{problem}");
    assert_eq!(problem["errors"][0]["field"], "application_id");
    assert!(!problem.to_string().contains(&long_id));
}

#[tokio::test]
async fn downloads_and_share_link_downloads_are_nosniff_attachments() {
    let (h, alice) = Harness::with_user().await;
    let (doc, bytes) = h.stored_pdf(&alice, "other", "vault", "Справка.pdf", "download headers").await;
    let id = doc["document_id"].as_str().unwrap();
    let token = h.share_token(&alice, id, 60).await;
    let followed = h.raw("GET", &format!("/v1/shares/{token}"), None, None).await;
    assert_eq!(followed.status(), StatusCode::FOUND);
    assert_eq!(followed.headers()["x-content-type-options"], "nosniff");
    let location = followed.headers()[header::LOCATION].to_str().unwrap().to_owned();

    for url in [doc["download"]["url"].as_str().unwrap(), location.as_str()] {
        let (status, headers, downloaded) = h.object_request("GET", url, &Value::Null, Vec::new()).await;
        assert_eq!((status, downloaded.len()), (StatusCode::OK, bytes.len()));
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        let disposition = headers[header::CONTENT_DISPOSITION].to_str().unwrap();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert!(disposition.contains(&format!("filename*=UTF-8''document-{id}.pdf")), "{disposition}");
    }
}

/// A PDF whose one stream holds `payload` raw, the way polyglots hide a second format.
fn pdf_with_stream(payload: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n3 0 obj<</Length {}>>stream\n",
        payload.len()
    )
    .into_bytes();
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(b"\nendstream\nendobj\ntrailer<</Root 1 0 R>>\n%%EOF\n");
    bytes
}

/// Expects each `(name, content type, bytes)` upload to end `rejected` as `content_mismatch`.
async fn assert_content_mismatches(h: &Harness, files: Vec<(&str, &str, Vec<u8>)>) {
    let alice = user();
    for (name, content_type, bytes) in files {
        let doc = h.stored(&alice, slot_body("other", "vault", name, content_type, bytes.len()), &bytes).await;
        assert_eq!((doc["status"].as_str(), doc["rejection_reason"].as_str()), (Some("rejected"), Some("content_mismatch")), "{name}: {doc}");
    }
}

#[tokio::test]
async fn pdf_polyglots_carrying_an_archive_or_html_are_content_mismatches() {
    let h = Harness::new().await;
    let archive = zip_bytes(&[("payload.html", b"<script>alert(1)</script>")]);
    let mut zip_after_eof = pdf("looks fine");
    zip_after_eof.extend_from_slice(&archive);
    let mut late_markup = pdf(&" ".repeat(MIB as usize + 1000));
    let at = MIB as usize - 3; // straddles the 1 MiB boundary of the hash reads
    late_markup.splice(at..at + 7, b"<ScRiPt".iter().copied());
    assert_content_mismatches(
        &h,
        vec![
            ("zip-inside.pdf", "application/pdf", pdf_with_stream(&archive)),
            ("zip-after-eof.pdf", "application/pdf", zip_after_eof),
            ("html.pdf", "application/pdf", pdf_with_stream(b"<!DOCTYPE html><html><body>hi</body></html>")),
            ("script.pdf", "application/pdf", pdf_with_stream(b"<SCRIPT>alert(document.cookie)</SCRIPT>")),
            ("body.pdf", "application/pdf", pdf_with_stream(b"<BODY onload=alert(1)>")),
            ("late-markup.pdf", "application/pdf", late_markup),
        ],
    )
    .await;
    // Binary streams that merely contain "PK" or "<" stay fine.
    let alice = user();
    let bytes = pdf_with_stream(b"PK\x03\x04\xFF\xFF\xFF\xFF <b>bold</b> <htm PK\x05\x06\x01\x00");
    let doc = h.stored(&alice, slot_body("other", "vault", "ok.pdf", "application/pdf", bytes.len()), &bytes).await;
    assert_eq!(doc["status"], "available", "{doc}");
}

#[tokio::test]
async fn xml_with_a_doctype_or_entities_is_a_content_mismatch() {
    let h = Harness::new().await;
    let laughs =
        br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>"#;
    let xxe = br#"<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
    let mut late = b"<?xml version=\"1.0\"?>\n<r>".to_vec();
    late.extend_from_slice(&b"<a>1</a>".repeat(20_000));
    late.extend_from_slice(b"<!ENTITY x 'y'></r>");
    let utf7 = b"<?xml version=\"1.0\" encoding=\"UTF-7\"?>+ADw-!DOCTYPE r+AD4-<r/>".to_vec();
    assert_content_mismatches(
        &h,
        vec![
            ("laughs.xml", "application/xml", laughs.to_vec()),
            ("xxe.xml", "text/xml", xxe.to_vec()),
            ("late.xml", "application/xml", late),
            ("utf7.xml", "application/xml", utf7),
        ],
    )
    .await;
}

/// A DOCX whose central directory says `word/document.xml` inflates to `declared` bytes.
fn docx_declaring(declared: u32) -> Vec<u8> {
    let mut bytes = docx_bytes();
    let name = b"word/document.xml";
    let record = bytes.windows(4).enumerate().filter(|(_, w)| *w == b"PK\x01\x02").map(|(at, _)| at).find(|at| bytes[at + 46..].starts_with(name)).unwrap();
    bytes[record + 24..record + 28].copy_from_slice(&declared.to_le_bytes());
    bytes
}

#[tokio::test]
async fn docx_with_entities_or_bomb_sized_parts_is_a_content_mismatch() {
    let h = Harness::new().await;
    let entity_part = |name: &'static str, xml: &'static [u8]| {
        let mut entries: Vec<(&str, &[u8])> = vec![("[Content_Types].xml", DOCX_CONTENT_TYPES), ("word/document.xml", b"<?xml version=\"1.0\"?><w:document/>")];
        match entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = xml,
            None => entries.push((name, xml)),
        }
        zip_bytes(&entries)
    };
    let utf16_doctype: &'static [u8] = Box::leak(
        "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-16\"?><!DOCTYPE w [<!ENTITY a \"b\">]><w/>"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    // 2 MiB of one repeated byte deflate to a few KiB: far beyond 100:1.
    let zeros = vec![b'0'; 2 * MIB as usize];
    let dense = zip_bytes(&[("[Content_Types].xml", DOCX_CONTENT_TYPES), ("word/document.xml", b"<w:document/>"), ("word/media/blank.bmp", &zeros)]);
    assert_content_mismatches(
        &h,
        vec![
            (
                "doctype.docx",
                documents::policy::DOCX_CONTENT_TYPE,
                entity_part("word/document.xml", b"<?xml version=\"1.0\"?><!DOCTYPE w [<!ENTITY x SYSTEM \"http://evil/\">]><w:document>&x;</w:document>"),
            ),
            ("rels.docx", documents::policy::DOCX_CONTENT_TYPE, entity_part("word/_rels/document.xml.rels", b"<!ENTITY x 'y'><Relationships/>")),
            ("utf16.docx", documents::policy::DOCX_CONTENT_TYPE, entity_part("word/styles.xml", utf16_doctype)),
            ("declared-1gib.docx", documents::policy::DOCX_CONTENT_TYPE, docx_declaring(1 << 30)),
            ("dense.docx", documents::policy::DOCX_CONTENT_TYPE, dense),
            // Declared smaller than it inflates: reading stops at the declared size.
            ("understated.docx", documents::policy::DOCX_CONTENT_TYPE, docx_declaring(5)),
        ],
    )
    .await;
}

//! Contract tests for the object store port (`shared::ports::objects`): every check in
//! `contract_tests!` runs once against the file store (its presigned URLs served by
//! `objects::routes` on a real local port) and once against S3, over real HTTP with reqwest.
//!
//! The S3 run needs an emulator: set `AWS_ENDPOINT_URL` (e.g. a moto server) plus dummy
//! credentials and a region. Without it those tests print that they are skipped, unless
//! `REQUIRE_AWS_EMULATOR=1` makes a missing emulator a failure. Each S3 test creates its own
//! uniquely named bucket.
//!
//! Moto gap: moto 5.2 does not verify SigV4 presigned URLs at all (signature, `X-Amz-Expires`,
//! signed `content-type`/`content-length`) and ignores `response-content-disposition`. So the
//! refusal checks (wrong type or length, expiry, tampering, download name) run against the file
//! store over HTTP, and against S3 they check what the URL binds, which real S3 enforces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use shared::adapters::aws::s3::S3ObjectStore;
use shared::adapters::aws::sdk_config;
use shared::adapters::embedded::objects::{FileObjectStore, attachment_disposition, routes};
use shared::ports::objects::{ObjectCreated, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest};

mod common;
use common::contract_tests;

const MINUTE: Duration = Duration::from_secs(60);
const PDF: &[u8] = b"%PDF-1.7 test document\n%%EOF";

contract_tests!(
    checks: {
        (&fixture) [
            presigned_put_then_presigned_get_round_trips_the_bytes, presigned_put_names_the_headers_to_send_and_its_expiry,
            head_reports_size_and_type_and_nothing_for_a_missing_key, read_range_returns_the_requested_slice, delete_removes_the_object_and_may_be_repeated,
            server_side_put_replaces_an_object_and_is_downloadable,
        ]
    },
    embedded: { fixture = super::embedded_store().await },
    s3: { Some(fixture) = super::s3_store().await },
);

/// A store under test, an HTTP client, and whatever must outlive them.
struct Fixture {
    store: Arc<dyn ObjectStore>,
    http: reqwest::Client,
    /// Object-created events from the local routes (the file store only).
    created: Arc<Mutex<Vec<ObjectCreated>>>,
    s3: Option<S3ObjectStore>,
    _dir: Option<tempfile::TempDir>,
}

async fn embedded_store() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
    let secret: [u8; 32] = rand::random();
    let store = Arc::new(FileObjectStore::new(dir.path(), &base_url, secret.to_vec()).expect("file store"));

    let created = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&created);
    let app = routes(Arc::clone(&store), Arc::new(move |event| sink.lock().expect("events lock").push(event)));
    tokio::spawn(async move { axum::serve(listener, app).await });

    Fixture { store, http: reqwest::Client::new(), created, s3: None, _dir: Some(dir) }
}

async fn s3_store() -> Option<Fixture> {
    common::emulator("S3")?;
    let bucket = format!("objects-contract-{}", ulid::Ulid::new().to_string().to_lowercase());
    let store = S3ObjectStore::from_sdk_config(&sdk_config().await, &bucket);
    store.client().create_bucket().bucket(&bucket).send().await.expect("create bucket");
    Some(Fixture { store: Arc::new(store.clone()), http: reqwest::Client::new(), created: Arc::default(), s3: Some(store), _dir: None })
}

// ---------------------------------------------------------------------------------------------
// The shared contract
// ---------------------------------------------------------------------------------------------

async fn presigned_put_then_presigned_get_round_trips_the_bytes(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let key = "documents/01JDOC/v1";
    let upload = store.presign_put(key, "application/pdf", PDF.len() as u64, MINUTE).await.expect("presign put");
    let response = send(&fixture.http, &upload, PDF.to_vec()).await;
    assert!(response.status().is_success(), "upload refused: {}", response.status());

    let meta = store.head(key).await.expect("head").expect("object exists");
    assert_eq!(meta, ObjectMeta { size: PDF.len() as u64, content_type: Some("application/pdf".into()) });

    let download = store.presign_get(key, MINUTE, None).await.expect("presign get");
    assert_eq!(download.method, "GET");
    let response = send(&fixture.http, &download, Vec::new()).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("application/pdf"));
    assert_eq!(response.bytes().await.expect("body").as_ref(), PDF);
}

async fn presigned_put_names_the_headers_to_send_and_its_expiry(fixture: &Fixture) {
    let before = Utc::now();
    let upload = fixture.store.presign_put("slots/abc", "image/png", 1234, MINUTE).await.expect("presign put");
    assert_eq!(upload.method, "PUT");
    assert_eq!(upload.headers.get("content-type").map(String::as_str), Some("image/png"));
    assert_eq!(upload.headers.get("content-length").map(String::as_str), Some("1234"));
    let lifetime = (upload.expires_at - before).num_seconds();
    assert!((58..=61).contains(&lifetime), "URL lives {lifetime}s, asked for 60");
}

async fn head_reports_size_and_type_and_nothing_for_a_missing_key(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    assert_eq!(store.head("missing/key").await.expect("head"), None);
    store.put("results/r1", "application/xml", Bytes::from_static(b"<ok/>")).await.expect("put");
    assert_eq!(store.head("results/r1").await.expect("head"), Some(ObjectMeta { size: 5, content_type: Some("application/xml".into()) }));
}

async fn read_range_returns_the_requested_slice(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store.put("ranges/digits", "text/plain", Bytes::from_static(b"0123456789")).await.expect("put");
    for (offset, len, expected) in [(0, 4, "0123"), (2, 3, "234"), (8, 5, "89"), (0, 100, "0123456789"), (10, 5, ""), (20, 1, ""), (3, 0, "")] {
        let bytes = store.read_range("ranges/digits", offset, len).await.expect("read range");
        assert_eq!(bytes.as_ref(), expected.as_bytes(), "range {offset}+{len}");
    }
    assert!(matches!(store.read_range("ranges/missing", 0, 4).await, Err(ObjectStoreError::NotFound)));
}

async fn delete_removes_the_object_and_may_be_repeated(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store.put("trash/t1", "text/plain", Bytes::from_static(b"bye")).await.expect("put");
    store.delete("trash/t1").await.expect("delete");
    assert_eq!(store.head("trash/t1").await.expect("head"), None);
    assert!(matches!(store.read_range("trash/t1", 0, 3).await, Err(ObjectStoreError::NotFound)));
    store.delete("trash/t1").await.expect("deleting again is fine");
}

async fn server_side_put_replaces_an_object_and_is_downloadable(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store.put("agency/result", "text/plain", Bytes::from_static(b"first version")).await.expect("put");
    store.put("agency/result", "application/pdf", Bytes::from_static(PDF)).await.expect("overwrite");
    assert_eq!(store.head("agency/result").await.expect("head"), Some(ObjectMeta { size: PDF.len() as u64, content_type: Some("application/pdf".into()) }));

    let download = store.presign_get("agency/result", MINUTE, Some("Решение.pdf")).await.expect("presign get");
    let response = send(&fixture.http, &download, Vec::new()).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.bytes().await.expect("body").as_ref(), PDF);
}

// ---------------------------------------------------------------------------------------------
// Enforcement by the local object routes (moto does not enforce these; see the module docs)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn embedded_upload_with_another_content_type_is_refused() {
    let fixture = embedded_store().await;
    let mut upload = fixture.store.presign_put("k/type", "application/pdf", PDF.len() as u64, MINUTE).await.expect("presign");
    upload.headers.insert("content-type".into(), "text/html".into());
    let response = send(&fixture.http, &upload, PDF.to_vec()).await;
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(response.text().await.expect("body").contains("<Code>SignatureDoesNotMatch</Code>"));
    assert_nothing_stored(&fixture, "k/type").await;
}

#[tokio::test]
async fn embedded_upload_of_another_length_is_refused() {
    let fixture = embedded_store().await;
    let upload = fixture.store.presign_put("k/len", "application/pdf", PDF.len() as u64, MINUTE).await.expect("presign");
    for body in [PDF[..PDF.len() - 1].to_vec(), [PDF, b"extra"].concat()] {
        let mut headers = upload.headers.clone();
        headers.remove("content-length");
        let request = PresignedRequest { headers, ..upload.clone() };
        let response = send(&fixture.http, &request, body).await;
        assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    }
    assert_nothing_stored(&fixture, "k/len").await;
}

#[tokio::test]
async fn embedded_expired_url_is_refused() {
    let fixture = embedded_store().await;
    fixture.store.put("k/old", "text/plain", Bytes::from_static(b"old")).await.expect("put");
    let upload = fixture.store.presign_put("k/late", "text/plain", 4, Duration::from_secs(1)).await.expect("presign put");
    let download = fixture.store.presign_get("k/old", Duration::from_secs(1), None).await.expect("presign get");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let response = send(&fixture.http, &upload, b"late".to_vec()).await;
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(response.text().await.expect("body").contains("Request has expired"));
    assert_eq!(send(&fixture.http, &download, Vec::new()).await.status(), reqwest::StatusCode::FORBIDDEN);
    assert_nothing_stored(&fixture, "k/late").await;
}

#[tokio::test]
async fn embedded_tampered_url_is_refused() {
    let fixture = embedded_store().await;
    let upload = fixture.store.presign_put("k/mine", "text/plain", 3, MINUTE).await.expect("presign");
    let tampered = [
        upload.url.replace("k/mine", "k/other"),
        upload.url.replace("len=3", "len=4"),
        upload.url.replace("ct=text%2Fplain", "ct=text%2Fhtml"),
        flip_last_signature_char(&upload.url),
        upload.url.split("&sig=").next().unwrap_or_default().to_owned(),
    ];
    for url in tampered {
        assert_ne!(url, upload.url, "the tampering did not change the URL");
        let request = PresignedRequest { url: url.clone(), ..upload.clone() };
        let response = send(&fixture.http, &request, b"abc".to_vec()).await;
        assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN, "{url}");
    }
    // The untouched URL still works, so the refusals above were about the tampering.
    assert!(send(&fixture.http, &upload, b"abc".to_vec()).await.status().is_success());
}

#[tokio::test]
async fn embedded_upload_url_does_not_download_and_download_url_does_not_upload() {
    let fixture = embedded_store().await;
    fixture.store.put("k/both", "text/plain", Bytes::from_static(b"abc")).await.expect("put");
    let upload = fixture.store.presign_put("k/both", "text/plain", 3, MINUTE).await.expect("presign put");
    let download = fixture.store.presign_get("k/both", MINUTE, None).await.expect("presign get");

    let as_get = PresignedRequest { method: "GET".into(), headers: Default::default(), ..upload };
    assert_eq!(send(&fixture.http, &as_get, Vec::new()).await.status(), reqwest::StatusCode::FORBIDDEN);
    let mut as_put = PresignedRequest { method: "PUT".into(), ..download };
    as_put.headers.insert("content-type".into(), "text/plain".into());
    assert_eq!(send(&fixture.http, &as_put, b"xyz".to_vec()).await.status(), reqwest::StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn embedded_download_carries_the_signed_file_name() {
    let fixture = embedded_store().await;
    fixture.store.put("k/named", "application/pdf", Bytes::from_static(PDF)).await.expect("put");
    let download = fixture.store.presign_get("k/named", MINUTE, Some("Паспорт.pdf")).await.expect("presign");
    let response = send(&fixture.http, &download, Vec::new()).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(header(&response, "content-disposition"), Some(attachment_disposition("Паспорт.pdf")));

    let renamed = PresignedRequest { url: download.url.replace("dl=", "dl=x"), ..download };
    assert_eq!(send(&fixture.http, &renamed, Vec::new()).await.status(), reqwest::StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn embedded_downloads_are_nosniff_attachments_even_without_a_name() {
    let fixture = embedded_store().await;
    fixture.store.put("k/html", "text/html", Bytes::from_static(b"<html><script>alert(1)</script></html>")).await.expect("put");
    for name in [None, Some("Справка\u{202E}lmth.pdf")] {
        let download = fixture.store.presign_get("k/html", MINUTE, name).await.expect("presign");
        let response = send(&fixture.http, &download, Vec::new()).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(header(&response, "x-content-type-options").as_deref(), Some("nosniff"), "{name:?}");
        let disposition = header(&response, "content-disposition").unwrap_or_default();
        assert!(disposition.starts_with("attachment;") && disposition.contains("filename*=UTF-8''"), "{name:?}: {disposition}");
        assert!(!disposition.to_ascii_uppercase().contains("%E2%80%AE"), "a right-to-left override survives in {disposition}");
    }
}

#[test]
fn disposition_replaces_separators_controls_and_reordering_characters() {
    let value = attachment_disposition("..\\a/b\u{202E}c\u{200B}d\r\n.pdf");
    assert_eq!(value, "attachment; filename=\".._a_b_c_d__.pdf\"; filename*=UTF-8''.._a_b_c_d__.pdf");
}

#[tokio::test]
async fn embedded_download_of_a_missing_object_is_not_found() {
    let fixture = embedded_store().await;
    let download = fixture.store.presign_get("k/none", MINUTE, None).await.expect("presign");
    let response = send(&fixture.http, &download, Vec::new()).await;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    assert!(response.text().await.expect("body").contains("<Code>NoSuchKey</Code>"));
}

#[tokio::test]
async fn embedded_upload_fires_object_created_once_with_the_size() {
    let fixture = embedded_store().await;
    let upload = fixture.store.presign_put("k/event", "application/pdf", PDF.len() as u64, MINUTE).await.expect("presign");
    let mut wrong = upload.clone();
    wrong.headers.insert("content-type".into(), "text/plain".into());
    assert_eq!(send(&fixture.http, &wrong, PDF.to_vec()).await.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(send(&fixture.http, &upload, PDF.to_vec()).await.status().is_success());
    fixture.store.put("k/server-side", "text/plain", Bytes::from_static(b"no event")).await.expect("put");

    let events = fixture.created.lock().expect("events lock").clone();
    assert_eq!(events, [ObjectCreated { key: "k/event".into(), size: PDF.len() as u64 }]);
}

#[tokio::test]
async fn embedded_store_refuses_unsafe_keys_and_short_secrets() {
    let fixture = embedded_store().await;
    for key in ["../escape", "/abs", "a/../../b", ".meta/k", "a//b", "имя"] {
        assert!(fixture.store.put(key, "text/plain", Bytes::from_static(b"x")).await.is_err(), "{key:?} accepted");
        assert!(fixture.store.presign_put(key, "text/plain", 1, MINUTE).await.is_err(), "{key:?} presigned");
    }
    assert!(fixture.store.presign_put("k/ct", "text/plain\r\nx-evil: 1", 1, MINUTE).await.is_err());
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(FileObjectStore::new(dir.path(), "http://localhost", b"short".to_vec()).is_err());
}

// ---------------------------------------------------------------------------------------------
// What S3 presigned URLs bind (real S3 enforces it; moto does not)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn s3_presigned_put_signs_type_length_and_encryption_and_expires_as_asked() {
    let Some(fixture) = s3_store().await else { return };
    let upload = fixture.store.presign_put("k/signed", "application/pdf", 42, Duration::from_secs(90)).await.expect("presign");
    let query = query_of(&upload.url);
    let signed: Vec<&str> = query.get("X-Amz-SignedHeaders").map(|v| v.split(';').collect()).unwrap_or_default();
    for header in ["content-type", "content-length", "x-amz-server-side-encryption"] {
        assert!(signed.contains(&header), "{header} is not signed: {signed:?}");
        assert!(upload.headers.contains_key(header), "{header} is not handed to the client");
    }
    assert_eq!(upload.headers.get("x-amz-server-side-encryption").map(String::as_str), Some("AES256"));
    assert_eq!(query.get("X-Amz-Expires").map(String::as_str), Some("90"));
}

#[tokio::test]
async fn s3_presigned_get_signs_the_download_name() {
    let Some(fixture) = s3_store().await else { return };
    let download = fixture.store.presign_get("k/named", MINUTE, Some("Паспорт.pdf")).await.expect("presign");
    let query = query_of(&download.url);
    assert_eq!(query.get("response-content-disposition"), Some(&attachment_disposition("Паспорт.pdf")));
    assert!(query.contains_key("X-Amz-Signature"));
}

#[tokio::test]
async fn s3_presigned_get_is_always_an_attachment() {
    let Some(fixture) = s3_store().await else { return };
    let download = fixture.store.presign_get("k/folder/report.pdf", MINUTE, None).await.expect("presign");
    let query = query_of(&download.url);
    assert_eq!(query.get("response-content-disposition"), Some(&attachment_disposition("report.pdf")));
}

#[tokio::test]
async fn s3_objects_are_encrypted_at_rest_whichever_way_they_arrive() {
    let Some(fixture) = s3_store().await else { return };
    let Some(s3) = &fixture.s3 else { return };
    fixture.store.put("k/server", "text/plain", Bytes::from_static(b"abc")).await.expect("put");
    let upload = fixture.store.presign_put("k/client", "text/plain", 3, MINUTE).await.expect("presign");
    assert!(send(&fixture.http, &upload, b"abc".to_vec()).await.status().is_success());

    for key in ["k/server", "k/client"] {
        let head = s3.client().head_object().bucket(s3.bucket()).key(key).send().await.expect("head");
        assert_eq!(head.server_side_encryption, Some(aws_sdk_s3::types::ServerSideEncryption::Aes256), "{key}");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Performs a presigned request the way a client would: its method, URL and headers verbatim.
async fn send(http: &reqwest::Client, request: &PresignedRequest, body: Vec<u8>) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("method");
    let mut builder = http.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if !body.is_empty() {
        builder = builder.body(body);
    }
    builder.send().await.expect("HTTP request")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

async fn assert_nothing_stored(fixture: &Fixture, key: &str) {
    assert_eq!(fixture.store.head(key).await.expect("head"), None, "{key} was stored");
    assert!(fixture.created.lock().expect("events lock").is_empty(), "object-created fired for a refused upload");
}

fn query_of(url: &str) -> HashMap<String, String> {
    let parsed = url::Url::parse(url).expect("URL");
    parsed.query_pairs().map(|(name, value)| (name.into_owned(), value.into_owned())).collect()
}

fn flip_last_signature_char(url: &str) -> String {
    let mut tampered = url.to_owned();
    let last = tampered.pop().unwrap_or('A');
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    tampered
}

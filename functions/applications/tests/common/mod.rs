//! Test harness: the applications router in-process over real adapters (a redb file in a temp
//! dir, or a fresh DynamoDB table on the emulator named by `AWS_ENDPOINT_URL`), citizens
//! written straight into the store, tokens signed with a generated key ring, and webhooks
//! signed with the dev seed's agency secrets.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use applications::ApplicationsState;
use shared::adapters::embedded::{RedbKv, open_database, queue::RedbQueue};
use shared::agencies::Registry;
use shared::events::Event;
use shared::http::{AccessClaims, TokenVerifier};
use shared::keys::KeyRing;
use shared::outbox::Relay;
use shared::ports::{Condition, Item, KeyValue, Queue};

pub const ISSUER: &str = "http://127.0.0.1:3000";
pub const AUDIENCE: &str = "gosuslugi-api";

pub struct Harness {
    pub app: axum::Router,
    pub kv: Arc<dyn KeyValue>,
    pub queue: Arc<dyn Queue>,
    pub state: Arc<ApplicationsState>,
    keys: Arc<KeyRing>,
    secrets: HashMap<String, String>,
    _dirs: Vec<tempfile::TempDir>,
}

pub struct Citizen {
    pub user_id: String,
    pub token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {self:?}");
        self
    }

    pub fn problem(self, status: u16, code: &str) -> Self {
        assert_eq!((self.status.as_u16(), self.code()), (status, code), "unexpected answer: {self:?}");
        self
    }
}

/// A fresh embedded database in its own temp dir.
pub fn embedded_kv() -> (Arc<dyn KeyValue>, Arc<redb::Database>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_database(&dir.path().join("state.redb")).expect("open redb");
    let kv: Arc<dyn KeyValue> = Arc::new(RedbKv::new(db.clone()).expect("kv"));
    (kv, db, dir)
}

/// A fresh DynamoDB table on the emulator, or `None` (with a note) when none is configured.
pub async fn dynamodb_kv() -> Option<Arc<dyn KeyValue>> {
    if std::env::var("AWS_ENDPOINT_URL").map_or(true, |url| url.is_empty()) {
        assert!(std::env::var("REQUIRE_AWS_EMULATOR").as_deref() != Ok("1"), "REQUIRE_AWS_EMULATOR=1 but AWS_ENDPOINT_URL is not set");
        eprintln!("skipping DynamoDB variant: AWS_ENDPOINT_URL is not set");
        return None;
    }
    let sdk = shared::adapters::aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = format!("applications-{}", ulid::Ulid::new().to_string().to_lowercase());
    let kv = shared::adapters::aws::DynamoKv::create_table_for_tests(client, &table).await.expect("create DynamoDB table");
    Some(Arc::new(OneRequestAtATime { inner: kv, gate: tokio::sync::Mutex::new(()) }))
}

/// Sends one request at a time to the emulator. moto's threaded server does not isolate
/// `TransactWriteItems` (it checks conditions and writes without a lock, and rolls a failed
/// transaction back by restoring a snapshot of the whole table, erasing writes committed
/// meanwhile), whereas DynamoDB serializes transactions. Serializing requests here restores
/// that guarantee; the read-decide-commit cycles of concurrent callers still interleave freely.
struct OneRequestAtATime<K> {
    inner: K,
    gate: tokio::sync::Mutex<()>,
}

#[async_trait::async_trait]
impl<K: KeyValue> KeyValue for OneRequestAtATime<K> {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, shared::ports::KvError> {
        let _turn = self.gate.lock().await;
        self.inner.get(pk, sk).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<u64, shared::ports::KvError> {
        let _turn = self.gate.lock().await;
        self.inner.put(item, condition).await
    }
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), shared::ports::KvError> {
        let _turn = self.gate.lock().await;
        self.inner.delete(pk, sk, condition).await
    }
    async fn transact(&self, ops: Vec<shared::ports::TxOp>) -> Result<(), shared::ports::KvError> {
        let _turn = self.gate.lock().await;
        self.inner.transact(ops).await
    }
    async fn query(&self, query: shared::ports::Query) -> Result<shared::ports::Page, shared::ports::KvError> {
        let _turn = self.gate.lock().await;
        self.inner.query(query).await
    }
}

impl Harness {
    pub async fn embedded() -> Self {
        let (kv, db, dir) = embedded_kv();
        let queue: Arc<dyn Queue> = Arc::new(RedbQueue::open(db, "events", 5).await.expect("queue"));
        Self::build(kv, queue.clone(), queue, vec![dir])
    }

    /// This harness with `budget` in place of the default write budget (load and race tests
    /// drive one citizen far harder than a person would).
    pub fn with_write_budget(mut self, budget: shared::http::WriteBudget) -> Self {
        let state = Arc::new(
            ApplicationsState::new(
                self.kv.clone(),
                self.state.relay.clone(),
                self.state.verifier.clone(),
                self.state.catalogue.clone(),
                self.state.agencies.clone(),
                self.state.index_key.clone(),
            )
            .with_write_budget(budget),
        );
        self.app = shared::http::finish(applications::router(state.clone()));
        self.state = state;
        self
    }

    pub async fn dynamodb() -> Option<Self> {
        let kv = dynamodb_kv().await?;
        // The queue is not under test here; a local one keeps events observable.
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open_database(&dir.path().join("queue.redb")).expect("open redb");
        let queue: Arc<dyn Queue> = Arc::new(RedbQueue::open(db, "events", 5).await.expect("queue"));
        Some(Self::build(kv, queue.clone(), queue, vec![dir]))
    }

    /// A harness whose relay publishes to `relay_queue` (e.g. one that fails) while tests read
    /// `queue`.
    pub fn build(kv: Arc<dyn KeyValue>, relay_queue: Arc<dyn Queue>, queue: Arc<dyn Queue>, dirs: Vec<tempfile::TempDir>) -> Self {
        let keys = Arc::new(KeyRing::from_json(&KeyRing::generate_json().expect("keys")).expect("ring"));
        let verifier = Arc::new(TokenVerifier::new(ISSUER, AUDIENCE, &keys));
        let agencies = Arc::new(Registry::dev_seed().expect("agency seed"));
        let catalogue = Arc::new(applications::Catalogue::seed(&agencies).expect("catalogue seed"));
        let relay = Relay::new(kv.clone(), relay_queue);
        let state = Arc::new(ApplicationsState::new(
            kv.clone(),
            relay,
            verifier,
            catalogue,
            agencies,
            Arc::new(shared::keys::IndexKey::from_base64(&shared::keys::IndexKey::generate_base64()).unwrap()),
        ));
        Self { app: shared::http::finish(applications::router(state.clone())), kv, queue, state, keys, secrets: seed_secrets(), _dirs: dirs }
    }

    pub fn token(&self, user_id: &str, level_claim: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: ISSUER.into(),
            sub: user_id.into(),
            aud: AUDIENCE.into(),
            exp: now + 900,
            iat: now,
            jti: ulid::Ulid::new().to_string(),
            sid: ulid::Ulid::new().to_string(),
            lvl: level_claim.into(),
            amr: vec!["pwd".into()],
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.keys.current().kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.keys.current().encoding).expect("sign token")
    }

    /// An agency's `client_credentials` access token (scope `agency`), as `POST /oauth2/token` issues.
    pub fn agency_token(&self, agency: &str) -> String {
        shared::http::auth::issue_client_token(&self.keys, ISSUER, AUDIENCE, agency, "agency", ulid::Ulid::new().to_string(), chrono::Utc::now())
            .expect("client token")
    }

    /// Every delivery staged for `agency`, oldest first, with its parsed body.
    pub async fn deliveries(&self, agency: &str) -> Vec<(shared::deliveries::Delivery, Value)> {
        let page = self.kv.query(shared::ports::Query::partition(shared::deliveries::delivery_pk(agency)).limit(1000)).await.expect("query deliveries");
        let mut found: Vec<(shared::deliveries::Delivery, Value)> = page
            .items
            .iter()
            .map(|item| {
                let delivery: shared::deliveries::Delivery = item.parse().expect("a delivery");
                let body = serde_json::from_str(&delivery.body).expect("body json");
                (delivery, body)
            })
            .collect();
        found.sort_by_key(|(d, _)| d.delivery_id.clone());
        found
    }

    /// How many entries `agency`'s due lane holds.
    pub async fn due_count(&self, agency: &str) -> usize {
        let page = self.kv.query(shared::ports::Query::partition(shared::deliveries::due_pk(agency)).limit(1000)).await.expect("query due lane");
        page.items.len()
    }

    /// A citizen account at `level` (no profile), with a token that claims the same level.
    pub async fn citizen(&self, level: &str) -> Citizen {
        self.citizen_with(level, None).await
    }

    /// A citizen whose profile (SNILS + passport) waits for the registry's verdict.
    pub async fn citizen_with_profile(&self, level: &str) -> Citizen {
        let profile = json!({
            "last_name": "Петрова", "first_name": "Анна", "middle_name": "Сергеевна",
            "birth_date": "1988-05-17", "gender": "female", "snils": "112-233-445 95",
            "passport": {"series": "4506", "number": "123456", "issued_at": "2015-03-20", "issued_by": "ОВД Тверского района г. Москвы", "division_code": "772-001"},
            "verification": {"request_id": ulid::Ulid::new().to_string(), "status": "pending"}, "updated_at": chrono::Utc::now(),
        });
        self.citizen_with(level, Some(profile)).await
    }

    async fn citizen_with(&self, level: &str, profile: Option<Value>) -> Citizen {
        let user_id = ulid::Ulid::new().to_string();
        let account = json!({
            "user_id": user_id, "phone": null, "email": format!("{}@example.ru", user_id.to_lowercase()),
            "phone_confirmed": false, "email_confirmed": true, "level": level,
            "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "previous_password_hashes": [], "failed_attempts": 0, "locked": false,
            "mfa": {"sms": false}, "profile": profile, "created_at": chrono::Utc::now(),
        });
        let item = Item::json(shared::identity::user_pk(&user_id), shared::identity::ACCOUNT_SK, &account).expect("account item");
        self.kv.put(item, Condition::NotExists).await.expect("store account");
        assert!(shared::identity::load(self.kv.as_ref(), &user_id).await.expect("load").is_some(), "the account parses as shared::identity::Account");
        Citizen { token: self.token(&user_id, level), user_id }
    }

    /// The id of the citizen's latest verification request (what a registry verdict must name).
    pub async fn verification_request(&self, user_id: &str) -> String {
        let (account, _) = shared::identity::load(self.kv.as_ref(), user_id).await.expect("load").expect("account");
        account.profile.expect("a profile").verification.request_id
    }

    pub async fn level_of(&self, user_id: &str) -> String {
        let (account, _) = shared::identity::load(self.kv.as_ref(), user_id).await.expect("load").expect("account");
        account.level.as_str().to_owned()
    }

    /// Sets the account level directly (as an earlier registry verdict would have).
    pub async fn set_level(&self, user_id: &str, level: shared::identity::Level) {
        let (mut account, version) = shared::identity::load(self.kv.as_ref(), user_id).await.expect("load").expect("account");
        account.level = level;
        let item = Item::json(shared::identity::user_pk(user_id), shared::identity::ACCOUNT_SK, &account).expect("item");
        self.kv.put(item, Condition::VersionIs(version)).await.expect("store");
    }

    /// A document record as the documents function would keep it.
    pub async fn document(&self, owner: &str, doc_type: &str, status: &str) -> String {
        let id = ulid::Ulid::new().to_string();
        let (pk, sk) = shared::records::document_key(owner, &id);
        let record = json!({
            "document_id": id, "owner_user_id": owner, "type": doc_type, "status": status, "file_name": "scan.pdf",
            "content_type": "application/pdf", "size_bytes": 2048, "sha256": "5f".repeat(32),
        });
        self.kv.put(Item::json(pk, sk, &record).expect("item"), Condition::NotExists).await.expect("store document");
        id
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())).expect("request"),
            None => req.body(Body::empty()).expect("request"),
        };
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(req).await.expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.expect("body");
        Reply { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    pub async fn get(&self, path: &str, who: &Citizen) -> Reply {
        self.call("GET", path, None, Some(&who.token), &[]).await
    }

    pub async fn post(&self, path: &str, body: Value, who: &Citizen) -> Reply {
        self.call("POST", path, Some(body), Some(&who.token), &[]).await
    }

    /// Signs `body` as `agency` with its seed secret, now.
    pub fn signature(&self, agency: &str, webhook_id: &str, timestamp: i64, body: &str) -> String {
        let secret = self.secrets.get(agency).unwrap_or_else(|| panic!("no seed secret for {agency}"));
        standardwebhooks::Webhook::new(secret).expect("secret").sign(webhook_id, timestamp, body.as_bytes()).expect("sign")
    }

    pub async fn webhook(&self, agency: &str, webhook_id: &str, body: &Value) -> Reply {
        let text = body.to_string();
        let now = chrono::Utc::now().timestamp();
        let signature = self.signature(agency, webhook_id, now, &text);
        self.webhook_raw(agency, webhook_id, now, &signature, &text).await
    }

    pub async fn webhook_raw(&self, agency: &str, webhook_id: &str, timestamp: i64, signature: &str, body: &str) -> Reply {
        let req = Request::builder()
            .method("POST")
            .uri(format!("/v1/webhooks/agencies/{agency}"))
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Body::from(body.to_owned()))
            .expect("request");
        self.send(req).await
    }

    /// `application.status_changed` for `application_id` from `agency`, with a fresh webhook id.
    pub async fn agency_sets(&self, agency: &str, application_id: &str, status: &str, extra: Value) -> Reply {
        let mut data = json!({"application_id": application_id, "status": status});
        if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
            data.extend(extra.clone());
        }
        self.webhook(agency, &format!("msg_{}", ulid::Ulid::new()), &json!({"type": "application.status_changed", "data": data})).await
    }

    /// A submitted application of `service` with its example form and no documents.
    pub async fn submitted(&self, who: &Citizen, service: &str) -> Value {
        let created = self.create(who, service).await;
        let id = created["application_id"].as_str().expect("id").to_owned();
        self.call("POST", &format!("/v1/applications/{id}/submit"), None, Some(&who.token), &[]).await.expect(200).body
    }

    pub async fn create(&self, who: &Citizen, service: &str) -> Value {
        let form = self.state.catalogue.get(service).expect("service").form_example.clone();
        self.post("/v1/applications", json!({"service_code": service, "form": form}), who).await.expect(201).body
    }

    pub async fn application(&self, who: &Citizen, id: &str) -> Value {
        self.get(&format!("/v1/applications/{id}"), who).await.expect(200).body
    }

    /// A fresh embedded harness and a `simplified` citizen.
    pub async fn with_citizen() -> (Self, Citizen) {
        let h = Self::embedded().await;
        let anna = h.citizen("simplified").await;
        (h, anna)
    }

    /// A fresh embedded harness, a `simplified` citizen, their `mfc-appointment` draft and its id.
    pub async fn with_draft() -> (Self, Citizen, Value, String) {
        let (h, anna) = Self::with_citizen().await;
        let draft = h.create(&anna, "mfc-appointment").await;
        let id = id_of(&draft);
        (h, anna, draft, id)
    }

    /// A fresh embedded harness, a `simplified` citizen and the id of their submitted
    /// `mfc-appointment` application.
    pub async fn with_submitted_application() -> (Self, Citizen, String) {
        let (h, anna) = Self::with_citizen().await;
        let id = id_of(&h.submitted(&anna, "mfc-appointment").await);
        (h, anna, id)
    }

    /// Drains the events queue, keeping what `pick` takes from each payload.
    pub async fn events_where<T>(&self, pick: impl FnMut(shared::events::EventPayload) -> Option<T>) -> Vec<T> {
        self.events().await.into_iter().map(|e| e.payload).filter_map(pick).collect()
    }

    /// Drains the events queue.
    pub async fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let batch = self.queue.receive(10, Duration::from_secs(30), Duration::ZERO).await.expect("receive");
            if batch.is_empty() {
                return out;
            }
            for message in batch {
                out.push(serde_json::from_str(&message.body).expect("event json"));
                self.queue.ack(&message.receipt).await.expect("ack");
            }
        }
    }
}

pub fn id_of(app: &Value) -> String {
    app["application_id"].as_str().expect("application_id").to_owned()
}

fn seed_secrets() -> HashMap<String, String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/local/seed/agencies.json");
    let seed: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read agency seed")).expect("seed json");
    seed["agencies"]
        .as_array()
        .expect("agencies")
        .iter()
        .map(|a| (a["id"].as_str().expect("id").to_owned(), a["webhook_secret"].as_str().expect("secret").to_owned()))
        .collect()
}

//! Test harness: deliveries staged into a real store (a redb file, or a fresh DynamoDB table on
//! the emulator named by `AWS_ENDPOINT_URL`), a deliverer pointed at an in-process receiver
//! listening on a real socket that verifies every request with the `standardwebhooks` crate,
//! and scripts of answers per agency.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use deliveries::{Deliverer, Settings};
use shared::adapters::embedded::{RedbKv, open_database};
use shared::agencies::Registry;
use shared::deliveries::Delivery;
use shared::ports::{Condition, Item, KeyValue, Ticker};
use shared::settings::Env;
use shared::vocabulary::DeliveryType;

/// Delivery secrets of the test agencies (distinct per agency).
pub fn secret_of(agency: &str) -> String {
    use base64::Engine as _;
    let mut key = [7u8; 32];
    for (i, b) in agency.bytes().enumerate() {
        key[i % 32] ^= b;
    }
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))
}

const INBOUND_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver answers next for an agency (after the script, 200).
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    StatusRetryAfter(u16, &'static str),
    /// Never answers (the deliverer's timeout ends the attempt).
    Hang,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub agency: String,
    pub webhook_id: String,
    pub verified: bool,
    pub body: serde_json::Value,
    pub answered: u16,
    pub at: chrono::DateTime<Utc>,
}

#[derive(Default)]
pub struct ReceiverState {
    pub script: Mutex<HashMap<String, VecDeque<Answer>>>,
    pub received: Mutex<Vec<Received>>,
    /// Requests that arrived and hang (never answered).
    pub hanging: Mutex<Vec<(String, String)>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new().route("/hooks/{agency}", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        Self { addr, state }
    }

    pub fn url(&self, agency: &str) -> String {
        format!("http://{}/hooks/{agency}?token=secret-in-query", self.addr)
    }

    pub fn script(&self, agency: &str, answers: Vec<Answer>) {
        self.state.script.lock().unwrap().insert(agency.to_owned(), answers.into());
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn received_by(&self, agency: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.agency == agency).collect()
    }

    pub fn hanging(&self) -> Vec<(String, String)> {
        self.state.hanging.lock().unwrap().clone()
    }
}

async fn receive(State(state): State<Arc<ReceiverState>>, Path(agency): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let verified = standardwebhooks::Webhook::new(&secret_of(&agency)).expect("secret").verify(&body, &headers).is_ok()
        && headers.get("content-type").is_some_and(|v| v == "application/json");
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let answer = state.script.lock().unwrap().get_mut(&agency).and_then(VecDeque::pop_front).unwrap_or(Answer::Status(200));
    let (status, retry_after) = match answer {
        Answer::Status(s) => (s, None),
        Answer::StatusRetryAfter(s, r) => (s, Some(r)),
        Answer::Hang => {
            state.hanging.lock().unwrap().push((agency, webhook_id));
            std::future::pending::<()>().await;
            unreachable!()
        }
    };
    state.received.lock().unwrap().push(Received {
        agency,
        webhook_id,
        verified,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        answered: status,
        at: Utc::now(),
    });
    let mut response = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(r) = retry_after {
        response.headers_mut().insert("retry-after", HeaderValue::from_static(r));
    }
    response
}

/// A registry of `agencies`, each delivering to the receiver with its own secret.
pub fn registry(receiver: &Receiver, agencies: &[&str]) -> Arc<Registry> {
    let list: Vec<serde_json::Value> = agencies
        .iter()
        .map(|id| {
            serde_json::json!({"id": id, "name": format!("Ведомство {id}"), "webhook_secret": INBOUND_SECRET, "capabilities": ["applications"],
            "delivery_url": receiver.url(id), "delivery_secrets": [secret_of(id)]})
        })
        .collect();
    Arc::new(Registry::from_json(&serde_json::json!({"agencies": list}).to_string()).expect("registry"))
}

/// Settings for tests: a short schedule and timeouts, as `pairs` say.
pub fn settings(pairs: &[(&str, &str)]) -> Settings {
    let mut all =
        vec![("DELIVERY_RETRY_SCHEDULE", "50ms,50ms,50ms"), ("DELIVERY_TIMEOUT", "2s"), ("DELIVERY_LEASE", "3s"), ("DELIVERY_SWEEP_INTERVAL", "20ms")];
    for (k, v) in pairs {
        all.retain(|(name, _)| name != k);
        all.push((k, v));
    }
    Settings::from(&Env::from_pairs(&all)).expect("settings")
}

pub fn deliverer(kv: &Arc<dyn KeyValue>, agencies: &Arc<Registry>, settings: Settings) -> Deliverer {
    Deliverer::new(kv.clone(), agencies.clone(), settings, Ticker::default()).expect("deliverer")
}

/// Stages one delivery of `data` to `agency` now, as a producer would (in its own transaction).
pub async fn stage(kv: &dyn KeyValue, agency: &str, data: serde_json::Value) -> String {
    let id = ulid::Ulid::new().to_string();
    let ops = shared::deliveries::stage(agency, &id, DeliveryType::ApplicationSubmitted, Utc::now(), &data).expect("stage ops");
    kv.transact(ops).await.expect("stage");
    id
}

pub async fn load(kv: &dyn KeyValue, agency: &str, id: &str) -> Delivery {
    shared::deliveries::load(kv, agency, id).await.expect("load").expect("delivery exists").value
}

/// Sweeps until `done` holds (at most `limit`), pausing `pause` between passes.
pub async fn sweep_until(deliverer: &Deliverer, limit: Duration, mut done: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(tokio::time::Instant::now() < until, "not done within {limit:?}");
        deliverer.sweep().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh embedded database in its own temp dir.
pub fn embedded_kv() -> (Arc<dyn KeyValue>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_database(&dir.path().join("state.redb")).expect("open redb");
    (Arc::new(RedbKv::new(db).expect("kv")), dir)
}

/// The stores to run a test on: the embedded one, and DynamoDB on the emulator when
/// `AWS_ENDPOINT_URL` names one (required when `REQUIRE_AWS_EMULATOR=1`).
pub async fn stores() -> Vec<(&'static str, Arc<dyn KeyValue>, Option<tempfile::TempDir>)> {
    let (kv, dir) = embedded_kv();
    let mut out = vec![("embedded", kv, Some(dir))];
    if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|url| !url.is_empty()) {
        let client = aws_sdk_dynamodb::Client::new(&shared::adapters::aws::sdk_config().await);
        let table = format!("deliveries-{}", ulid::Ulid::new().to_string().to_lowercase());
        let kv = shared::adapters::aws::DynamoKv::create_table_for_tests(client, &table).await.expect("create DynamoDB table");
        out.push(("dynamodb", Arc::new(OneRequestAtATime { inner: kv, gate: tokio::sync::Mutex::new(()) }), None));
    } else {
        assert!(std::env::var("REQUIRE_AWS_EMULATOR").as_deref() != Ok("1"), "REQUIRE_AWS_EMULATOR=1 but AWS_ENDPOINT_URL is not set");
        eprintln!("skipping DynamoDB variant: AWS_ENDPOINT_URL is not set");
    }
    out
}

/// Sends one request at a time to the emulator: moto's threaded server does not isolate
/// `TransactWriteItems` as DynamoDB does (see functions/applications/tests/common).
struct OneRequestAtATime<K> {
    inner: K,
    gate: tokio::sync::Mutex<()>,
}

impl<K> OneRequestAtATime<K> {
    /// Runs `request` (a future, so not started yet) once it is this caller's turn.
    async fn in_turn<T>(&self, request: impl std::future::Future<Output = T>) -> T {
        let _turn = self.gate.lock().await;
        request.await
    }
}

#[async_trait::async_trait]
impl<K: KeyValue> KeyValue for OneRequestAtATime<K> {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, shared::ports::KvError> {
        self.in_turn(self.inner.get(pk, sk)).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<u64, shared::ports::KvError> {
        self.in_turn(self.inner.put(item, condition)).await
    }
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), shared::ports::KvError> {
        self.in_turn(self.inner.delete(pk, sk, condition)).await
    }
    async fn transact(&self, ops: Vec<shared::ports::TxOp>) -> Result<(), shared::ports::KvError> {
        self.in_turn(self.inner.transact(ops)).await
    }
    async fn query(&self, query: shared::ports::Query) -> Result<shared::ports::Page, shared::ports::KvError> {
        self.in_turn(self.inner.query(query)).await
    }
}

//! The auth router in-process over the embedded adapters (a real redb file in a temp dir),
//! driven through `tower::ServiceExt::oneshot`; shared by the auth test binaries.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use shared::adapters::embedded::{RedbKv, open_database, queue::RedbQueue};
use shared::events::{Event, EventPayload};
use shared::keys::KeyRing;
use shared::outbox::Relay;
use shared::ports::{KeyValue, Queue};

pub struct Harness {
    pub app: axum::Router,
    pub queue: Arc<dyn Queue>,
    pub kv: Arc<dyn KeyValue>,
    pub state: Arc<auth::AuthState>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Self {
        Self::build(|kv| kv, auth::Settings::default()).await
    }

    /// A harness whose store is `wrap` of the embedded one (e.g. a counting adapter).
    pub async fn wrapping(wrap: impl FnOnce(Arc<dyn KeyValue>) -> Arc<dyn KeyValue>) -> Self {
        Self::build(wrap, auth::Settings::default()).await
    }

    /// A harness whose store logs the shape of every call (see `CountingKv`).
    pub async fn counting() -> (Self, Arc<CountingKv>) {
        let mut counter = None;
        let harness = Self::wrapping(|kv| {
            let counting = CountingKv::new(kv);
            counter = Some(counting.clone());
            counting
        })
        .await;
        (harness, counter.expect("the wrapper ran"))
    }

    pub async fn with_settings(settings: auth::Settings) -> Self {
        Self::build(|kv| kv, settings).await
    }

    async fn build(wrap: impl FnOnce(Arc<dyn KeyValue>) -> Arc<dyn KeyValue>, settings: auth::Settings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(&dir.path().join("state.redb")).unwrap();
        let kv: Arc<dyn KeyValue> = wrap(Arc::new(RedbKv::new(db.clone()).unwrap()));
        let queue: Arc<dyn Queue> = Arc::new(RedbQueue::open(db, "events", 5).await.unwrap());
        let keys = Arc::new(KeyRing::from_json(&KeyRing::generate_json().unwrap()).unwrap());
        let index_key = Arc::new(shared::keys::IndexKey::from_base64(&shared::keys::IndexKey::generate_base64()).unwrap());
        let state = Arc::new(auth::AuthState::new(kv.clone(), Relay::new(kv.clone(), queue.clone()), keys, index_key, settings));
        Self { app: shared::http::finish(auth::router(state.clone())), queue, kv, state, _dir: dir }
    }

    /// Sets the account level directly, as a registry agency's verdict would.
    pub async fn promote(&self, user_id: &str, level: shared::identity::Level) {
        let (mut account, version) = shared::identity::load(self.kv.as_ref(), user_id).await.unwrap().unwrap();
        account.level = level;
        let item = shared::ports::Item::json(shared::identity::user_pk(user_id), shared::identity::ACCOUNT_SK, &account).unwrap();
        self.kv.put(item, shared::ports::Condition::VersionIs(version)).await.unwrap();
    }

    pub async fn user_id_of(&self, email: &str) -> String {
        let index = self.kv.get(&shared::identity::login_pk(&self.state.index_key, email), shared::identity::LOGIN_SK).await.unwrap().unwrap();
        index.parse::<shared::identity::LoginIndex>().unwrap().user_id
    }

    pub fn verifier(&self) -> Arc<shared::http::TokenVerifier> {
        self.state.verifier.clone()
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path).header("user-agent", "Mozilla/5.0 (Windows NT 10.0)");
        if let Some(token) = bearer {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())).unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Drains the queue and returns the events published so far.
    pub async fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let batch = self.queue.receive(10, std::time::Duration::from_secs(30), std::time::Duration::ZERO).await.unwrap();
            if batch.is_empty() {
                return out;
            }
            for m in batch {
                out.push(serde_json::from_str(&m.body).unwrap());
                self.queue.ack(&m.receipt).await.unwrap();
            }
        }
    }

    pub async fn last_code(&self) -> String {
        let events = self.events().await;
        events
            .iter()
            .rev()
            .find_map(|e| match &e.payload {
                EventPayload::OtpIssued { code, .. } => Some(code.clone()),
                _ => None,
            })
            .expect("a code was issued")
    }

    /// Starts registering an email account: the flow, its code and a code that is not it.
    pub async fn registration_started(&self, email: &str) -> (Value, String, &'static str) {
        let (status, body) = self
            .call("POST", "/v1/auth/register", Some(json!({"email": email, "password": PASSWORD, "consents": {"terms": true, "personal_data": true}})), None)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let code = self.last_code().await;
        let wrong = if code == "111111" { "222222" } else { "111111" };
        (body, code, wrong)
    }

    /// Registers an email account (no SMS factor) and returns its tokens.
    pub async fn registered(&self, email: &str) -> Value {
        let (body, code, _) = self.registration_started(email).await;
        let (status, body) = self.call("POST", "/v1/auth/register/confirm", Some(json!({"flow_id": body["flow_id"], "code": code})), None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["tokens"].clone()
    }
}

pub const PASSWORD: &str = "Zt7#kQw!pL2m";

/// A key-value adapter that logs the shape of every call (operation and item count, never
/// keys or values), to compare the store work of two paths.
pub struct CountingKv {
    inner: Arc<dyn KeyValue>,
    log: std::sync::Mutex<Vec<String>>,
}

impl CountingKv {
    pub fn new(inner: Arc<dyn KeyValue>) -> Arc<Self> {
        Arc::new(Self { inner, log: std::sync::Mutex::new(Vec::new()) })
    }

    /// The calls since the last `take`.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn note(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }
}

#[async_trait::async_trait]
impl KeyValue for CountingKv {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<shared::ports::Item>, shared::ports::KvError> {
        self.note("get".into());
        self.inner.get(pk, sk).await
    }
    async fn put(&self, item: shared::ports::Item, condition: shared::ports::Condition) -> Result<u64, shared::ports::KvError> {
        self.note("put".into());
        self.inner.put(item, condition).await
    }
    async fn delete(&self, pk: &str, sk: &str, condition: shared::ports::Condition) -> Result<(), shared::ports::KvError> {
        self.note("delete".into());
        self.inner.delete(pk, sk, condition).await
    }
    async fn transact(&self, ops: Vec<shared::ports::TxOp>) -> Result<(), shared::ports::KvError> {
        self.note(format!("transact({})", ops.len()));
        self.inner.transact(ops).await
    }
    async fn query(&self, query: shared::ports::Query) -> Result<shared::ports::Page, shared::ports::KvError> {
        self.note("query".into());
        self.inner.query(query).await
    }
}

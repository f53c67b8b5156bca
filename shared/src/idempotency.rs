//! Stored answers keyed by a client's key: the same request again gets the first answer again
//! and changes nothing twice. Webhook deliveries use it keyed by `webhook-id` (SPEC §4.4);
//! `Idempotency-Key` requests (SPEC §9, §12) use it keyed by the caller and the header, with a
//! fingerprint of the request so the same key on another body is refused.
//!
//! Two ways in:
//! - `apply_once`: decide, then commit the change, its events and the answer in one
//!   transaction (the answer's `NotExists` condition makes concurrent copies apply once).
//!   Nothing is visible until the commit, so there is no "in progress" state.
//! - `begin` / `finish_op`: for requests that call out before they can answer (a payment
//!   provider), a lease is written first; copies arriving meanwhile see `InProgress`.

use std::future::Future;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::Event;
use crate::http::ApiError;
use crate::outbox::Relay;
use crate::persist::{self, Attempt, Versioned};
use crate::ports::{Condition, KeyValue, KvError, TxOp};

/// Largest answer body kept for replay.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The answer given to a request, replayed verbatim to its copies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl StoredAnswer {
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Self { status: status.as_u16(), content_type: "application/json".into(), body: value.to_string() }
    }

    /// Captures a response (e.g. a problem) so it can be stored and replayed.
    pub async fn capture(response: Response) -> Result<Self, ApiError> {
        let status = response.status().as_u16();
        let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await.map_err(ApiError::internal)?;
        let body = String::from_utf8(bytes.to_vec()).map_err(ApiError::internal)?;
        Ok(Self { status, content_type, body })
    }
}

impl IntoResponse for StoredAnswer {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body).into_response();
        if let Ok(content_type) = HeaderValue::from_str(&self.content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, content_type);
        }
        response
    }
}

/// Where one key's record lives, and for how long it is remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pk: String,
    sk: &'static str,
    ttl_seconds: i64,
}

impl Key {
    /// A delivery from an agency: `WEBHOOK#<agency>#<webhook-id>`, remembered 7 days (SPEC §4.4).
    pub fn webhook(agency_id: &str, webhook_id: &str) -> Self {
        Self { pk: format!("WEBHOOK#{agency_id}#{webhook_id}"), sk: "WEBHOOK", ttl_seconds: 7 * 24 * 3600 }
    }

    /// A citizen's `Idempotency-Key` for one operation, remembered 24 hours. The key is hashed:
    /// it is the client's string and may say anything.
    pub fn client(user_id: &str, operation: &str, key: &str) -> Self {
        let digest: String = Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        Self { pk: format!("IDEM#{user_id}#{operation}#{digest}"), sk: "IDEM", ttl_seconds: 24 * 3600 }
    }

    pub fn pk(&self) -> &str {
        &self.pk
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }
}

/// A request's fingerprint: the hash of what makes two requests "the same" (method, path, body).
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What is kept under a key: the answer, or a lease while the first request runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leased_until: Option<DateTime<Utc>>,
    #[serde(flatten)]
    answer: Option<StoredAnswer>,
}

/// What a key says about a request.
#[derive(Debug)]
pub enum Seen {
    /// Never seen (or a lease that ran out): go ahead.
    New,
    /// The first answer, to give again.
    Answered(StoredAnswer),
    /// The key was used for a different request (422 `idempotency_key_reused`).
    Reused,
    /// The first request is still running (409 `idempotency_request_in_progress`).
    InProgress,
}

fn judge(record: &Record, fingerprint: Option<&str>, now: DateTime<Utc>) -> Seen {
    if let (Some(stored), Some(presented)) = (record.fingerprint.as_deref(), fingerprint)
        && !crate::keys::ct_eq_str(stored, presented)
    {
        return Seen::Reused;
    }
    match (&record.answer, record.leased_until) {
        (Some(answer), _) => Seen::Answered(answer.clone()),
        (None, Some(until)) if until > now => Seen::InProgress,
        _ => Seen::New,
    }
}

async fn read(kv: &dyn KeyValue, key: &Key) -> Result<Option<Versioned<Record>>, KvError> {
    persist::get(kv, &key.pk, key.sk).await
}

/// What the key says, without changing anything.
pub async fn lookup(kv: &dyn KeyValue, key: &Key, fingerprint: Option<&str>, now: DateTime<Utc>) -> Result<Seen, KvError> {
    Ok(match read(kv, key).await? {
        Some(record) => judge(&record.value, fingerprint, now),
        None => Seen::New,
    })
}

/// The op that stores `answer` under `key`, replacing the lease `claim` (or nothing).
pub fn answer_op(key: &Key, fingerprint: Option<&str>, answer: &StoredAnswer, claim: Option<&Claim>, now: DateTime<Utc>) -> Result<TxOp, KvError> {
    let record = Record { fingerprint: fingerprint.map(str::to_owned), leased_until: None, answer: Some(answer.clone()) };
    let condition = claim.map_or(Condition::NotExists, |c| Condition::VersionIs(c.version));
    persist::put_op(key.pk.clone(), key.sk, &record, condition, Some(now.timestamp() + key.ttl_seconds))
}

/// A lease on a key, held while the first request runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    version: u64,
}

/// What `begin` found.
#[derive(Debug)]
pub enum Begin {
    /// The key is this request's until `now + lease`; finish with `answer_op(.., Some(&claim), ..)`.
    Claimed(Claim),
    Seen(Seen),
}

/// Takes the key for this request (writing a lease), unless it has an answer, another
/// request holds a live lease, or it was used for another request.
pub async fn begin(kv: &dyn KeyValue, key: &Key, fingerprint: &str, now: DateTime<Utc>, lease: chrono::Duration) -> Result<Begin, ApiError> {
    persist::retry(|| async {
        let found = read(kv, key).await?;
        if let Some(found) = &found {
            match judge(&found.value, Some(fingerprint), now) {
                Seen::New => {}
                seen => return Ok(Attempt::Done(Begin::Seen(seen))),
            }
        }
        let lease_record = Record { fingerprint: Some(fingerprint.to_owned()), leased_until: Some(now + lease), answer: None };
        let op = persist::put_op(key.pk.clone(), key.sk, &lease_record, persist::condition_for(found.as_ref()), Some(now.timestamp() + key.ttl_seconds))?;
        let claim = Claim { version: found.map_or(1, |f| f.version + 1) };
        Ok(Attempt::of(kv.transact(vec![op]).await)?.map(|()| Begin::Claimed(claim)))
    })
    .await
}

/// Gives a lease back without an answer (the request failed in a way worth retrying).
pub async fn release(kv: &dyn KeyValue, key: &Key, claim: &Claim) -> Result<(), KvError> {
    match kv.delete(&key.pk, key.sk, Condition::VersionIs(claim.version)).await {
        Err(KvError::ConditionFailed) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What one attempt at a request decided.
pub enum Decision {
    /// Commit `ops` with `events` staged in the outbox and `answer` recorded, all at once.
    /// Ops should carry version conditions on what they read: a conflict re-runs the decision.
    Apply { ops: Vec<TxOp>, events: Vec<Event>, answer: StoredAnswer },
}

/// Applies a request exactly once: replays the stored answer of a seen key; otherwise runs
/// `decide` and commits its ops, events and the answer in one transaction, re-deciding on
/// conflicts. A final refusal (a 4xx problem from `decide`) is stored too, so copies get it
/// again; transient failures (5xx, `concurrent_update`, `rate_limited`) are not.
pub async fn apply_once<F, Fut>(kv: &dyn KeyValue, relay: &Relay, key: &Key, fingerprint: Option<&str>, now: DateTime<Utc>, decide: F) -> Response
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Decision, ApiError>>,
{
    let answered = persist::retry(|| attempt_once(kv, relay, key, fingerprint, now, &decide)).await;
    match answered {
        Ok(answer) => answer.into_response(),
        Err(error) => error.into_response(),
    }
}

/// One round of `apply_once`: look the key up, else decide and commit with the answer.
async fn attempt_once<F, Fut>(
    kv: &dyn KeyValue,
    relay: &Relay,
    key: &Key,
    fingerprint: Option<&str>,
    now: DateTime<Utc>,
    decide: &F,
) -> Result<Attempt<StoredAnswer>, ApiError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Decision, ApiError>>,
{
    match lookup(kv, key, fingerprint, now).await? {
        Seen::New => {}
        Seen::Answered(answer) => {
            tracing::info!(status = answer.status, "repeated request answered from its stored answer");
            return Ok(Attempt::Done(answer));
        }
        Seen::Reused => return Err(key_reused()),
        Seen::InProgress => return Err(in_progress()),
    }
    let Decision::Apply { mut ops, events, answer } = match decide().await {
        Ok(decision) => decision,
        Err(refusal) if is_final(&refusal) => return record_refusal(kv, key, fingerprint, refusal, now).await.map(Attempt::Done),
        Err(transient) => return Err(transient),
    };
    ops.push(answer_op(key, fingerprint, &answer, None, now)?);
    // Someone else's write (or the same request, concurrently) may win: look again.
    Ok(Attempt::of(relay.commit(ops, &events).await)?.map(|()| answer))
}

pub fn key_reused() -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", "Ключ идемпотентности уже использован для другого запроса")
}

pub fn in_progress() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "idempotency_request_in_progress", "Запрос с этим ключом ещё выполняется, повторите позже")
}

/// Refusals that a copy would get again; 5xx and contention are worth a retry.
fn is_final(error: &ApiError) -> bool {
    error.status.is_client_error() && !matches!(error.code, "concurrent_update" | "rate_limited")
}

async fn record_refusal(kv: &dyn KeyValue, key: &Key, fingerprint: Option<&str>, refusal: ApiError, now: DateTime<Utc>) -> Result<StoredAnswer, ApiError> {
    let answer = StoredAnswer::capture(refusal.into_response()).await?;
    match kv.transact(vec![answer_op(key, fingerprint, &answer, None, now)?]).await {
        Ok(()) => Ok(answer),
        // A concurrent copy answered first; its answer is the one to repeat.
        Err(e) if persist::is_conflict(&e) => match lookup(kv, key, fingerprint, now).await? {
            Seen::Answered(first) => Ok(first),
            _ => Ok(answer),
        },
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::adapters::embedded::{RedbKv, open_database, queue::RedbQueue};
    use crate::ports::{Item, Queue};

    struct Fixture {
        kv: Arc<dyn KeyValue>,
        relay: Relay,
        queue: Arc<dyn Queue>,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(&dir.path().join("kv.redb")).unwrap();
        let kv: Arc<dyn KeyValue> = Arc::new(RedbKv::new(db.clone()).unwrap());
        let queue: Arc<dyn Queue> = Arc::new(RedbQueue::open(db, "events", 5).await.unwrap());
        Fixture { relay: Relay::new(kv.clone(), queue.clone()), kv, queue, _dir: dir }
    }

    /// The store expires records by the real clock, so test time starts from it (rounded, so
    /// that expiry stamps are predictable).
    fn now() -> DateTime<Utc> {
        static NOW: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
        *NOW.get_or_init(|| DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now"))
    }

    /// A decision that bumps a counter item and emits one event.
    async fn bump(kv: &dyn KeyValue, calls: &AtomicUsize) -> Result<Decision, ApiError> {
        calls.fetch_add(1, Ordering::SeqCst);
        let current = kv.get("COUNTER", "C").await?;
        let condition = current.as_ref().map_or(Condition::NotExists, |i| Condition::VersionIs(i.version));
        let event = Event::at(now(), ulid::Ulid::new().to_string(), None, crate::events::EventPayload::RecoveryUnmatched { flow_id: "f".into() });
        Ok(Decision::Apply {
            ops: vec![TxOp::Put { item: Item::new("COUNTER", "C", Vec::new()), condition }],
            events: vec![event],
            answer: StoredAnswer::json(StatusCode::OK, &serde_json::json!({"result": "applied"})),
        })
    }

    async fn body(response: Response) -> (u16, String) {
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn counter(kv: &dyn KeyValue) -> u64 {
        kv.get("COUNTER", "C").await.unwrap().map_or(0, |i| i.version)
    }

    #[tokio::test]
    async fn a_copy_replays_the_stored_answer_without_deciding_again() {
        let f = fixture().await;
        let calls = AtomicUsize::new(0);
        let key = Key::webhook("mvd", "msg_1");
        let first = body(apply_once(f.kv.as_ref(), &f.relay, &key, None, now(), || bump(f.kv.as_ref(), &calls)).await).await;
        let again = body(apply_once(f.kv.as_ref(), &f.relay, &key, None, now(), || bump(f.kv.as_ref(), &calls)).await).await;
        assert_eq!(first, (200, r#"{"result":"applied"}"#.to_owned()));
        assert_eq!(again, first);
        assert_eq!((calls.load(Ordering::SeqCst), counter(f.kv.as_ref()).await), (1, 1));
        assert_eq!(f.queue.receive(10, std::time::Duration::from_secs(30), std::time::Duration::ZERO).await.unwrap().len(), 1);
        let item = f.kv.get(key.pk(), "WEBHOOK").await.unwrap().unwrap();
        assert_eq!(item.expires_at, Some(now().timestamp() + 7 * 24 * 3600));
        // Another agency's delivery with the same id is a different request.
        body(apply_once(f.kv.as_ref(), &f.relay, &Key::webhook("fns", "msg_1"), None, now(), || bump(f.kv.as_ref(), &calls)).await).await;
        assert_eq!(counter(f.kv.as_ref()).await, 2);
    }

    #[tokio::test]
    async fn a_final_refusal_is_replayed_but_a_transient_failure_is_not_remembered() {
        let f = fixture().await;
        let key = Key::webhook("mvd", "msg_2");
        let refused = body(apply_once(f.kv.as_ref(), &f.relay, &key, None, now(), || async { Err::<Decision, _>(ApiError::not_found()) }).await).await;
        let calls = AtomicUsize::new(0);
        let replay = body(apply_once(f.kv.as_ref(), &f.relay, &key, None, now(), || bump(f.kv.as_ref(), &calls)).await).await;
        assert_eq!(replay, refused);
        assert_eq!(replay.0, 404);
        assert_eq!(calls.load(Ordering::SeqCst), 0);

        let key = Key::webhook("mvd", "msg_3");
        let failed = body(apply_once(f.kv.as_ref(), &f.relay, &key, None, now(), || async { Err::<Decision, _>(ApiError::unavailable("test")) }).await).await;
        assert_eq!(failed.0, 503);
        let retried = body(apply_once(f.kv.as_ref(), &f.relay, &key, None, now(), || bump(f.kv.as_ref(), &calls)).await).await;
        assert_eq!(retried.0, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_copies_apply_once_and_get_the_same_answer() {
        let f = Arc::new(fixture().await);
        let calls = Arc::new(AtomicUsize::new(0));
        let copies = (0..16).map(|_| {
            let (f, calls) = (f.clone(), calls.clone());
            tokio::spawn(async move {
                body(apply_once(f.kv.as_ref(), &f.relay, &Key::webhook("mvd", "msg_4"), None, now(), || bump(f.kv.as_ref(), &calls)).await).await
            })
        });
        for answer in futures::future::join_all(copies).await {
            assert_eq!(answer.unwrap().0, 200);
        }
        assert_eq!(counter(f.kv.as_ref()).await, 1, "applied once");
    }

    #[tokio::test]
    async fn the_same_client_key_on_another_request_is_refused_and_changes_nothing() {
        let f = fixture().await;
        let calls = AtomicUsize::new(0);
        let key = Key::client("user1", "payments.create", "k-1");
        let (a, b) = (fingerprint(&[b"POST", br#"{"uins":["1"]}"#]), fingerprint(&[b"POST", br#"{"uins":["2"]}"#]));
        let first = body(apply_once(f.kv.as_ref(), &f.relay, &key, Some(&a), now(), || bump(f.kv.as_ref(), &calls)).await).await;
        let other = body(apply_once(f.kv.as_ref(), &f.relay, &key, Some(&b), now(), || bump(f.kv.as_ref(), &calls)).await).await;
        let same = body(apply_once(f.kv.as_ref(), &f.relay, &key, Some(&a), now(), || bump(f.kv.as_ref(), &calls)).await).await;
        assert_eq!(first.0, 200);
        assert_eq!(other.0, 422);
        assert!(other.1.contains("idempotency_key_reused"), "{}", other.1);
        assert_eq!(same, first);
        assert_eq!(counter(f.kv.as_ref()).await, 1);
        // Another citizen's identical key is another request.
        let theirs = Key::client("user2", "payments.create", "k-1");
        assert_ne!(theirs.pk(), key.pk());
        assert!(!key.pk().contains("k-1"), "the client's key is stored hashed");
    }

    const LEASE: chrono::Duration = chrono::Duration::seconds(30);

    /// A fixture with a citizen's key `k` already leased for the request `body`.
    async fn leased(k: &str) -> (Fixture, Key, String, Claim) {
        let f = fixture().await;
        let key = Key::client("user1", "payments.create", k);
        let print = fingerprint(&[b"body"]);
        let Begin::Claimed(claim) = begin(f.kv.as_ref(), &key, &print, now(), LEASE).await.unwrap() else { panic!("the first begin claims") };
        (f, key, print, claim)
    }

    #[tokio::test]
    async fn a_lease_makes_copies_wait_then_the_answer_replaces_it() {
        let (f, key, print, claim) = leased("k-2").await;
        let lease = LEASE;
        assert!(matches!(begin(f.kv.as_ref(), &key, &print, now(), lease).await.unwrap(), Begin::Seen(Seen::InProgress)));
        assert!(matches!(begin(f.kv.as_ref(), &key, &fingerprint(&[b"other"]), now(), lease).await.unwrap(), Begin::Seen(Seen::Reused)));
        let answer = StoredAnswer::json(StatusCode::CREATED, &serde_json::json!({"payment_id": "p1"}));
        f.kv.transact(vec![answer_op(&key, Some(&print), &answer, Some(&claim), now()).unwrap()]).await.unwrap();
        match begin(f.kv.as_ref(), &key, &print, now(), lease).await.unwrap() {
            Begin::Seen(Seen::Answered(replayed)) => assert_eq!(replayed, answer),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_lapsed_or_released_lease_can_be_taken_again() {
        let (f, key, print, first) = leased("k-3").await;
        let lease = LEASE;
        let later = now() + chrono::Duration::seconds(31);
        let Begin::Claimed(second) = begin(f.kv.as_ref(), &key, &print, later, lease).await.unwrap() else { panic!("a lapsed lease is free") };
        // The first holder's answer can no longer land over the second's lease.
        let answer = StoredAnswer::json(StatusCode::CREATED, &serde_json::json!({}));
        assert!(f.kv.transact(vec![answer_op(&key, Some(&print), &answer, Some(&first), later).unwrap()]).await.is_err());
        release(f.kv.as_ref(), &key, &second).await.unwrap();
        assert!(matches!(begin(f.kv.as_ref(), &key, &print, later, lease).await.unwrap(), Begin::Claimed(_)));
    }
}

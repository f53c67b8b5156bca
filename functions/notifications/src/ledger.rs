//! Delivery markers in the key-value store: at most one send per (event, destination), even when
//! the queue delivers a message twice or two consumers hold it at once.
//!
//! A marker lives at `pk = "NOTIF#<event id>"`, `sk = "<channel>#<hash>"` and goes through
//! `sending` → `sent` | `failed` (or is deleted after a temporary failure, so a retry may send).
//! The `sending` claim is written with `NotExists` *before* the send, so a redelivery that
//! finds it never sends again. The claim is a lease: it expires after `lease` unless the send
//! settles it, so a consumer that dies between claiming and sending does not lose the message —
//! the next delivery after the lease sends it. The price is the one window no ledger can close
//! without an idempotent provider API: a crash after the provider accepted the message and
//! before `mark_sent` means one duplicate after the lease. Settled markers are kept 7 days,
//! longer than any redelivery (SQS keeps messages at most 14 days, but the DLQ takes them
//! after a handful of receives).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::events::Destination;
use shared::ports::Ticker;
use shared::ports::kv::{Condition, Item, KeyValue, KvError};

/// How long a `sending` claim holds: longer than any send can take (the function's timeout),
/// shorter than the queue's retry span, so a crashed claim is retried before the DLQ takes it.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(120);

/// How long settled markers are kept.
pub const MARKER_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkerKey {
    pub pk: String,
    pub sk: String,
}

impl MarkerKey {
    /// The destination is hashed (salted with the event id) so markers hold no contact data.
    pub fn new(event_id: &str, destination: &Destination) -> Self {
        let (channel, to) = channel_and_address(destination);
        let digest = Sha256::new().chain_update(event_id).chain_update([0u8]).chain_update(channel).chain_update([0u8]).chain_update(to).finalize();
        let hash: String = digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
        Self { pk: format!("NOTIF#{event_id}"), sk: format!("{channel}#{hash}") }
    }
}

/// The channel name (`sms`/`email`) and the address of a destination.
pub fn channel_and_address(destination: &Destination) -> (&'static str, &str) {
    match destination {
        Destination::Sms(phone) => ("sms", phone.as_str()),
        Destination::Email(email) => ("email", email.as_str()),
    }
}

/// What a claim attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This consumer may send; settle the marker with this version afterwards.
    Acquired {
        version: u64,
    },
    AlreadySent,
    /// An earlier attempt failed permanently; sending again would fail the same way.
    FailedBefore,
    /// Another delivery holds a live lease (or just released it): try again later.
    HeldByAnother,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerState {
    Sending,
    Sent,
    Failed,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    state: MarkerState,
    at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Ledger {
    kv: Arc<dyn KeyValue>,
    lease: Duration,
    ticker: Ticker,
}

impl Ledger {
    pub fn new(kv: Arc<dyn KeyValue>, lease: Duration) -> Self {
        Self { kv, lease, ticker: Ticker::default() }
    }

    pub fn with_lease(self, lease: Duration) -> Self {
        Self { lease, ..self }
    }

    /// The clock that stamps markers and starts their leases.
    pub fn with_ticker(self, ticker: Ticker) -> Self {
        Self { ticker, ..self }
    }

    pub async fn claim(&self, key: &MarkerKey) -> Result<Claim, KvError> {
        match self.kv.put(self.marker(key, MarkerState::Sending, self.lease)?, Condition::NotExists).await {
            Ok(version) => Ok(Claim::Acquired { version }),
            Err(KvError::ConditionFailed) => Ok(match self.state(key).await? {
                Some(MarkerState::Sent) => Claim::AlreadySent,
                Some(MarkerState::Failed) => Claim::FailedBefore,
                Some(MarkerState::Sending) | None => Claim::HeldByAnother,
            }),
            Err(error) => Err(error),
        }
    }

    /// Records a successful send; `ConditionFailed` means the lease had run out and someone else claimed.
    pub async fn mark_sent(&self, key: &MarkerKey, version: u64) -> Result<(), KvError> {
        self.kv.put(self.marker(key, MarkerState::Sent, MARKER_RETENTION)?, Condition::VersionIs(version)).await.map(drop)
    }

    pub async fn mark_failed(&self, key: &MarkerKey, version: u64) -> Result<(), KvError> {
        self.kv.put(self.marker(key, MarkerState::Failed, MARKER_RETENTION)?, Condition::VersionIs(version)).await.map(drop)
    }

    /// Gives a claim back after a temporary failure, so the next delivery may send at once.
    pub async fn release(&self, key: &MarkerKey, version: u64) -> Result<(), KvError> {
        self.kv.delete(&key.pk, &key.sk, Condition::VersionIs(version)).await
    }

    pub async fn state(&self, key: &MarkerKey) -> Result<Option<MarkerState>, KvError> {
        let Some(item) = self.kv.get(&key.pk, &key.sk).await? else { return Ok(None) };
        Ok(Some(item.parse::<Marker>()?.state))
    }

    fn marker(&self, key: &MarkerKey, state: MarkerState, lifetime: Duration) -> Result<Item, KvError> {
        let now = self.ticker.now();
        let expires_at = now.timestamp().saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        Ok(Item::json(key.pk.clone(), key.sk.clone(), &Marker { state, at: now })?.expiring_at(expires_at))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use shared::adapters::embedded::{kv::RedbKv, open_database};
    use shared::domain::{Email, Phone};

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        kv: Arc<dyn KeyValue>,
        ledger: Ledger,
        now: DateTime<Utc>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database = open_database(&dir.path().join("state.redb")).expect("open redb");
        let kv: Arc<dyn KeyValue> = Arc::new(RedbKv::new(database).expect("embedded kv"));
        // Expiry is enforced against the wall clock, so the fixed time is today's.
        let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).single().expect("valid time");
        let ledger = Ledger::new(kv.clone(), DEFAULT_CLAIM_LEASE).with_ticker(Ticker::fixed(now).0);
        Fixture { _dir: dir, kv, ledger, now }
    }

    fn sms(phone: &str) -> Destination {
        Destination::Sms(Phone::parse(phone).unwrap())
    }

    fn key() -> MarkerKey {
        MarkerKey::new("01JEVENT00000000000000000", &sms("+79990001122"))
    }

    fn acquired(claim: Claim) -> u64 {
        match claim {
            Claim::Acquired { version } => version,
            other => panic!("expected the claim, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_destination_can_be_claimed_only_once_while_the_lease_lives() {
        let f = fixture();
        acquired(f.ledger.claim(&key()).await.unwrap());
        assert_eq!(f.ledger.claim(&key()).await.unwrap(), Claim::HeldByAnother);
    }

    #[tokio::test]
    async fn a_settled_marker_answers_every_later_claim() {
        let f = fixture();
        let version = acquired(f.ledger.claim(&key()).await.unwrap());
        f.ledger.mark_sent(&key(), version).await.unwrap();
        assert_eq!(f.ledger.claim(&key()).await.unwrap(), Claim::AlreadySent);

        let failed = MarkerKey::new("01JOTHER", &sms("+79990001122"));
        let version = acquired(f.ledger.claim(&failed).await.unwrap());
        f.ledger.mark_failed(&failed, version).await.unwrap();
        assert_eq!(f.ledger.claim(&failed).await.unwrap(), Claim::FailedBefore);
    }

    #[tokio::test]
    async fn a_released_claim_can_be_taken_again_at_once() {
        let f = fixture();
        let version = acquired(f.ledger.claim(&key()).await.unwrap());
        f.ledger.release(&key(), version).await.unwrap();
        acquired(f.ledger.claim(&key()).await.unwrap());
    }

    #[tokio::test]
    async fn a_claim_whose_lease_lapsed_can_be_taken_over() {
        let f = fixture();
        // What a consumer that died between claiming and sending leaves behind.
        let stale = Marker { state: MarkerState::Sending, at: f.now - chrono::Duration::minutes(10) };
        let item = Item::json(key().pk, key().sk, &stale).unwrap().expiring_at(f.now.timestamp() - 1);
        f.kv.put(item, Condition::None).await.unwrap();

        acquired(f.ledger.claim(&key()).await.unwrap());
    }

    #[tokio::test]
    async fn settling_with_a_superseded_claim_changes_nothing() {
        let f = fixture();
        let version = acquired(f.ledger.claim(&key()).await.unwrap());
        f.ledger.release(&key(), version).await.unwrap();
        let current = acquired(f.ledger.claim(&key()).await.unwrap());

        assert!(matches!(f.ledger.mark_failed(&key(), current + 1).await, Err(KvError::ConditionFailed)));
        assert_eq!(f.ledger.state(&key()).await.unwrap(), Some(MarkerState::Sending));
    }

    #[tokio::test]
    async fn settled_markers_expire_after_the_retention_period_and_claims_after_the_lease() {
        let f = fixture();
        let version = acquired(f.ledger.claim(&key()).await.unwrap());
        let claimed = f.kv.get(&key().pk, &key().sk).await.unwrap().unwrap();
        assert_eq!(claimed.expires_at, Some(f.now.timestamp() + 120));

        f.ledger.mark_sent(&key(), version).await.unwrap();
        let sent = f.kv.get(&key().pk, &key().sk).await.unwrap().unwrap();
        assert_eq!(sent.expires_at, Some(f.now.timestamp() + 7 * 24 * 3600));
    }

    #[test]
    fn marker_keys_name_the_event_and_channel_but_not_the_address() {
        let phone = sms("+79990001122");
        let key = MarkerKey::new("01JEVENT", &phone);
        assert_eq!(key.pk, "NOTIF#01JEVENT");
        assert!(key.sk.starts_with("sms#") && key.sk.len() == "sms#".len() + 32);
        assert!(!key.sk.contains("9990001122"));
        assert_ne!(MarkerKey::new("01JOTHER", &phone).sk, key.sk);
        assert_ne!(MarkerKey::new("01JEVENT", &sms("+79990001123")).sk, key.sk);
        assert!(MarkerKey::new("01JEVENT", &Destination::Email(Email::parse("a@b.example").unwrap())).sk.starts_with("email#"));
    }
}

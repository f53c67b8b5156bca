//! The persistence kit every function uses over the key-value port: typed reads with their
//! version (`Versioned`), conditional write ops, the one retry policy for optimistic writes
//! (`retry`), a read-modify-write of one item (`update`), and whole-partition reads.
//! Outbox commits live in `crate::outbox` (`Relay::commit`), stored answers in
//! `crate::idempotency`.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::{Condition, Item, KeyValue, KvError, Query, TxOp};

/// A typed item read with the store-managed version it was read at, for conditional write-back.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

impl<T> Versioned<T> {
    /// The condition that the item is still as read.
    pub fn unchanged(&self) -> Condition {
        Condition::VersionIs(self.version)
    }

    /// Records a successful conditional write of `value` over this read.
    pub fn written(&mut self, value: T) {
        self.value = value;
        self.version += 1;
    }
}

/// `VersionIs` of what was read, or `NotExists` when nothing was.
pub fn condition_for<T>(read: Option<&Versioned<T>>) -> Condition {
    read.map_or(Condition::NotExists, Versioned::unchanged)
}

pub async fn get<T: DeserializeOwned>(kv: &dyn KeyValue, pk: &str, sk: &str) -> Result<Option<Versioned<T>>, KvError> {
    match kv.get(pk, sk).await? {
        Some(item) => Ok(Some(Versioned { value: item.parse()?, version: item.version })),
        None => Ok(None),
    }
}

/// The op that writes `value` at `pk`/`sk` if `condition` holds, expiring at `expires_at`.
pub fn put_op<T: Serialize>(pk: impl Into<String>, sk: impl Into<String>, value: &T, condition: Condition, expires_at: Option<i64>) -> Result<TxOp, KvError> {
    let mut item = Item::json(pk, sk, value)?;
    item.expires_at = expires_at;
    Ok(TxOp::Put { item, condition })
}

/// Every item of a query, following pages to the end (for partitions known to stay small).
pub async fn query_all<T: DeserializeOwned>(kv: &dyn KeyValue, query: Query) -> Result<Vec<Versioned<T>>, KvError> {
    let mut out = Vec::new();
    let mut query = query;
    loop {
        let page = kv.query(query.clone()).await?;
        for item in &page.items {
            out.push(Versioned { value: item.parse()?, version: item.version });
        }
        match page.last_key {
            Some(key) => query = query.after(Some(key)),
            None => return Ok(out),
        }
    }
}

/// One page of at most `limit` items of `query` that `keep` accepts, each with its sort key,
/// and whether more may follow. The filter runs while paging, as a DynamoDB FilterExpression
/// would; every read stays bounded by the query's own limit.
pub async fn filtered_page<T: DeserializeOwned>(
    kv: &dyn KeyValue,
    query: Query,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<(String, T)>, bool), KvError> {
    let mut query = query;
    let mut found = Vec::with_capacity(limit);
    loop {
        let page = kv.query(query.clone()).await?;
        let count = page.items.len();
        for (index, item) in page.items.iter().enumerate() {
            let value: T = item.parse()?;
            if keep(&value) {
                found.push((item.sk.clone(), value));
                if found.len() == limit {
                    return Ok((found, index + 1 < count || page.last_key.is_some()));
                }
            }
        }
        match page.last_key {
            Some(key) => query = query.after(Some(key)),
            None => return Ok((found, false)),
        }
    }
}

/// A write lost a race (a version or existence condition no longer holds).
pub fn is_conflict(error: &KvError) -> bool {
    matches!(error, KvError::ConditionFailed | KvError::TransactionConflict { .. })
}

/// What one round of an optimistic write ended in.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    /// Lost a race: read again and decide again.
    Conflict,
}

impl<T> Attempt<T> {
    /// The same end of the round with another value (e.g. the value just written).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U> {
        match self {
            Self::Done(value) => Attempt::Done(f(value)),
            Self::Conflict => Attempt::Conflict,
        }
    }
}

impl Attempt<()> {
    /// A commit's result as a round's end: success, a lost race, or a real failure.
    pub fn of(result: Result<(), KvError>) -> Result<Self, KvError> {
        match result {
            Ok(()) => Ok(Self::Done(())),
            Err(e) if is_conflict(&e) => Ok(Self::Conflict),
            Err(e) => Err(e),
        }
    }
}

/// A commit's result as a round's end carrying `value` when it landed.
pub fn settle<T>(committed: Result<(), KvError>, value: T) -> Result<Attempt<T>, KvError> {
    Ok(Attempt::of(committed)?.map(|()| value))
}

/// Every round lost its race: the data is too hot right now (the caller answers 409 or 429).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("gave up after {RETRY_ATTEMPTS} conflicting writes")]
pub struct Contended;

/// The one retry policy of optimistic writes: up to this many rounds…
pub const RETRY_ATTEMPTS: u32 = 40;
/// …the first retry at once, then after a random pause of up to `base × 2^n`, at most `cap`
/// ("full jitter"), so racing writers spread out instead of colliding again.
const RETRY_BASE: Duration = Duration::from_millis(1);
const RETRY_CAP: Duration = Duration::from_millis(32);

/// Runs `round` (read, decide, write conditionally) until it is `Done`, again after each
/// `Conflict` under the one policy, then fails with `Contended`. Errors stop at once.
pub async fn retry<T, E, F, Fut>(mut round: F) -> Result<T, E>
where
    E: From<Contended>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, E>>,
{
    for n in 0..RETRY_ATTEMPTS {
        if n > 1 {
            tokio::time::sleep(backoff(n - 1)).await;
        } else if n == 1 {
            tokio::task::yield_now().await;
        }
        if let Attempt::Done(value) = round().await? {
            return Ok(value);
        }
    }
    Err(Contended.into())
}

fn backoff(n: u32) -> Duration {
    let ceiling = RETRY_BASE.saturating_mul(1u32 << n.min(16)).min(RETRY_CAP);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::Rng::gen_range(&mut rand::thread_rng(), 0..=micros))
}

/// Why `update` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    /// `change` refused; nothing was written.
    #[error("refused")]
    Refused(E),
    #[error(transparent)]
    Contended(#[from] Contended),
    #[error(transparent)]
    Kv(#[from] KvError),
}

/// Reads the item at `pk`/`sk` (its `Default` when absent), lets `change` edit it, and writes
/// it back conditionally on the version read, expiring at `expires_at`, with `also` in the
/// same transaction. A lost race re-reads and re-applies `change` under the retry policy.
/// Answers the value as written.
pub async fn update<T, E>(
    kv: &dyn KeyValue,
    pk: &str,
    sk: &str,
    expires_at: Option<i64>,
    also: &[TxOp],
    change: impl Fn(&mut T) -> Result<(), E>,
) -> Result<T, UpdateError<E>>
where
    T: Default + Serialize + DeserializeOwned,
{
    retry(|| async {
        let read = get::<T>(kv, pk, sk).await?;
        let condition = condition_for(read.as_ref());
        let mut value = read.map(|r| r.value).unwrap_or_default();
        change(&mut value).map_err(UpdateError::Refused)?;
        let mut ops = vec![put_op(pk, sk, &value, condition, expires_at)?];
        ops.extend_from_slice(also);
        Ok(Attempt::of(kv.transact(ops).await)?.map(|()| value))
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::embedded::{RedbKv, open_database};

    fn kv() -> (Arc<dyn KeyValue>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(&dir.path().join("kv.redb")).unwrap();
        (Arc::new(RedbKv::new(db).unwrap()), dir)
    }

    #[derive(Default, Serialize, serde::Deserialize)]
    struct Counter {
        n: u32,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_all_land_exactly_once() {
        let (kv, _dir) = kv();
        let writers = (0..24).map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move {
                update::<Counter, ()>(kv.as_ref(), "C", "C", None, &[], |c| {
                    c.n += 1;
                    Ok(())
                })
                .await
                .map(|c| c.n)
            })
        });
        let mut seen: Vec<u32> = futures::future::join_all(writers).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=24).collect::<Vec<_>>(), "each writer saw its own increment");
        assert_eq!(get::<Counter>(kv.as_ref(), "C", "C").await.unwrap().unwrap().value.n, 24);
    }

    #[tokio::test]
    async fn a_refusal_writes_nothing_and_comes_back() {
        let (kv, _dir) = kv();
        let refused = update::<Counter, &str>(kv.as_ref(), "C", "C", None, &[], |_| Err("no")).await;
        assert!(matches!(refused, Err(UpdateError::Refused("no"))));
        assert!(kv.get("C", "C").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn retry_gives_up_after_the_policy_with_contended() {
        let mut rounds = 0;
        let result: Result<(), Contended> = retry(|| {
            rounds += 1;
            async { Ok(Attempt::Conflict) }
        })
        .await;
        assert_eq!(result, Err(Contended));
        assert_eq!(rounds, RETRY_ATTEMPTS);
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        for n in 0..40 {
            assert!(backoff(n) <= RETRY_CAP);
        }
    }

    #[tokio::test]
    async fn query_all_follows_every_page() {
        let (kv, _dir) = kv();
        for i in 0..250 {
            kv.put(Item::json("P", format!("S#{i:04}"), &Counter { n: i }).unwrap(), Condition::None).await.unwrap();
        }
        let all: Vec<Versioned<Counter>> = query_all(kv.as_ref(), Query::partition("P").prefix("S#").limit(100)).await.unwrap();
        assert_eq!(all.iter().map(|v| v.value.n).collect::<Vec<_>>(), (0..250).collect::<Vec<_>>());
    }
}

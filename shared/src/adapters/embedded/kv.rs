//! Embedded key-value adapter over one redb table.
//!
//! Layout: a single table `kv` whose key is `pk bytes ++ 0x00 ++ sk bytes`. Keys may not contain
//! 0x00, so every partition is one contiguous key range and sort keys keep their byte order
//! inside it. The value is `[format][version: u64 LE][has_expiry][expires_at: i64 LE]?[data]`.
//!
//! Every write runs in one redb write transaction (redb admits one writer at a time), so a
//! condition and the write it guards are atomic. Expired items stay on disk, invisible, until
//! [`RedbKv::purge_expired`] removes them; a put over an expired-but-stored item continues its
//! version sequence, while a put after a purge or delete starts again at 1.

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use self::rules::{is_live, unix_now};
use crate::ports::kv::{Condition, Item, KeyValue, KvError, Page, Query, TxOp};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// Key-value store in the local runner's redb file.
#[derive(Clone)]
pub struct RedbKv {
    db: Arc<redb::Database>,
}

impl RedbKv {
    /// Wraps a database opened with [`super::open_database`], creating the table if needed.
    pub fn new(db: Arc<redb::Database>) -> Result<Self, KvError> {
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(TABLE).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(Self { db })
    }

    /// Physically removes every item whose expiry is before `now` (unix seconds) and returns
    /// how many were removed. Readers never see such items anyway; this only reclaims space.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, KvError> {
        self.blocking(move |db| {
            write(db, |table| {
                let mut removed = 0u64;
                table
                    .retain(|_, value| {
                        // Undecodable values are kept so that a purge never destroys evidence.
                        let expired = Stored::decode(value).is_ok_and(|stored| !stored.is_live(now));
                        removed += u64::from(expired);
                        !expired
                    })
                    .map_err(storage)?;
                Ok(removed)
            })
        })
        .await
    }

    /// Runs a redb call on the blocking pool: redb does file I/O and waits on its writer lock.
    async fn blocking<T, F>(&self, f: F) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&redb::Database) -> Result<T, KvError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(|e| KvError::Backend(format!("redb task failed: {e}")))?
    }
}

#[async_trait]
impl KeyValue for RedbKv {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, KvError> {
        rules::check_key(pk, sk)?;
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(TABLE).map_err(storage)?;
            let Some(value) = table.get(storage_key(&pk, &sk).as_slice()).map_err(storage)? else {
                return Ok(None);
            };
            let stored = Stored::decode(value.value())?;
            Ok(stored.is_live(unix_now()).then(|| stored.into_item(pk, sk)))
        })
        .await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<u64, KvError> {
        rules::check_item(&item)?;
        self.blocking(move |db| {
            write(db, |table| {
                let key = storage_key(&item.pk, &item.sk);
                let current = read_header(table, &key)?;
                if !condition_holds(condition, current, unix_now()) {
                    return Err(KvError::ConditionFailed);
                }
                let version = next_version(current)?;
                insert(table, &key, version, &item)?;
                Ok(version)
            })
        })
        .await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), KvError> {
        rules::check_key(pk, sk)?;
        let key = storage_key(pk, sk);
        self.blocking(move |db| {
            write(db, |table| {
                let current = read_header(table, &key)?;
                if !condition_holds(condition, current, unix_now()) {
                    return Err(KvError::ConditionFailed);
                }
                table.remove(key.as_slice()).map_err(storage)?;
                Ok(())
            })
        })
        .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), KvError> {
        rules::check_transaction(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.blocking(move |db| {
            write(db, |table| {
                let now = unix_now();
                // All conditions are checked before anything is written: keys are distinct,
                // so no op can influence another op's condition.
                let mut planned = Vec::with_capacity(ops.len());
                for (index, op) in ops.iter().enumerate() {
                    let (pk, sk, condition) = op_target(op);
                    let key = storage_key(pk, sk);
                    let current = read_header(table, &key)?;
                    if !condition_holds(condition, current, now) {
                        return Err(KvError::TransactionConflict { index: Some(index) });
                    }
                    planned.push((key, current));
                }
                for (op, (key, current)) in ops.iter().zip(planned) {
                    match op {
                        TxOp::Put { item, .. } => insert(table, &key, next_version(current)?, item)?,
                        TxOp::Delete { .. } => {
                            table.remove(key.as_slice()).map_err(storage)?;
                        }
                        TxOp::Check { .. } => {}
                    }
                }
                Ok(())
            })
        })
        .await
    }

    async fn query(&self, query: Query) -> Result<Page, KvError> {
        let limit = rules::check_query(&query)?;
        self.blocking(move |db| {
            let Some((lower, upper)) = scan_bounds(&query) else {
                return Ok(Page::default());
            };
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(TABLE).map_err(storage)?;
            let range = table.range::<&[u8]>((bound_ref(&lower), bound_ref(&upper))).map_err(storage)?;
            let entries: Box<dyn Iterator<Item = _>> = if query.descending { Box::new(range.rev()) } else { Box::new(range) };

            let now = unix_now();
            let sk_offset = query.pk.len() + 1;
            let mut page = Page::default();
            for entry in entries {
                let (key, value) = entry.map_err(storage)?;
                let stored = Stored::decode(value.value())?;
                if !stored.is_live(now) {
                    continue;
                }
                let sk = sort_key_of(key.value(), sk_offset)?;
                if page.items.len() == limit {
                    // Another live item exists, so the caller needs a cursor to reach it.
                    page.last_key = page.items.last().map(|item| item.sk.clone());
                    break;
                }
                page.items.push(stored.into_item(query.pk.clone(), sk));
            }
            Ok(page)
        })
        .await
    }
}

/// The decoded form of a stored value.
struct Stored {
    version: u64,
    expires_at: Option<i64>,
    data: Vec<u8>,
}

const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 1;

impl Stored {
    fn encode(version: u64, expires_at: Option<i64>, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 8 + data.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&version.to_le_bytes());
        match expires_at {
            Some(at) => {
                out.push(1);
                out.extend_from_slice(&at.to_le_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(data);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, KvError> {
        let corrupt = || KvError::Backend("corrupt value in embedded kv table".into());
        let (&format, rest) = bytes.split_first().ok_or_else(corrupt)?;
        if format != FORMAT_V1 {
            return Err(KvError::Backend(format!("unknown embedded kv value format {format}")));
        }
        let (version, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let (&has_expiry, rest) = rest.split_first().ok_or_else(corrupt)?;
        let (expires_at, data) = match has_expiry {
            0 => (None, rest),
            1 => {
                let (at, data) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
                (Some(i64::from_le_bytes(*at)), data)
            }
            _ => return Err(corrupt()),
        };
        Ok(Self { version: u64::from_le_bytes(*version), expires_at, data: data.to_vec() })
    }

    fn is_live(&self, now: i64) -> bool {
        is_live(self.expires_at, now)
    }

    fn into_item(self, pk: String, sk: String) -> Item {
        Item { pk, sk, version: self.version, data: self.data, expires_at: self.expires_at }
    }
}

/// What a condition needs to know about the item currently stored under a key.
#[derive(Clone, Copy)]
struct Header {
    version: u64,
    expires_at: Option<i64>,
}

fn condition_holds(condition: Condition, current: Option<Header>, now: i64) -> bool {
    let live = current.filter(|h| is_live(h.expires_at, now));
    match condition {
        Condition::None => true,
        Condition::NotExists => live.is_none(),
        Condition::Exists => live.is_some(),
        Condition::VersionIs(version) => live.is_some_and(|h| h.version == version),
    }
}

fn next_version(current: Option<Header>) -> Result<u64, KvError> {
    current.map_or(0, |h| h.version).checked_add(1).ok_or_else(|| KvError::Backend("item version overflow".into()))
}

fn op_target(op: &TxOp) -> (&str, &str, Condition) {
    match op {
        TxOp::Put { item, condition } => (&item.pk, &item.sk, *condition),
        TxOp::Delete { pk, sk, condition } | TxOp::Check { pk, sk, condition } => (pk, sk, *condition),
    }
}

type KvTable<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

/// Runs `f` in one write transaction, committing only if it succeeds.
fn write<T>(db: &redb::Database, f: impl FnOnce(&mut KvTable<'_>) -> Result<T, KvError>) -> Result<T, KvError> {
    let txn = db.begin_write().map_err(storage)?;
    let outcome = {
        let mut table = txn.open_table(TABLE).map_err(storage)?;
        f(&mut table)
    };
    match outcome {
        Ok(value) => {
            txn.commit().map_err(storage)?;
            Ok(value)
        }
        Err(error) => {
            txn.abort().map_err(storage)?;
            Err(error)
        }
    }
}

fn read_header(table: &KvTable<'_>, key: &[u8]) -> Result<Option<Header>, KvError> {
    let Some(value) = table.get(key).map_err(storage)? else {
        return Ok(None);
    };
    let stored = Stored::decode(value.value())?;
    Ok(Some(Header { version: stored.version, expires_at: stored.expires_at }))
}

fn insert(table: &mut KvTable<'_>, key: &[u8], version: u64, item: &Item) -> Result<(), KvError> {
    let value = Stored::encode(version, item.expires_at, &item.data);
    table.insert(key, value.as_slice()).map_err(storage)?;
    Ok(())
}

fn storage_key(pk: &str, sk: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(pk.len() + 1 + sk.len());
    key.extend_from_slice(pk.as_bytes());
    key.push(0);
    key.extend_from_slice(sk.as_bytes());
    key
}

fn sort_key_of(key: &[u8], offset: usize) -> Result<String, KvError> {
    key.get(offset..).and_then(|sk| std::str::from_utf8(sk).ok()).map(str::to_owned).ok_or_else(|| KvError::Backend("corrupt key in embedded kv table".into()))
}

/// Lower and upper bound of a scan over storage keys.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The storage-key range a query scans, or `None` when the cursor already lies past it.
fn scan_bounds(query: &Query) -> Option<KeyRange> {
    let start = storage_key(&query.pk, query.sk_prefix.as_deref().unwrap_or(""));
    let end = successor(&start);
    let (mut lower, mut upper) = (Bound::Included(start.clone()), end.clone().map_or(Bound::Unbounded, Bound::Excluded));
    if let Some(cursor) = &query.start_after {
        let cursor = storage_key(&query.pk, cursor);
        if query.descending {
            if cursor <= start {
                return None;
            }
            if end.as_ref().is_none_or(|end| cursor < *end) {
                upper = Bound::Excluded(cursor);
            }
        } else {
            if end.as_ref().is_some_and(|end| cursor >= *end) {
                return None;
            }
            if cursor >= start {
                lower = Bound::Excluded(cursor);
            }
        }
    }
    Some((lower, upper))
}

/// The smallest byte string greater than every string that starts with `prefix`.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

fn bound_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn storage(error: impl Into<redb::Error>) -> KvError {
    KvError::Backend(format!("redb: {}", error.into()))
}

/// Rules both key-value adapters share: expiry and the request limits they enforce
/// identically, so code tested on the embedded store cannot rely on anything DynamoDB rejects.
pub(crate) mod rules {
    use std::collections::HashSet;
    use std::time::{SystemTime, UNIX_EPOCH};

    use crate::ports::kv::{Item, KvError, Query, TxOp};

    /// DynamoDB allows 2048 bytes for a partition key and 1024 for a sort key; we use the
    /// smaller one for both.
    pub(crate) const MAX_KEY_BYTES: usize = 1024;
    pub(crate) const MAX_TRANSACTION_OPS: usize = 25;
    pub(crate) const MAX_QUERY_LIMIT: usize = 1000;
    /// Leaves room for keys and attribute names under DynamoDB's 400 KB item limit.
    pub(crate) const MAX_DATA_BYTES: usize = 350 * 1024;

    /// An item is live up to and including the second it names as its expiry.
    pub(crate) fn is_live(expires_at: Option<i64>, now: i64) -> bool {
        expires_at.is_none_or(|at| at >= now)
    }

    pub(crate) fn unix_now() -> i64 {
        let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
    }

    pub(crate) fn check_key(pk: &str, sk: &str) -> Result<(), KvError> {
        check_key_part("partition key", pk)?;
        check_key_part("sort key", sk)
    }

    pub(crate) fn check_item(item: &Item) -> Result<(), KvError> {
        check_key(&item.pk, &item.sk)?;
        if item.data.len() > MAX_DATA_BYTES {
            return Err(KvError::Invalid(format!("item data exceeds {MAX_DATA_BYTES} bytes")));
        }
        Ok(())
    }

    /// Validates a query and returns the number of items a page may hold.
    pub(crate) fn check_query(query: &Query) -> Result<usize, KvError> {
        check_key_part("partition key", &query.pk)?;
        if let Some(prefix) = &query.sk_prefix {
            check_bytes("sort key prefix", prefix)?;
        }
        if let Some(cursor) = &query.start_after {
            check_key_part("cursor", cursor)?;
        }
        if query.limit == 0 {
            return Err(KvError::Invalid("query limit must be at least 1".into()));
        }
        Ok(query.limit.min(MAX_QUERY_LIMIT))
    }

    pub(crate) fn check_transaction(ops: &[TxOp]) -> Result<(), KvError> {
        if ops.len() > MAX_TRANSACTION_OPS {
            return Err(KvError::Invalid(format!("a transaction holds at most {MAX_TRANSACTION_OPS} ops")));
        }
        let mut keys = HashSet::with_capacity(ops.len());
        for op in ops {
            let (pk, sk) = match op {
                TxOp::Put { item, .. } => {
                    check_item(item)?;
                    (item.pk.as_str(), item.sk.as_str())
                }
                TxOp::Delete { pk, sk, .. } | TxOp::Check { pk, sk, .. } => {
                    check_key(pk, sk)?;
                    (pk.as_str(), sk.as_str())
                }
            };
            if !keys.insert((pk, sk)) {
                return Err(KvError::Invalid("a transaction may touch each key only once".into()));
            }
        }
        Ok(())
    }

    fn check_key_part(what: &str, value: &str) -> Result<(), KvError> {
        if value.is_empty() {
            return Err(KvError::Invalid(format!("{what} must not be empty")));
        }
        check_bytes(what, value)
    }

    fn check_bytes(what: &str, value: &str) -> Result<(), KvError> {
        if value.len() > MAX_KEY_BYTES {
            return Err(KvError::Invalid(format!("{what} exceeds {MAX_KEY_BYTES} bytes")));
        }
        if value.contains('\0') {
            return Err(KvError::Invalid(format!("{what} must not contain NUL")));
        }
        Ok(())
    }
}

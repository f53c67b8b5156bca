//! Key-value port, DynamoDB-shaped on purpose: a single table of items addressed by a
//! partition key and a sort key, conditional writes, all-or-nothing transactions, ordered
//! queries inside one partition, and per-item expiry (TTL).
//!
//! Semantics every adapter must honour (the contract tests in `tests/kv_contract.rs` check them):
//! - An item whose `expires_at` (unix seconds) is in the past is treated as absent by `get`,
//!   `query` and by conditions, even if the backend has not physically removed it yet.
//! - `version` is owned by the store: a successful `put` stores `previous version + 1`
//!   (or 1 for a new item), whatever the caller put in `Item::version`, and returns it.
//! - A failed condition changes nothing and returns `KvError::ConditionFailed`.
//! - `transact` applies every op or none; at most 25 ops, at most one op per key.
//! - `query` returns items of one partition ordered by sort key (byte order), ascending
//!   unless `descending`; `start_after` is an exclusive cursor (a sort key from `Page::last_key`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    /// Store-managed optimistic-concurrency counter (see module docs).
    pub version: u64,
    /// The payload, usually JSON produced by `serde_json::to_vec`.
    pub data: Vec<u8>,
    /// Unix seconds after which the item no longer exists for readers.
    pub expires_at: Option<i64>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: Vec<u8>) -> Self {
        Self { pk: pk.into(), sk: sk.into(), version: 0, data, expires_at: None }
    }

    pub fn json<T: Serialize>(pk: impl Into<String>, sk: impl Into<String>, value: &T) -> Result<Self, KvError> {
        let data = serde_json::to_vec(value).map_err(|e| KvError::Backend(e.to_string()))?;
        Ok(Self::new(pk, sk, data))
    }

    pub fn expiring_at(mut self, unix_seconds: i64) -> Self {
        self.expires_at = Some(unix_seconds);
        self
    }

    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, KvError> {
        serde_json::from_slice(&self.data).map_err(|e| KvError::Backend(format!("corrupt item {}/{}: {e}", self.pk, self.sk)))
    }
}

/// A precondition on the current state of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    None,
    /// The key holds no live item.
    NotExists,
    /// The key holds a live item.
    Exists,
    /// The key holds a live item with exactly this version.
    VersionIs(u64),
}

#[derive(Clone, Debug)]
pub enum TxOp {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
    /// Asserts a condition without writing.
    Check {
        pk: String,
        sk: String,
        condition: Condition,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Query {
    pub pk: String,
    /// Only sort keys starting with this prefix.
    pub sk_prefix: Option<String>,
    pub descending: bool,
    /// At most this many items (adapters cap it at 1000).
    pub limit: usize,
    /// Exclusive cursor: a sort key previously returned in `Page::last_key`.
    pub start_after: Option<String>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self { pk: pk.into(), limit: 100, ..Self::default() }
    }
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sk_prefix = Some(prefix.into());
        self
    }
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.start_after = cursor;
        self
    }
}

#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Set when more items may follow; pass it as `Query::start_after`.
    pub last_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled; `index` is the first op whose condition failed, if known.
    #[error("transaction cancelled (op {index:?})")]
    TransactionConflict { index: Option<usize> },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("key-value backend: {0}")]
    Backend(String),
}

#[async_trait]
pub trait KeyValue: Send + Sync {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, KvError>;
    /// Writes `item` if `condition` holds; returns the stored version.
    async fn put(&self, item: Item, condition: Condition) -> Result<u64, KvError>;
    /// Deletes the key if `condition` holds (deleting an absent key with `Condition::None` is fine).
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), KvError>;
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), KvError>;
    async fn query(&self, query: Query) -> Result<Page, KvError>;
}

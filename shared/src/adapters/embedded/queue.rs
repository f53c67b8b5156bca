//! Durable queue in the shared redb file: the local runner's stand-in for SQS, with the
//! semantics of `crate::ports::queue` (visibility timeout, receipts, dead-lettering).
//!
//! Each queue owns three tables named after it, so several queues share one file:
//! - `queue/{name}/messages`: message id → stored message (JSON);
//! - `queue/{name}/ready`: (visible-at in unix ms, message id) → (), the delivery order;
//! - `queue/{name}/dead`: message id → dead-lettered message (JSON).
//!
//! Message ids are monotonic ULIDs, so messages visible at the same instant come out in send
//! order. A receipt is `{message id}.{delivery token}`; only the newest delivery's receipt
//! acts, so an `ack` or `release` from a consumer whose delivery timed out is ignored rather
//! than touching the message another consumer now holds.
//!
//! Long polling: `send` and `release` wake in-process receivers through a `Notify` shared by
//! clones of one `RedbQueue`; other instances over the same file notice within
//! [`POLL_INTERVAL`].

use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use ulid::Ulid;

use crate::ports::queue::{Queue, QueueError, ReceivedMessage};

/// How often a waiting receiver re-checks the file when nothing wakes it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A durable SQS-like queue stored in a redb database. Cheap to clone; clones share wake-ups.
#[derive(Clone)]
pub struct RedbQueue {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<redb::Database>,
    tables: TableNames,
    max_receives: u32,
    notify: Notify,
}

struct TableNames {
    messages: String,
    ready: String,
    dead: String,
}

#[derive(Serialize, Deserialize)]
struct StoredMessage {
    body: String,
    receive_count: u32,
    visible_at_ms: u64,
    /// The receipt of the latest delivery; `None` until first received.
    receipt: Option<String>,
    sent_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct DeadMessage {
    body: String,
    receive_count: u32,
    sent_at_ms: u64,
    dead_lettered_at_ms: u64,
}

type MessagesTable<'a> = TableDefinition<'a, &'static str, &'static [u8]>;
type ReadyTable<'a> = TableDefinition<'a, (u64, &'static str), ()>;

impl RedbQueue {
    /// Opens (creating its tables if needed) the queue `name` in `db`. A message received
    /// `max_receives` times without an ack is dead-lettered instead of delivered again.
    pub async fn open(db: Arc<redb::Database>, name: &str, max_receives: u32) -> Result<Self, QueueError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(QueueError::Backend(format!("invalid queue name {name:?}: use [A-Za-z0-9_-]")));
        }
        if max_receives == 0 {
            return Err(QueueError::Backend("max_receives must be at least 1".into()));
        }
        let tables = TableNames { messages: format!("queue/{name}/messages"), ready: format!("queue/{name}/ready"), dead: format!("queue/{name}/dead") };
        let queue = Self { inner: Arc::new(Inner { db, tables, max_receives, notify: Notify::new() }) };
        queue
            .blocking(|inner| {
                let txn = inner.db.begin_write()?;
                txn.open_table(inner.messages())?;
                txn.open_table(inner.ready())?;
                txn.open_table(inner.dead())?;
                txn.commit()?;
                Ok(())
            })
            .await?;
        Ok(queue)
    }

    /// Runs redb work off the async runtime's worker threads.
    async fn blocking<T, F>(&self, work: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| QueueError::Backend(format!("queue task failed: {e}")))?
            .map_err(|e| QueueError::Backend(e.to_string()))
    }
}

#[async_trait]
impl Queue for RedbQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let id = next_message_id();
        let now = now_ms();
        let message = StoredMessage { body: body.to_owned(), receive_count: 0, visible_at_ms: now, receipt: None, sent_at_ms: now };
        let key = id.clone();
        self.blocking(move |inner| {
            let txn = inner.db.begin_write()?;
            {
                txn.open_table(inner.messages())?.insert(key.as_str(), encode(&message)?.as_slice())?;
                txn.open_table(inner.ready())?.insert((now, key.as_str()), ())?;
            }
            txn.commit()?;
            Ok(())
        })
        .await?;
        self.inner.notify.notify_waiters();
        Ok(id)
    }

    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = max.clamp(1, 10);
        let visibility_ms = u64::try_from(visibility.as_millis()).unwrap_or(u64::MAX);
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a `send` that lands after the look still wakes us.
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let (batch, next_visible_in) = self.blocking(move |inner| inner.take_due(max, visibility_ms)).await?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut nap = (deadline - now).min(POLL_INTERVAL);
            if let Some(next) = next_visible_in {
                nap = nap.min(next);
            }
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let (id, receipt) = parse_receipt(receipt)?;
        self.blocking(move |inner| {
            let txn = inner.db.begin_write()?;
            {
                let mut messages = txn.open_table(inner.messages())?;
                let current = match messages.get(id.as_str())? {
                    Some(raw) => decode::<StoredMessage>(raw.value())?,
                    None => return Ok(()),
                };
                if current.receipt.as_deref() != Some(receipt.as_str()) {
                    return Ok(());
                }
                messages.remove(id.as_str())?;
                txn.open_table(inner.ready())?.remove((current.visible_at_ms, id.as_str()))?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let (id, receipt) = parse_receipt(receipt)?;
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let released = self
            .blocking(move |inner| {
                let txn = inner.db.begin_write()?;
                {
                    let mut messages = txn.open_table(inner.messages())?;
                    let mut current = match messages.get(id.as_str())? {
                        Some(raw) => decode::<StoredMessage>(raw.value())?,
                        None => return Ok(false),
                    };
                    if current.receipt.as_deref() != Some(receipt.as_str()) {
                        return Ok(false);
                    }
                    let mut ready = txn.open_table(inner.ready())?;
                    ready.remove((current.visible_at_ms, id.as_str()))?;
                    current.visible_at_ms = now_ms().saturating_add(delay_ms);
                    ready.insert((current.visible_at_ms, id.as_str()), ())?;
                    messages.insert(id.as_str(), encode(&current)?.as_slice())?;
                }
                txn.commit()?;
                Ok(true)
            })
            .await?;
        if released && delay.is_zero() {
            self.inner.notify.notify_waiters();
        }
        Ok(())
    }

    async fn dead_letter_count(&self) -> Result<usize, QueueError> {
        self.blocking(|inner| {
            let txn = inner.db.begin_read()?;
            match txn.open_table(inner.dead()) {
                Ok(table) => Ok(usize::try_from(table.len()?).unwrap_or(usize::MAX)),
                Err(TableError::TableDoesNotExist(_)) => Ok(0),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn peek_dead_letters(&self, max: usize) -> Result<Vec<String>, QueueError> {
        self.blocking(move |inner| {
            let txn = inner.db.begin_read()?;
            let table = match txn.open_table(inner.dead()) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut bodies = Vec::new();
            for entry in table.iter()?.take(max) {
                let (_, raw) = entry?;
                bodies.push(decode::<DeadMessage>(raw.value())?.body);
            }
            Ok(bodies)
        })
        .await
    }
}

impl Inner {
    fn messages(&self) -> MessagesTable<'_> {
        TableDefinition::new(&self.tables.messages)
    }

    fn ready(&self) -> ReadyTable<'_> {
        TableDefinition::new(&self.tables.ready)
    }

    fn dead(&self) -> MessagesTable<'_> {
        TableDefinition::new(&self.tables.dead)
    }

    /// Delivers up to `max` due messages (dead-lettering the exhausted ones on the way) and
    /// reports how long until the next hidden message becomes visible.
    fn take_due(&self, max: usize, visibility_ms: u64) -> Result<(Vec<ReceivedMessage>, Option<Duration>), StoreError> {
        let now = now_ms();
        // Idle polls only read: the write lock is shared with the key-value store.
        if let Some(wait) = self.nothing_due(now)? {
            return Ok((Vec::new(), wait));
        }
        // Redelivery is never earlier than the next millisecond, so this call cannot see a
        // message it has just delivered, even with a zero visibility timeout.
        let hidden_until = now.saturating_add(visibility_ms.max(1));
        let mut delivered = Vec::new();
        let mut dead_lettered = false;
        let txn = self.db.begin_write()?;
        let next_visible_in;
        {
            let mut messages = txn.open_table(self.messages())?;
            let mut ready = txn.open_table(self.ready())?;
            let mut dead = txn.open_table(self.dead())?;
            while delivered.len() < max {
                let (visible_at, id) = match ready.first()? {
                    Some((key, _)) => {
                        let (visible_at, id) = key.value();
                        (visible_at, id.to_owned())
                    }
                    None => break,
                };
                if visible_at > now {
                    break;
                }
                ready.remove((visible_at, id.as_str()))?;
                let Some(raw) = messages.remove(id.as_str())? else {
                    continue;
                };
                let mut message = decode::<StoredMessage>(raw.value())?;
                drop(raw);
                if message.receive_count >= self.max_receives {
                    let dead_message =
                        DeadMessage { body: message.body, receive_count: message.receive_count, sent_at_ms: message.sent_at_ms, dead_lettered_at_ms: now };
                    dead.insert(id.as_str(), encode(&dead_message)?.as_slice())?;
                    dead_lettered = true;
                    continue;
                }
                let receipt = format!("{id}.{}", Ulid::new());
                message.receive_count += 1;
                message.visible_at_ms = hidden_until;
                message.receipt = Some(receipt.clone());
                messages.insert(id.as_str(), encode(&message)?.as_slice())?;
                ready.insert((hidden_until, id.as_str()), ())?;
                delivered.push(ReceivedMessage { message_id: id, receipt, body: message.body, receive_count: message.receive_count });
            }
            next_visible_in = ready.first()?.map(|(key, _)| Duration::from_millis(key.value().0.saturating_sub(now)));
        }
        if delivered.is_empty() && !dead_lettered {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok((delivered, next_visible_in))
    }

    /// `Some(time until the next message shows)` when no message is due at `now`.
    fn nothing_due(&self, now: u64) -> Result<Option<Option<Duration>>, StoreError> {
        let txn = self.db.begin_read()?;
        let ready = txn.open_table(self.ready())?;
        Ok(match ready.first()? {
            None => Some(None),
            Some((key, _)) => {
                let visible_at = key.value().0;
                (visible_at > now).then(|| Some(Duration::from_millis(visible_at - now)))
            }
        })
    }
}

/// Splits a receipt into (message id, full receipt); the id locates the message, the whole
/// receipt must match its latest delivery.
fn parse_receipt(receipt: &str) -> Result<(String, String), QueueError> {
    match receipt.split_once('.') {
        Some((id, token)) if Ulid::from_string(id).is_ok() && Ulid::from_string(token).is_ok() => Ok((id.to_owned(), receipt.to_owned())),
        _ => Err(QueueError::Backend("malformed receipt".into())),
    }
}

/// Monotonic within the process, so ids sort in send order even within one millisecond.
pub(crate) fn next_monotonic_ulid() -> Ulid {
    static GENERATOR: LazyLock<Mutex<ulid::Generator>> = LazyLock::new(|| Mutex::new(ulid::Generator::new()));
    let generated = match GENERATOR.lock() {
        Ok(mut generator) => generator.generate().ok(),
        Err(poisoned) => poisoned.into_inner().generate().ok(),
    };
    // Overflow of the random part within one millisecond is astronomically rare; a fresh ULID is still unique.
    generated.unwrap_or_else(Ulid::new)
}

fn next_message_id() -> String {
    next_monotonic_ulid().to_string()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

fn decode<T: for<'de> Deserialize<'de>>(raw: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(raw)?)
}

/// Everything that can go wrong inside a redb transaction, so `?` works on every redb call.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error(transparent)]
    Redb(#[from] redb::Error),
    #[error("corrupt queue record: {0}")]
    Codec(#[from] serde_json::Error),
}

macro_rules! redb_error_into_store_error {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(error: $error) -> Self {
                Self::Redb(error.into())
            }
        }
    )*};
}

redb_error_into_store_error!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

//! Transactional outbox: an event is committed in the same key-value transaction as the state
//! change that causes it, then relayed to the queue right away and by a periodic sweep.
//! A crash between commit and relay loses nothing (the sweep finds it); a crash between send
//! and delete sends twice, which consumers absorb by deduplicating on `Event::id`.

use std::sync::Arc;
use std::time::Duration;

use crate::events::Event;
use crate::ports::{Clock, Condition, Item, KeyValue, KvError, Query, Queue, QueueError, SystemClock, TxOp};

const OUTBOX_PK: &str = "OUTBOX";

/// The transaction op that stages `event`; add it to the state change's `transact`.
pub fn stage(event: &Event) -> Result<TxOp, KvError> {
    Ok(TxOp::Put { item: Item::json(OUTBOX_PK, event.id.clone(), event)?, condition: Condition::NotExists })
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

#[derive(Clone)]
pub struct Relay {
    kv: Arc<dyn KeyValue>,
    queue: Arc<dyn Queue>,
    /// Off only to simulate a crash between commit and relay (tests, drills).
    inline: bool,
    clock: Arc<dyn Clock>,
}

impl Relay {
    pub fn new(kv: Arc<dyn KeyValue>, queue: Arc<dyn Queue>) -> Self {
        Self { kv, queue, inline: true, clock: Arc::new(SystemClock) }
    }

    /// The clock the sweep measures event age by.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// With `false`, `publish` leaves events to the sweep, exactly as if the process had died
    /// right after committing them.
    pub fn with_inline_publish(mut self, inline: bool) -> Self {
        self.inline = inline;
        self
    }

    /// Commits `ops` together with the outbox items of `events` in one transaction, then
    /// publishes the events. The state change and its events exist together or not at all.
    pub async fn commit(&self, mut ops: Vec<TxOp>, events: &[Event]) -> Result<(), KvError> {
        for event in events {
            ops.push(stage(event)?);
        }
        self.kv.transact(ops).await?;
        self.publish(events).await;
        Ok(())
    }

    /// Publishes events that were just committed. Failures are logged, not returned: the
    /// state change already happened and the sweep will deliver them.
    pub async fn publish(&self, events: &[Event]) {
        if !self.inline {
            return;
        }
        for event in events {
            if let Err(e) = self.relay_one(event).await {
                tracing::warn!(event_id = %event.id, error = %e, "outbox relay deferred to sweep");
            }
        }
    }

    /// Relays every staged event older than `min_age` (younger ones are probably being relayed
    /// by the request that wrote them). Returns how many were relayed.
    pub async fn sweep(&self, min_age: Duration) -> Result<usize, RelayError> {
        let cutoff = self.clock.now() - chrono::Duration::from_std(min_age).unwrap_or_default();
        let mut relayed = 0;
        let mut cursor = None;
        loop {
            let page = self.kv.query(Query::partition(OUTBOX_PK).limit(100).after(cursor)).await?;
            for item in &page.items {
                let event: Event = match item.parse() {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!(sk = %item.sk, error = %e, "dropping unreadable outbox item");
                        self.kv.delete(OUTBOX_PK, &item.sk, Condition::None).await?;
                        continue;
                    }
                };
                if event.at <= cutoff {
                    self.relay_one(&event).await?;
                    relayed += 1;
                }
            }
            match page.last_key {
                Some(k) => cursor = Some(k),
                None => break,
            }
        }
        Ok(relayed)
    }

    async fn relay_one(&self, event: &Event) -> Result<(), RelayError> {
        let body = serde_json::to_string(event).map_err(|e| KvError::Backend(e.to_string()))?;
        self.queue.send(&body).await?;
        self.kv.delete(OUTBOX_PK, &event.id, Condition::None).await?;
        tracing::info!(event_id = %event.id, event_type = event.type_name(), "event relayed");
        Ok(())
    }
}

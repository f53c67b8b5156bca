//! Queue port, SQS-shaped: at-least-once delivery with a visibility timeout, explicit
//! acknowledgement, and a dead-letter queue after `max_receives` deliveries.
//!
//! Semantics every adapter must honour (contract tests in `tests/queue_contract.rs`):
//! - A received message is invisible to other receivers until its visibility timeout passes;
//!   unacknowledged, it is delivered again with `receive_count` increased by one.
//! - A message received `max_receives` times without ack moves to the dead-letter queue
//!   instead of being delivered again (SQS redrive policy semantics).
//! - `ack` with a stale receipt (the message was re-delivered since) may fail or be ignored;
//!   it never deletes a message another receiver now holds... on SQS this is best effort.

use std::time::Duration;

use async_trait::async_trait;

#[derive(Clone, Debug)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Opaque handle for `ack`/`release`; changes on every delivery.
    pub receipt: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue backend: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues a message; returns its id.
    async fn send(&self, body: &str) -> Result<String, QueueError>;
    /// Receives up to `max` messages (1..=10), hiding them for `visibility`.
    /// Waits at most `wait` for the first message (long polling); returns empty on timeout.
    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError>;
    /// Deletes a delivered message for good.
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;
    /// Makes a delivered message visible again after `delay` (a failed attempt).
    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError>;
    /// Number of messages currently in the dead-letter queue (ops and tests).
    async fn dead_letter_count(&self) -> Result<usize, QueueError>;
    /// Reads (without removing) up to `max` dead-lettered message bodies.
    async fn peek_dead_letters(&self, max: usize) -> Result<Vec<String>, QueueError>;
}

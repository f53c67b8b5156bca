//! Queue consumers: one `MessageHandler` per function, driven either by the local poller
//! (`run_consumer`, used by the local runner and plain containers) or by Lambda's SQS event
//! source (`sqs_batch_handler`). Both give the same guarantees: a message is deleted only after
//! its handler succeeded; every failure goes back to the queue, whose redrive policy
//! (`max_receives`) moves it to the dead-letter queue once it has failed often enough.
//!
//! Handlers must be idempotent: delivery is at least once on every backend.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;

use crate::ports::queue::{Queue, ReceivedMessage};

/// Why a message could not be handled. Reasons are logged, so they must never contain
/// personal data, codes or the message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Temporary (a dependency is down, throttling, a concurrent delivery holds the work):
    /// the same message may succeed later.
    #[error("retry: {0}")]
    Retry(String),
    /// Malformed or poisoned: the message will never succeed and belongs in the dead-letter queue.
    #[error("reject: {0}")]
    Reject(String),
}

#[async_trait]
pub trait MessageHandler: Send + Sync {
    async fn handle(&self, body: &str) -> Result<(), HandlerError>;
}

/// Tuning of the local poller. The defaults suit the events queue.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// Messages fetched per receive call (1..=10, the SQS limit).
    pub batch_size: usize,
    /// How long a received message stays hidden from other consumers; must exceed the slowest handling.
    pub visibility_timeout: Duration,
    /// Long-poll wait of one receive call.
    pub wait: Duration,
    /// Messages of one batch handled at the same time.
    pub concurrency: usize,
    /// Delay before the second delivery after a `Retry`; doubles with every further delivery.
    pub retry_base: Duration,
    /// Upper bound of the retry delay.
    pub retry_cap: Duration,
    /// Pause after a failed receive call, so a broken backend is not hammered.
    pub receive_error_pause: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            batch_size: 10,
            visibility_timeout: Duration::from_secs(60),
            wait: Duration::from_secs(20),
            concurrency: 10,
            // Doubling from 10 s, five receives span minutes: long enough for a crashed handler's lease to lapse.
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(15 * 60),
            receive_error_pause: Duration::from_secs(5),
        }
    }
}

/// Polls `queue` and hands every message to `handler` until `shutdown` completes.
///
/// - Success: the message is acknowledged (deleted).
/// - `Retry`: the message is released with an exponential delay (`retry_delay`).
/// - `Reject`: the message is released at once, *not* acknowledged, so the queue's redrive
///   policy moves it to the dead-letter queue after `max_receives` deliveries. The queue port
///   has no "send to DLQ" operation, and going through redrive keeps one road to the DLQ on every
///   backend (the same as Lambda with SQS): the DLQ holds the original message, and a handler
///   that rejects by mistake gets a few more chances instead of losing the message. Rejecting
///   handlers must therefore be cheap and free of side effects on repeat.
///
/// Shutdown is graceful: a pending receive is abandoned (its messages, if any, reappear after
/// the visibility timeout), but a batch being handled is finished and settled first.
pub async fn run_consumer(queue: Arc<dyn Queue>, handler: Arc<dyn MessageHandler>, opts: ConsumerOptions, shutdown: impl Future<Output = ()>) {
    let batch_size = opts.batch_size.clamp(1, 10);
    let concurrency = opts.concurrency.max(1);
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(batch_size, concurrency, "queue consumer started");
    loop {
        let received = tokio::select! {
            biased;
            () = &mut shutdown => break,
            received = queue.receive(batch_size, opts.visibility_timeout, opts.wait) => received,
        };
        let batch = match received {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "queue receive failed; pausing before the next poll");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(opts.receive_error_pause) => continue,
                }
            }
        };
        futures::stream::iter(batch).for_each_concurrent(concurrency, |message| settle(queue.as_ref(), handler.as_ref(), &opts, message)).await;
    }
    tracing::info!("queue consumer stopped");
}

/// Handles one received message and acknowledges or releases it.
async fn settle(queue: &dyn Queue, handler: &dyn MessageHandler, opts: &ConsumerOptions, message: ReceivedMessage) {
    let message_id = message.message_id.as_str();
    let receive_count = message.receive_count;
    match handle_caught(handler, &message.body).await {
        Ok(()) => {
            tracing::debug!(message_id, receive_count, outcome = "done", "message handled");
            if let Err(error) = queue.ack(&message.receipt).await {
                // The handler is idempotent, so a redelivery after a lost ack is harmless.
                tracing::warn!(message_id, %error, "ack failed; the message will be redelivered");
            }
        }
        Err(HandlerError::Retry(reason)) => {
            let delay = retry_delay(receive_count, opts.retry_base, opts.retry_cap);
            tracing::warn!(message_id, receive_count, reason, delay_secs = delay.as_secs(), outcome = "retry", "message will be retried");
            release(queue, message_id, &message.receipt, delay).await;
        }
        Err(HandlerError::Reject(reason)) => {
            tracing::error!(
                message_id,
                receive_count,
                reason,
                outcome = "reject",
                "message rejected; it goes to the dead-letter queue after its last delivery"
            );
            release(queue, message_id, &message.receipt, Duration::ZERO).await;
        }
    }
}

/// Runs the handler and turns a panic into `Retry`, so one bad message cannot stop the
/// consumer. The panic payload is not logged: it may quote the message body.
async fn handle_caught(handler: &dyn MessageHandler, body: &str) -> Result<(), HandlerError> {
    use futures::FutureExt as _;
    match std::panic::AssertUnwindSafe(handler.handle(body)).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => Err(HandlerError::Retry("handler panicked".to_owned())),
    }
}

async fn release(queue: &dyn Queue, message_id: &str, receipt: &str, delay: Duration) {
    if let Err(error) = queue.release(receipt, delay).await {
        // Not fatal: the message reappears anyway when its visibility timeout ends.
        tracing::warn!(message_id, %error, "release failed; the message reappears after its visibility timeout");
    }
}

/// Delay before the next delivery of a message that failed on its `receive_count`-th delivery:
/// `base · 2^(receive_count − 1)`, never more than `cap`.
pub fn retry_delay(receive_count: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(31);
    base.checked_mul(1u32 << doublings).unwrap_or(cap).min(cap)
}

/// Records handled at once by `sqs_batch_handler` unless the caller says otherwise.
pub const DEFAULT_BATCH_CONCURRENCY: usize = 10;

/// Runs `handler` over every record of a Lambda SQS event (at most `concurrency` at a time) and
/// reports each failed record — `Retry` and `Reject` alike — in `batch_item_failures`, so SQS
/// keeps it and its redrive policy moves poison messages to the DLQ. Never fails the whole
/// batch. Requires `ReportBatchItemFailures` on the event source mapping and a standard queue
/// (a FIFO queue would need every record after the first failure reported too).
pub async fn sqs_batch_handler(handler: &dyn MessageHandler, event: SqsEvent, concurrency: usize) -> SqsBatchResponse {
    let failures: Vec<String> = futures::stream::iter(event.records)
        .map(|record| handle_record(handler, record))
        .buffered(concurrency.max(1))
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.set_failures(failures);
    response
}

/// Handles one SQS record; returns its message id when it must be reported as failed.
async fn handle_record(handler: &dyn MessageHandler, record: SqsMessage) -> Option<String> {
    let receive_count = record.attributes.get("ApproximateReceiveCount").map(String::as_str).unwrap_or("?").to_owned();
    let Some(message_id) = record.message_id.filter(|id| !id.is_empty()) else {
        // Lambda would fail the whole batch on an empty identifier, so such a record cannot be reported.
        tracing::error!("SQS record without a message id; skipped");
        return None;
    };
    let outcome = match record.body.as_deref() {
        None => Err(HandlerError::Reject("record has no body".to_owned())),
        Some(body) => handle_caught(handler, body).await,
    };
    match outcome {
        Ok(()) => {
            tracing::debug!(message_id, receive_count, outcome = "done", "record handled");
            None
        }
        Err(HandlerError::Retry(reason)) => {
            tracing::warn!(message_id, receive_count, reason, outcome = "retry", "record will be retried");
            Some(message_id)
        }
        Err(HandlerError::Reject(reason)) => {
            tracing::error!(message_id, receive_count, reason, outcome = "reject", "record rejected; it goes to the dead-letter queue after its last delivery");
            Some(message_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ports::queue::QueueError;

    /// In-memory queue with SQS redrive semantics; release delays are recorded, not waited for.
    struct FakeQueue {
        state: Mutex<FakeQueueState>,
        max_receives: u32,
    }

    #[derive(Default)]
    struct FakeQueueState {
        visible: VecDeque<(String, String, u32)>,
        in_flight: HashMap<String, (String, String, u32)>,
        dead: Vec<String>,
        acked: Vec<String>,
        releases: Vec<(String, Duration)>,
        receipts_issued: u64,
        failing_receives: u32,
    }

    impl FakeQueue {
        fn new(max_receives: u32) -> Arc<Self> {
            Arc::new(Self { state: Mutex::new(FakeQueueState::default()), max_receives })
        }

        fn fail_next_receives(&self, n: u32) {
            self.state.lock().unwrap().failing_receives = n;
        }

        fn acked(&self) -> Vec<String> {
            self.state.lock().unwrap().acked.clone()
        }

        fn releases(&self) -> Vec<(String, Duration)> {
            self.state.lock().unwrap().releases.clone()
        }

        fn dead(&self) -> Vec<String> {
            self.state.lock().unwrap().dead.clone()
        }

        fn is_drained(&self) -> bool {
            let state = self.state.lock().unwrap();
            state.visible.is_empty() && state.in_flight.is_empty()
        }
    }

    #[async_trait]
    impl Queue for FakeQueue {
        async fn send(&self, body: &str) -> Result<String, QueueError> {
            let mut state = self.state.lock().unwrap();
            let id = format!("m{}", state.visible.len() + state.in_flight.len() + state.acked.len() + state.dead.len());
            state.visible.push_back((id.clone(), body.to_owned(), 0));
            Ok(id)
        }

        async fn receive(&self, max: usize, _visibility: Duration, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
            let batch = {
                let mut state = self.state.lock().unwrap();
                if state.failing_receives > 0 {
                    state.failing_receives -= 1;
                    return Err(QueueError::Backend("receive refused".to_owned()));
                }
                let mut batch = Vec::new();
                while batch.len() < max {
                    let Some((id, body, count)) = state.visible.pop_front() else { break };
                    if count >= self.max_receives {
                        state.dead.push(body);
                        continue;
                    }
                    state.receipts_issued += 1;
                    let receipt = format!("r{}", state.receipts_issued);
                    state.in_flight.insert(receipt.clone(), (id.clone(), body.clone(), count + 1));
                    batch.push(ReceivedMessage { message_id: id, receipt, body, receive_count: count + 1 });
                }
                batch
            };
            if batch.is_empty() {
                tokio::time::sleep(wait.min(Duration::from_millis(5))).await;
            }
            Ok(batch)
        }

        async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
            let mut state = self.state.lock().unwrap();
            let (id, _, _) = state.in_flight.remove(receipt).ok_or_else(|| QueueError::Backend("stale receipt".to_owned()))?;
            state.acked.push(id);
            Ok(())
        }

        async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
            let mut state = self.state.lock().unwrap();
            let message = state.in_flight.remove(receipt).ok_or_else(|| QueueError::Backend("stale receipt".to_owned()))?;
            state.releases.push((message.0.clone(), delay));
            state.visible.push_back(message);
            Ok(())
        }

        async fn dead_letter_count(&self) -> Result<usize, QueueError> {
            Ok(self.state.lock().unwrap().dead.len())
        }

        async fn peek_dead_letters(&self, max: usize) -> Result<Vec<String>, QueueError> {
            Ok(self.state.lock().unwrap().dead.iter().take(max).cloned().collect())
        }
    }

    /// Answers from a script per body ("ok", "retry-N" = N retries then ok, "reject"), counting calls.
    #[derive(Default)]
    struct ScriptedHandler {
        calls: Mutex<HashMap<String, u32>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        delay: Duration,
    }

    impl ScriptedHandler {
        fn slow(delay: Duration) -> Arc<Self> {
            Arc::new(Self { delay, ..Self::default() })
        }

        fn calls(&self, body: &str) -> u32 {
            self.calls.lock().unwrap().get(body).copied().unwrap_or(0)
        }
    }

    #[async_trait]
    impl MessageHandler for ScriptedHandler {
        async fn handle(&self, body: &str) -> Result<(), HandlerError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let call = {
                let mut calls = self.calls.lock().unwrap();
                let call = calls.entry(body.to_owned()).or_default();
                *call += 1;
                *call
            };
            match body.split_once('-') {
                _ if body == "reject" => Err(HandlerError::Reject("poison".to_owned())),
                _ if body == "panic" => panic!("handler bug"),
                Some(("retry", n)) if call <= n.parse().unwrap() => Err(HandlerError::Retry("not yet".to_owned())),
                _ => Ok(()),
            }
        }
    }

    fn fast_options() -> ConsumerOptions {
        ConsumerOptions {
            wait: Duration::from_millis(5),
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(60),
            receive_error_pause: Duration::from_millis(5),
            ..ConsumerOptions::default()
        }
    }

    /// Runs the consumer until `done` holds (or 5 s pass), then shuts it down and waits for it.
    async fn consume_until(queue: Arc<FakeQueue>, handler: Arc<ScriptedHandler>, done: impl Fn(&FakeQueue) -> bool) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let consumer = tokio::spawn(run_consumer(queue.clone(), handler, fast_options(), async {
            let _ = stopped.await;
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !done(&queue) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), consumer).await.expect("consumer stops on shutdown").expect("consumer task does not panic");
    }

    /// One message `body` on a fresh queue that dead-letters after `max_receives`, consumed
    /// until the queue is drained.
    async fn drain_one(max_receives: u32, body: &str) -> (Arc<FakeQueue>, Arc<ScriptedHandler>, String) {
        let queue = FakeQueue::new(max_receives);
        let id = queue.send(body).await.unwrap();
        let handler = Arc::new(ScriptedHandler::default());
        consume_until(queue.clone(), handler.clone(), |q| q.is_drained()).await;
        (queue, handler, id)
    }

    #[tokio::test]
    async fn handled_message_is_acknowledged_once_and_never_released() {
        let (queue, handler, id) = drain_one(5, "ok").await;

        assert_eq!(queue.acked(), vec![id]);
        assert!(queue.releases().is_empty());
        assert_eq!(handler.calls("ok"), 1);
    }

    #[tokio::test]
    async fn retried_message_is_released_with_doubling_delays_then_acknowledged() {
        let (queue, handler, id) = drain_one(5, "retry-2").await;

        assert_eq!(queue.releases(), vec![(id.clone(), Duration::from_secs(2)), (id.clone(), Duration::from_secs(4))]);
        assert_eq!(queue.acked(), vec![id]);
        assert_eq!(handler.calls("retry-2"), 3);
    }

    #[tokio::test]
    async fn rejected_message_lands_in_the_dead_letter_queue_without_being_acknowledged() {
        let (queue, handler, _) = drain_one(3, "reject").await;

        assert_eq!(queue.dead(), vec!["reject".to_owned()]);
        assert!(queue.acked().is_empty());
        assert!(queue.releases().iter().all(|(_, delay)| delay.is_zero()));
        assert_eq!(handler.calls("reject"), 3);
    }

    #[tokio::test]
    async fn a_panicking_handler_releases_its_message_with_backoff_and_the_consumer_keeps_polling() {
        let queue = FakeQueue::new(3);
        let poison = queue.send("panic").await.unwrap();
        let handler = Arc::new(ScriptedHandler::default());
        let sent_later = queue.clone();
        let fine = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sent_later.send("ok").await.unwrap()
        });

        consume_until(queue.clone(), handler.clone(), |q| q.is_drained() && q.acked().len() == 1).await;

        assert_eq!(queue.acked(), vec![fine.await.unwrap()], "messages after the panic are still handled");
        assert_eq!(queue.dead(), vec!["panic".to_owned()]);
        assert_eq!(
            queue.releases(),
            vec![(poison.clone(), Duration::from_secs(2)), (poison.clone(), Duration::from_secs(4)), (poison, Duration::from_secs(8))]
        );
        assert_eq!(handler.calls("panic"), 3);
    }

    #[tokio::test]
    async fn message_that_keeps_asking_for_retry_ends_in_the_dead_letter_queue() {
        let (queue, handler, _) = drain_one(3, "retry-99").await;

        assert_eq!(queue.dead(), vec!["retry-99".to_owned()]);
        assert_eq!(handler.calls("retry-99"), 3);
    }

    #[tokio::test]
    async fn consumer_keeps_polling_after_failed_receives() {
        let queue = FakeQueue::new(5);
        queue.fail_next_receives(3);
        let id = queue.send("ok").await.unwrap();
        let handler = Arc::new(ScriptedHandler::default());

        consume_until(queue.clone(), handler, |q| q.is_drained()).await;

        assert_eq!(queue.acked(), vec![id]);
    }

    #[tokio::test]
    async fn shutdown_lets_the_batch_in_flight_finish_and_settle() {
        let queue = FakeQueue::new(5);
        let id = queue.send("ok").await.unwrap();
        let handler = ScriptedHandler::slow(Duration::from_millis(200));

        // Stop as soon as the handler has started: the message must still be acknowledged.
        let started = handler.clone();
        consume_until(queue.clone(), handler.clone(), move |_| started.in_flight.load(Ordering::SeqCst) > 0).await;

        assert_eq!(queue.acked(), vec![id]);
        assert_eq!(handler.calls("ok"), 1);
    }

    #[tokio::test]
    async fn consumer_handles_a_batch_concurrently_within_the_limit() {
        let queue = FakeQueue::new(5);
        for _ in 0..6 {
            queue.send("ok").await.unwrap();
        }
        let handler = ScriptedHandler::slow(Duration::from_millis(30));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let opts = ConsumerOptions { concurrency: 3, ..fast_options() };
        let consumer = tokio::spawn(run_consumer(queue.clone(), handler.clone(), opts, async {
            let _ = stopped.await;
        }));
        while queue.acked().len() < 6 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop.send(());
        consumer.await.unwrap();

        assert_eq!(handler.max_in_flight.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn retry_delay_doubles_per_delivery_and_stops_at_the_cap() {
        let base = Duration::from_secs(5);
        let cap = Duration::from_secs(60);
        let delays: Vec<u64> = (0..=6).map(|n| retry_delay(n, base, cap).as_secs()).collect();
        assert_eq!(delays, vec![5, 5, 10, 20, 40, 60, 60]);
        assert_eq!(retry_delay(u32::MAX, base, cap), cap);
    }

    fn sqs_event(bodies: &[Option<&str>]) -> SqsEvent {
        let records = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let mut record = SqsMessage::default();
                record.message_id = Some(format!("id-{i}"));
                record.body = body.map(str::to_owned);
                record
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        event
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test]
    async fn batch_reports_retried_and_rejected_records_but_not_handled_ones() {
        let handler = ScriptedHandler::default();
        let event = sqs_event(&[Some("ok"), Some("retry-1"), Some("reject"), Some("ok")]);

        let response = sqs_batch_handler(&handler, event, DEFAULT_BATCH_CONCURRENCY).await;

        assert_eq!(failed_ids(&response), vec!["id-1", "id-2"]);
        assert_eq!(handler.calls("ok"), 2);
    }

    #[tokio::test]
    async fn batch_record_without_body_is_reported_without_calling_the_handler() {
        let handler = ScriptedHandler::default();

        let response = sqs_batch_handler(&handler, sqs_event(&[None, Some("ok")]), DEFAULT_BATCH_CONCURRENCY).await;

        assert_eq!(failed_ids(&response), vec!["id-0"]);
        assert_eq!(handler.calls.lock().unwrap().values().sum::<u32>(), 1);
    }

    #[tokio::test]
    async fn batch_handles_records_concurrently_up_to_the_limit() {
        let handler = ScriptedHandler::slow(Duration::from_millis(30));
        let event = sqs_event(&[Some("ok"); 7]);

        let response = sqs_batch_handler(handler.as_ref(), event, 2).await;

        assert!(response.batch_item_failures.is_empty());
        assert_eq!(handler.calls("ok"), 7);
        assert_eq!(handler.max_in_flight.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn batch_response_serialises_in_the_shape_lambda_expects() {
        let handler = ScriptedHandler::default();

        let response = sqs_batch_handler(&handler, sqs_event(&[Some("reject")]), 1).await;

        assert_eq!(serde_json::to_value(&response).unwrap(), serde_json::json!({"batchItemFailures": [{"itemIdentifier": "id-0"}]}));
    }
}

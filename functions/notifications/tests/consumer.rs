//! The local path: the embedded durable queue, `run_consumer` and the Notifier together, as the
//! local runner wires them.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Harness, PHONE, body, harness, otp_event, sms};
use notifications::Notifier;
use shared::adapters::embedded::queue::RedbQueue;
use shared::ports::queue::Queue;
use shared::ports::senders::SendError;
use shared::worker::{ConsumerOptions, HandlerError, MessageHandler, run_consumer};

const MAX_RECEIVES: u32 = 3;

fn options() -> ConsumerOptions {
    ConsumerOptions {
        wait: Duration::from_millis(50),
        visibility_timeout: Duration::from_secs(30),
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(50),
        ..ConsumerOptions::default()
    }
}

/// Counts the messages its Notifier handled successfully.
struct Counting {
    notifier: Notifier,
    handled: AtomicUsize,
}

#[async_trait::async_trait]
impl MessageHandler for Counting {
    async fn handle(&self, body: &str) -> Result<(), HandlerError> {
        let outcome = self.notifier.handle(body).await;
        if outcome.is_ok() {
            self.handled.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }
}

/// Runs the consumer until `done` holds (at most 10 s), then stops it gracefully.
async fn consume_until<F, Fut>(queue: Arc<RedbQueue>, notifier: Arc<dyn MessageHandler>, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let consumer = tokio::spawn(run_consumer(queue, notifier, options(), async {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), consumer).await.expect("consumer stops").expect("consumer does not panic");
}

/// The harness with the embedded events queue in its store.
async fn queued() -> (common::Harness, Arc<RedbQueue>) {
    let harness = harness();
    let queue = Arc::new(RedbQueue::open(harness.store.database.clone(), "events", MAX_RECEIVES).await.unwrap());
    (harness, queue)
}

#[tokio::test]
async fn duplicate_messages_of_one_event_send_one_sms() {
    let (Harness { store: _store, sender, notifier }, queue) = queued().await;
    let counting = Arc::new(Counting { notifier, handled: AtomicUsize::new(0) });
    let message = body(&otp_event(sms(), "123456"));
    queue.send(&message).await.unwrap();
    queue.send(&message).await.unwrap();

    let probe = counting.clone();
    consume_until(queue.clone(), counting, || async { probe.handled.load(Ordering::SeqCst) == 2 }).await;

    assert_eq!(sender.sent_to(PHONE).len(), 1);
    assert_eq!(queue.dead_letter_count().await.unwrap(), 0);
}

#[tokio::test]
async fn temporary_failure_is_retried_by_the_queue_until_sent() {
    let (Harness { store: _store, sender, notifier }, queue) = queued().await;
    sender.fail_next([SendError::Temporary("throttled".to_owned()), SendError::Temporary("throttled".to_owned())]);
    queue.send(&body(&otp_event(sms(), "123456"))).await.unwrap();

    let probe = sender.clone();
    consume_until(queue.clone(), Arc::new(notifier), || async { !probe.sent().is_empty() }).await;

    assert_eq!(sender.sent_to(PHONE).len(), 1);
    assert_eq!(sender.attempts(), 3);
    assert_eq!(queue.dead_letter_count().await.unwrap(), 0);
}

#[tokio::test]
async fn poison_message_ends_in_the_dead_letter_queue() {
    let (Harness { store: _store, sender, notifier }, queue) = queued().await;
    queue.send("{\"not\": \"an event\"}").await.unwrap();

    let probe = queue.clone();
    consume_until(queue.clone(), Arc::new(notifier), || async { probe.dead_letter_count().await.unwrap() == 1 }).await;

    assert_eq!(queue.peek_dead_letters(10).await.unwrap(), vec!["{\"not\": \"an event\"}".to_owned()]);
    assert_eq!(sender.attempts(), 0);
}

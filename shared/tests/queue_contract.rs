//! Contract tests for the queue port (`shared::ports::queue`): every check in
//! `contract_tests!` runs once against the embedded redb queue and once against SQS.
//!
//! The SQS run needs an emulator: set `AWS_ENDPOINT_URL` (e.g. a moto server) plus dummy
//! credentials and a region. Without it those tests print that they are skipped, unless
//! `REQUIRE_AWS_EMULATOR=1` makes a missing emulator a failure. Each SQS test creates its own
//! uniquely named queue pair, so tests run in parallel and can be re-run against one emulator.
//!
//! SQS counts visibility in whole seconds, so the checks use timeouts of a second or more.
//! Checks of guarantees only the embedded queue makes (order, stale receipts, durability
//! across a reopen) sit at the end, outside the shared contract.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use shared::adapters::aws::sdk_config;
use shared::adapters::aws::sqs::SqsQueue;
use shared::adapters::embedded::open_database;
use shared::adapters::embedded::queue::RedbQueue;
use shared::ports::queue::{Queue, ReceivedMessage};

mod common;
use common::contract_tests;

/// Every queue under test dead-letters a message on its third receive.
const MAX_RECEIVES: u32 = 2;
const LONG: Duration = Duration::from_secs(30);

contract_tests!(
    checks: {
        (fixture.queue.as_ref()) [
            acked_message_is_never_delivered_again, received_message_is_hidden_until_its_visibility_timeout_passes, released_message_is_delivered_again_at_once,
            release_with_a_delay_hides_the_message_for_that_delay, message_received_max_times_moves_to_the_dead_letter_queue,
            long_poll_returns_as_soon_as_a_message_arrives, long_poll_on_an_empty_queue_returns_nothing_after_the_wait,
            many_messages_are_each_delivered_exactly_once_when_acked,
        ]
    },
    embedded: { fixture = super::embedded_queue().await },
    sqs: { Some(fixture) = super::sqs_queue().await },
);

/// A queue under test together with whatever must outlive it.
struct Fixture {
    queue: Box<dyn Queue>,
    _dir: Option<tempfile::TempDir>,
}

async fn embedded_queue() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_database(&dir.path().join("data.redb")).expect("open redb");
    let queue = RedbQueue::open(db, "contract", MAX_RECEIVES).await.expect("open queue");
    Fixture { queue: Box::new(queue), _dir: Some(dir) }
}

async fn sqs_queue() -> Option<Fixture> {
    common::emulator("SQS")?;
    let client = aws_sdk_sqs::Client::new(&sdk_config().await);
    let name = format!("queue-contract-{}", ulid::Ulid::new().to_string().to_lowercase());
    let queue = SqsQueue::create_with_dlq(client, &name, MAX_RECEIVES).await.expect("create SQS queues");
    Some(Fixture { queue: Box::new(queue), _dir: None })
}

// ---------------------------------------------------------------------------------------------
// The shared contract
// ---------------------------------------------------------------------------------------------

async fn acked_message_is_never_delivered_again(queue: &dyn Queue) {
    let id = queue.send("hello").await.expect("send");
    let received = receive_one(queue, Duration::from_secs(1)).await;
    assert_eq!(received.message_id, id);
    assert_eq!(received.body, "hello");
    assert_eq!(received.receive_count, 1);

    queue.ack(&received.receipt).await.expect("ack");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = queue.receive(10, LONG, Duration::from_secs(1)).await.expect("receive");
    assert!(again.is_empty(), "an acked message came back: {again:?}");
    assert_eq!(queue.dead_letter_count().await.expect("count"), 0);
}

async fn received_message_is_hidden_until_its_visibility_timeout_passes(queue: &dyn Queue) {
    queue.send("hidden for a while").await.expect("send");
    let first = receive_one(queue, Duration::from_secs(2)).await;
    assert!(queue.receive(10, LONG, Duration::ZERO).await.expect("receive").is_empty(), "visible during its visibility timeout");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = receive_one(queue, LONG).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.body, "hidden for a while");
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt, "a receipt must change with each delivery");
    queue.ack(&second.receipt).await.expect("ack the latest delivery");
}

async fn released_message_is_delivered_again_at_once(queue: &dyn Queue) {
    queue.send("try again").await.expect("send");
    let first = receive_one(queue, LONG).await;
    queue.release(&first.receipt, Duration::ZERO).await.expect("release");

    let second = receive_one(queue, LONG).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.receive_count, 2);
    queue.ack(&second.receipt).await.expect("ack");
}

async fn release_with_a_delay_hides_the_message_for_that_delay(queue: &dyn Queue) {
    queue.send("later").await.expect("send");
    let first = receive_one(queue, LONG).await;
    queue.release(&first.receipt, Duration::from_secs(2)).await.expect("release");
    assert!(queue.receive(10, LONG, Duration::ZERO).await.expect("receive").is_empty(), "visible before the release delay passed");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = receive_one(queue, LONG).await;
    assert_eq!(second.message_id, first.message_id);
    queue.ack(&second.receipt).await.expect("ack");
}

async fn message_received_max_times_moves_to_the_dead_letter_queue(queue: &dyn Queue) {
    queue.send("poison").await.expect("send");
    for attempt in 1..=MAX_RECEIVES {
        let delivery = receive_one(queue, LONG).await;
        assert_eq!(delivery.receive_count, attempt);
        queue.release(&delivery.receipt, Duration::ZERO).await.expect("release");
    }

    let after = queue.receive(10, LONG, Duration::from_secs(1)).await.expect("receive");
    assert!(after.is_empty(), "delivered more than max_receives times: {after:?}");
    assert_eq!(queue.dead_letter_count().await.expect("count"), 1);
    assert_eq!(queue.peek_dead_letters(10).await.expect("peek"), ["poison"]);
    // Peeking must not consume.
    assert_eq!(queue.peek_dead_letters(10).await.expect("peek again"), ["poison"]);
    assert_eq!(queue.dead_letter_count().await.expect("count again"), 1);
    assert!(queue.receive(10, LONG, Duration::from_secs(1)).await.expect("receive").is_empty());
}

async fn long_poll_returns_as_soon_as_a_message_arrives(queue: &dyn Queue) {
    let wait = Duration::from_secs(10);
    let started = Instant::now();
    let (received, sent) = tokio::join!(queue.receive(10, LONG, wait), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        queue.send("wake up").await
    });
    let elapsed = started.elapsed();
    let received = received.expect("receive");
    sent.expect("send");
    assert_eq!(received.len(), 1, "long poll ended without the message");
    assert_eq!(received[0].body, "wake up");
    assert!(elapsed < Duration::from_secs(5), "long poll waited {elapsed:?} after the message arrived");
}

async fn long_poll_on_an_empty_queue_returns_nothing_after_the_wait(queue: &dyn Queue) {
    let started = Instant::now();
    let received = queue.receive(10, LONG, Duration::from_secs(1)).await.expect("receive");
    let elapsed = started.elapsed();
    assert!(received.is_empty());
    assert!(elapsed >= Duration::from_millis(900), "returned after {elapsed:?}, before the wait");
    assert!(elapsed < Duration::from_secs(5), "waited {elapsed:?} for a one-second poll");
}

async fn many_messages_are_each_delivered_exactly_once_when_acked(queue: &dyn Queue) {
    let expected: HashSet<String> = (0..50).map(|i| format!("message {i}")).collect();
    for body in &expected {
        queue.send(body).await.expect("send");
    }

    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < expected.len() && Instant::now() < deadline {
        for message in queue.receive(10, LONG, Duration::from_secs(1)).await.expect("receive") {
            assert!(message.receive_count == 1, "redelivered: {message:?}");
            assert!(seen.insert(message.body.clone()), "delivered twice: {}", message.body);
            queue.ack(&message.receipt).await.expect("ack");
        }
    }
    assert_eq!(seen, expected);
    assert!(queue.receive(10, LONG, Duration::from_secs(1)).await.expect("receive").is_empty());
}

/// Receives with a short long-poll and insists on exactly one message.
async fn receive_one(queue: &dyn Queue, visibility: Duration) -> ReceivedMessage {
    let mut received = queue.receive(10, visibility, Duration::from_secs(2)).await.expect("receive");
    assert_eq!(received.len(), 1, "expected exactly one message, got {received:?}");
    received.remove(0)
}

// ---------------------------------------------------------------------------------------------
// Guarantees of the embedded queue alone
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn embedded_queue_delivers_in_send_order() {
    let fixture = embedded_queue().await;
    for i in 0..10 {
        fixture.queue.send(&format!("{i}")).await.expect("send");
    }
    let bodies: Vec<String> = fixture.queue.receive(10, LONG, Duration::ZERO).await.expect("receive").into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn embedded_stale_receipt_neither_deletes_nor_releases_the_redelivered_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_database(&dir.path().join("data.redb")).expect("open redb");
    let queue = &RedbQueue::open(db, "stale", 5).await.expect("open queue");
    queue.send("contested").await.expect("send");
    let stale = receive_one(queue, Duration::from_millis(200)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let current = receive_one(queue, LONG).await;

    queue.ack(&stale.receipt).await.expect("a stale ack is ignored");
    queue.release(&stale.receipt, Duration::ZERO).await.expect("a stale release is ignored");
    assert!(queue.receive(10, LONG, Duration::ZERO).await.expect("receive").is_empty(), "the stale release exposed a held message");

    queue.release(&current.receipt, Duration::ZERO).await.expect("release");
    let third = receive_one(queue, LONG).await;
    assert_eq!(third.message_id, current.message_id);
    assert_eq!(third.receive_count, 3);
}

#[tokio::test]
async fn embedded_malformed_receipt_is_an_error() {
    let fixture = embedded_queue().await;
    assert!(fixture.queue.ack("not-a-receipt").await.is_err());
    assert!(fixture.queue.release("x.y", Duration::ZERO).await.is_err());
}

#[tokio::test]
async fn embedded_queues_in_one_file_are_independent_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data.redb");
    let in_flight_id;
    {
        let db = open_database(&path).expect("open redb");
        let first = RedbQueue::open(db.clone(), "first", MAX_RECEIVES).await.expect("open first");
        let second = RedbQueue::open(db, "second", MAX_RECEIVES).await.expect("open second");
        first.send("for first").await.expect("send");
        second.send("for second").await.expect("send");
        let held = receive_one(&second, Duration::from_millis(500)).await;
        assert_eq!(held.body, "for second");
        in_flight_id = held.message_id;
    }

    let db = open_database(&path).expect("reopen redb");
    let first = RedbQueue::open(db.clone(), "first", MAX_RECEIVES).await.expect("reopen first");
    let second = RedbQueue::open(db, "second", MAX_RECEIVES).await.expect("reopen second");
    assert_eq!(receive_one(&first, LONG).await.body, "for first");
    // The delivery held when the process "died" comes back once its visibility timeout passes.
    let redelivered = receive_one(&second, LONG).await;
    assert_eq!(redelivered.message_id, in_flight_id);
    assert_eq!(redelivered.receive_count, 2);
}

#[tokio::test]
async fn embedded_queue_rejects_unsafe_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_database(&dir.path().join("data.redb")).expect("open redb");
    for name in ["", "a/b", "queue name", "очередь"] {
        assert!(RedbQueue::open(db.clone(), name, MAX_RECEIVES).await.is_err(), "{name:?} accepted");
    }
    assert!(RedbQueue::open(db, "ok", 0).await.is_err(), "max_receives 0 accepted");
}

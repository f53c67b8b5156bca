//! The deliverer against a receiver on a real socket that verifies every request with the
//! `standardwebhooks` crate: on the embedded store and on DynamoDB (moto) where configured.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use deliveries::Deliverer;
use shared::deliveries::{DeliveryStatus, Endpoint, endpoint_key};
use shared::persist;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn every_delivery_verifies_and_arrives_once_in_staging_order() {
    for (store, kv, _dir) in stores().await {
        let receiver = Receiver::start().await;
        let agencies = registry(&receiver, &["mvd"]);
        let deliverer = deliverer(&kv, &agencies, settings(&[]));
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(stage(kv.as_ref(), "mvd", serde_json::json!({"application_id": format!("A{n}"), "version": n})).await);
        }
        sweep_until(&deliverer, LIMIT, || receiver.received().len() >= 5).await;
        for _ in 0..3 {
            deliverer.sweep().await;
        }
        let got = receiver.received();
        assert_eq!(got.iter().map(|r| r.webhook_id.clone()).collect::<Vec<_>>(), ids, "{store}: once each, in order");
        assert!(got.iter().all(|r| r.verified), "{store}: every delivery verifies");
        assert_eq!(got[2].body["type"], "application.submitted");
        assert_eq!(got[2].body["data"]["application_id"], "A2");
        for id in &ids {
            let d = load(kv.as_ref(), "mvd", id).await;
            assert_eq!((d.status, d.attempts, d.last_response_status, d.next_attempt_at), (DeliveryStatus::Delivered, 1, Some(200), None), "{store}");
        }
    }
}

#[tokio::test]
async fn a_receiver_failing_the_first_attempts_gets_the_same_webhook_id_again() {
    for (store, kv, _dir) in stores().await {
        let receiver = Receiver::start().await;
        receiver.script("mvd", vec![Answer::Status(500), Answer::Status(503)]);
        let agencies = registry(&receiver, &["mvd"]);
        let deliverer = deliverer(&kv, &agencies, settings(&[]));
        let id = stage(kv.as_ref(), "mvd", serde_json::json!({"n": 1})).await;
        sweep_until(&deliverer, LIMIT, || receiver.received().iter().any(|r| r.answered == 200)).await;
        let got = receiver.received();
        assert_eq!(
            got.iter().map(|r| (r.webhook_id.as_str(), r.answered)).collect::<Vec<_>>(),
            [(id.as_str(), 500), (id.as_str(), 503), (id.as_str(), 200)],
            "{store}"
        );
        assert!(got.iter().all(|r| r.verified), "{store}");
        assert_eq!(got[0].body, got[2].body, "{store}: retries carry the same body");
        let d = load(kv.as_ref(), "mvd", &id).await;
        assert_eq!((d.status, d.attempts, d.last_response_status), (DeliveryStatus::Delivered, 3, Some(200)), "{store}");
    }
}

#[tokio::test]
async fn two_workers_never_deliver_one_delivery_twice() {
    for (store, kv, _dir) in stores().await {
        let receiver = Receiver::start().await;
        let agencies = registry(&receiver, &["mvd"]);
        let (a, b) = (deliverer(&kv, &agencies, settings(&[])), deliverer(&kv, &agencies, settings(&[])));
        let mut ids = Vec::new();
        for n in 0..12 {
            ids.push(stage(kv.as_ref(), "mvd", serde_json::json!({"n": n})).await);
        }
        let until = tokio::time::Instant::now() + LIMIT;
        while receiver.received().len() < ids.len() {
            assert!(tokio::time::Instant::now() < until, "{store}: not all delivered");
            tokio::join!(a.sweep(), b.sweep());
        }
        tokio::join!(a.sweep(), b.sweep());
        let mut got: Vec<String> = receiver.received().into_iter().map(|r| r.webhook_id).collect();
        got.sort();
        assert_eq!(got, ids, "{store}: each exactly once");
    }
}

#[tokio::test]
async fn retry_after_longer_than_the_schedule_is_honoured() {
    let (kv, _dir) = embedded_kv();
    let receiver = Receiver::start().await;
    receiver.script("mvd", vec![Answer::StatusRetryAfter(503, "1")]);
    let agencies = registry(&receiver, &["mvd"]);
    let deliverer = deliverer(&kv, &agencies, settings(&[("DELIVERY_RETRY_SCHEDULE", "10ms,10ms")]));
    let id = stage(kv.as_ref(), "mvd", serde_json::json!({})).await;
    deliverer.sweep().await;
    let failed = load(kv.as_ref(), "mvd", &id).await;
    assert_eq!((failed.status, failed.last_response_status), (DeliveryStatus::Failed, Some(503)));
    let pause = failed.next_attempt_at.unwrap() - failed.last_attempt_at.unwrap();
    assert!(pause >= chrono::Duration::seconds(1), "next attempt after Retry-After, not the 10 ms step: {pause}");
    // Passes before that time attempt nothing; the first after it delivers.
    while chrono::Utc::now() < failed.next_attempt_at.unwrap() - chrono::Duration::milliseconds(100) {
        assert_eq!(deliverer.sweep().await.attempted, 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.received().len(), 1, "no attempt before Retry-After elapsed");
    sweep_until(&deliverer, LIMIT, || receiver.received().len() == 2).await;
    let second = &receiver.received()[1];
    assert_eq!((second.webhook_id.as_str(), second.answered), (id.as_str(), 200));
    assert!(second.at >= failed.next_attempt_at.unwrap());
}

#[tokio::test]
async fn dead_after_the_last_attempt_of_the_schedule() {
    for (store, kv, _dir) in stores().await {
        let receiver = Receiver::start().await;
        receiver.script("mvd", vec![Answer::Status(500); 10]);
        let agencies = registry(&receiver, &["mvd"]);
        let deliverer = deliverer(&kv, &agencies, settings(&[("DELIVERY_RETRY_SCHEDULE", "20ms,20ms")]));
        let id = stage(kv.as_ref(), "mvd", serde_json::json!({})).await;
        sweep_until(&deliverer, LIMIT, || receiver.received().len() == 3).await;
        let dead = load(kv.as_ref(), "mvd", &id).await;
        assert_eq!((dead.status, dead.attempts, dead.next_attempt_at, dead.last_response_status), (DeliveryStatus::Dead, 3, None, Some(500)), "{store}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(deliverer.sweep().await.attempted, 0, "{store}: a dead delivery is not attempted again");
        assert_eq!(receiver.received().len(), 3);
    }
}

#[tokio::test]
async fn gone_stops_deliveries_to_the_agency_and_others_go_on() {
    let (kv, _dir) = embedded_kv();
    let receiver = Receiver::start().await;
    receiver.script("mvd", vec![Answer::Status(410)]);
    let agencies = registry(&receiver, &["mvd", "fns"]);
    let deliverer = deliverer(&kv, &agencies, settings(&[]));
    let gone = stage(kv.as_ref(), "mvd", serde_json::json!({})).await;
    let waiting = stage(kv.as_ref(), "mvd", serde_json::json!({})).await;
    let other = stage(kv.as_ref(), "fns", serde_json::json!({})).await;
    sweep_until(&deliverer, LIMIT, || receiver.received().len() == 2).await;
    let (pk, sk) = endpoint_key("mvd");
    assert_eq!(persist::get::<Endpoint>(kv.as_ref(), &pk, sk).await.unwrap().map(|e| e.value.disabled), Some(true));
    // Well past every step of the schedule: nothing more goes to mvd.
    for _ in 0..10 {
        deliverer.sweep().await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(receiver.received_by("mvd").iter().map(|r| r.webhook_id.as_str()).collect::<Vec<_>>(), [gone.as_str()]);
    assert_eq!(receiver.received_by("fns").iter().map(|r| r.webhook_id.as_str()).collect::<Vec<_>>(), [other.as_str()]);
    assert_eq!(load(kv.as_ref(), "mvd", &gone).await.status, DeliveryStatus::Failed);
    assert_eq!(load(kv.as_ref(), "mvd", &waiting).await.status, DeliveryStatus::Pending, "waits in the lane");
}

#[tokio::test]
async fn a_hanging_agency_does_not_hold_up_another() {
    let (kv, _dir) = embedded_kv();
    let receiver = Receiver::start().await;
    receiver.script("slow", vec![Answer::Hang; 5]);
    let agencies = registry(&receiver, &["slow", "fast"]);
    // A timeout far longer than the healthy agency's work, so ordering decides, not timing.
    let deliverer = Arc::new(deliverer(&kv, &agencies, settings(&[("DELIVERY_TIMEOUT", "10s"), ("DELIVERY_LEASE", "20s")])));
    let slow = stage(kv.as_ref(), "slow", serde_json::json!({})).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let deliverer = deliverer.clone();
        tokio::spawn(async move { deliverer.run(None, async { stop_rx.await.ok().unwrap_or(()) }).await })
    };
    wait(|| !receiver.hanging().is_empty()).await;
    // The slow agency's attempt is in flight; the healthy agency's deliveries staged now arrive.
    let mut fast = Vec::new();
    for n in 0..5 {
        fast.push(stage(kv.as_ref(), "fast", serde_json::json!({"n": n})).await);
    }
    wait(|| receiver.received_by("fast").len() == 5).await;
    assert_eq!(receiver.received_by("fast").iter().map(|r| r.webhook_id.clone()).collect::<Vec<_>>(), fast);
    assert!(receiver.received_by("slow").is_empty(), "the slow agency has not answered yet");
    assert_eq!(load(kv.as_ref(), "slow", &slow).await.attempts, 0, "its first attempt is still in flight");
    let _ = stop_tx.send(());
    runner.await.unwrap();
}

#[tokio::test]
async fn a_crash_between_commit_and_attempt_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let receiver = Receiver::start().await;
    receiver.script("mvd", vec![Answer::Hang]);
    let agencies = registry(&receiver, &["mvd"]);
    let short = settings(&[("DELIVERY_TIMEOUT", "300ms"), ("DELIVERY_LEASE", "600ms")]);
    let open = || -> Arc<dyn shared::ports::KeyValue> {
        Arc::new(shared::adapters::embedded::RedbKv::new(shared::adapters::embedded::open_database(&path).unwrap()).unwrap())
    };
    // The change commits its deliveries; the process dies before any attempt.
    let (first, second) = {
        let kv = open();
        (stage(kv.as_ref(), "mvd", serde_json::json!({"n": 1})).await, stage(kv.as_ref(), "mvd", serde_json::json!({"n": 2})).await)
    };
    // A worker claims the first and dies mid-attempt (its task is dropped while the agency hangs).
    {
        let kv = open();
        let doomed = Arc::new(Deliverer::new(kv.clone(), agencies.clone(), short.clone(), Default::default()).unwrap());
        let task = tokio::spawn(async move { doomed.sweep().await });
        wait(|| !receiver.hanging().is_empty()).await;
        task.abort();
        let _ = task.await;
    }
    // A new process: both arrive, once each, the first after its lease ran out.
    let kv = open();
    let next = deliverer(&kv, &agencies, short);
    sweep_until(&next, LIMIT, || receiver.received().len() == 2).await;
    for _ in 0..3 {
        next.sweep().await;
    }
    let mut got: Vec<String> = receiver.received().into_iter().filter(|r| r.answered == 200).map(|r| r.webhook_id).collect();
    got.sort();
    let mut want = vec![first.clone(), second];
    want.sort();
    assert_eq!(got, want, "each delivered exactly once");
    assert_eq!(receiver.hanging()[0].1, first, "the dying worker had the first");
    assert_eq!(load(kv.as_ref(), "mvd", &first).await.status, DeliveryStatus::Delivered);
}

async fn wait(mut done: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + LIMIT;
    while !done() {
        assert!(tokio::time::Instant::now() < until, "condition not reached within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

//! Figures for the closing note (ignored; run with
//! `cargo test --release -p deliveries --test figures -- --ignored --nocapture`): deliveries per
//! second to one agency and to ten at once (embedded store, local receiver), and the delay a
//! failing agency adds to a healthy one.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

async fn deliver_all(receiver: &Receiver, agencies: &[&str], per_agency: usize, failing: Option<&str>) -> Duration {
    let (kv, _dir) = embedded_kv();
    let mut all: Vec<&str> = agencies.to_vec();
    all.extend(failing);
    let registry = registry(receiver, &all);
    if let Some(f) = failing {
        receiver.script(f, vec![Answer::Hang; 1000]);
        stage(kv.as_ref(), f, serde_json::json!({"n": 0})).await;
    }
    for agency in agencies {
        for n in 0..per_agency {
            stage(kv.as_ref(), agency, serde_json::json!({"application_id": format!("{agency}-{n}"), "version": 1})).await;
        }
    }
    let deliverer = Arc::new(deliverer(&kv, &registry, settings(&[("DELIVERY_TIMEOUT", "5s"), ("DELIVERY_LEASE", "6s"), ("DELIVERY_SWEEP_INTERVAL", "10ms")])));
    let before = receiver.received().len();
    let want = before + agencies.len() * per_agency;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let deliverer = deliverer.clone();
        tokio::spawn(async move { deliverer.run(None, async { stop_rx.await.ok().unwrap_or(()) }).await })
    };
    let started = Instant::now();
    while receiver.received().len() < want {
        assert!(started.elapsed() < Duration::from_secs(120), "not delivered in time");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    runner.await.unwrap();
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures, not a check"]
async fn figures_for_the_closing_note() {
    let receiver = Receiver::start().await;
    let one = deliver_all(&receiver, &["a0"], 500, None).await;
    println!("one agency: 500 deliveries in {one:?} = {:.0}/s", 500.0 / one.as_secs_f64());
    let ten: Vec<String> = (1..=10).map(|i| format!("b{i}")).collect();
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    let all = deliver_all(&receiver, &ten, 100, None).await;
    println!("ten agencies at once: 1000 deliveries in {all:?} = {:.0}/s", 1000.0 / all.as_secs_f64());
    let alone = deliver_all(&receiver, &["c1"], 200, None).await;
    let beside = deliver_all(&receiver, &["c2"], 200, Some("hanging")).await;
    println!("healthy agency, 200 deliveries: alone {alone:?}, beside an agency that never answers {beside:?} (added {:?})", beside.saturating_sub(alone));
    assert!(receiver.received().iter().all(|r| r.verified));
}

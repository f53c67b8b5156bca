//! Fifty conflicting transitions at once on one application, on both key-value adapters:
//! every applied transition takes exactly one version, and the history is a gapless path of
//! the SPEC table. The DynamoDB variants need an emulator (`AWS_ENDPOINT_URL`, e.g. moto);
//! without one they print that they are skipped unless `REQUIRE_AWS_EMULATOR=1`.

mod common;

use std::sync::Arc;

use serde_json::{Value, json};

use common::Harness;
use shared::domain::application::{ActorKind, ApplicationStatus, can_transition};
use shared::events::EventPayload;

const CONCURRENT: usize = 50;
/// One citizen sends all the racing writes at once, far past the everyday write budget.
const RACE_BUDGET: shared::http::WriteBudget = applications::WRITE_BUDGET.with_writes(shared::http::Limit::per_minute(1000));

macro_rules! on_both_adapters {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::Harness::embedded().await.with_write_budget(super::RACE_BUDGET))).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(harness) = super::Harness::dynamodb().await else { return };
                    super::$name(std::sync::Arc::new(harness.with_write_budget(super::RACE_BUDGET))).await;
                }
            )*
        }
    };
}

on_both_adapters!(pinned_transitions_let_exactly_one_apply, unpinned_conflicting_transitions_apply_one_per_version);

/// 50 withdrawals all sent with `If-Match` of the same version: one wins, the rest are 412.
async fn pinned_transitions_let_exactly_one_apply(h: Arc<Harness>) {
    let anna = Arc::new(h.citizen("simplified").await);
    let app = h.submitted(&anna, "mfc-appointment").await;
    let id = app["application_id"].as_str().expect("id").to_owned();
    let version = app["version"].as_u64().expect("version").to_string();
    let attempts = (0..CONCURRENT).map(|i| {
        let (h, anna, id, version) = (h.clone(), anna.clone(), id.clone(), version.clone());
        tokio::spawn(async move {
            let etag = format!("\"{version}\"");
            h.call(
                "POST",
                &format!("/v1/applications/{id}/withdraw"),
                Some(json!({"reason": format!("попытка {i}")})),
                Some(&anna.token),
                &[("if-match", etag.as_str())],
            )
            .await
        })
    });
    let replies: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(|r| r.expect("task")).collect();
    let outcomes: Vec<String> = replies.iter().map(|r| format!("{} {}", r.status.as_u16(), r.code())).collect();
    let won = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(won, 1, "{outcomes:?}");
    assert!(replies.iter().filter(|r| r.status != 200).all(|r| r.status == 412 && r.code() == "precondition_failed"), "{outcomes:?}");

    let after = h.application(&anna, &id).await;
    assert_eq!(after["version"].as_u64(), app["version"].as_u64().map(|v| v + 1));
    assert_eq!(history(&after), ["draft", "submitted", "withdrawn"]);
    assert_eq!(status_events(&h).await, ["submitted", "withdrawn"]);
}

/// 50 unpinned moves at once: agency acceptances and rejections (webhooks, each with its own
/// id) and citizen withdrawals. Losers re-read and re-decide, so several may apply in turn;
/// each applied move must take exactly one version and one history entry, in a legal order.
async fn unpinned_conflicting_transitions_apply_one_per_version(h: Arc<Harness>) {
    let anna = Arc::new(h.citizen("simplified").await);
    let app = h.submitted(&anna, "mfc-appointment").await;
    let id = app["application_id"].as_str().expect("id").to_owned();
    let start_version = app["version"].as_u64().expect("version");
    let attempts = (0..CONCURRENT).map(|i| {
        let (h, anna, id) = (h.clone(), anna.clone(), id.clone());
        tokio::spawn(async move {
            match i % 3 {
                0 => h.agency_sets("mfc", &id, "accepted", json!({})).await,
                1 => h.agency_sets("mfc", &id, "rejected", json!({"rejection": {"reason": format!("отказ {i}")}})).await,
                _ => h.post(&format!("/v1/applications/{id}/withdraw"), json!({"reason": format!("отзыв {i}")}), &anna).await,
            }
        })
    });
    let replies: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(|r| r.expect("task")).collect();
    let applied = replies.iter().filter(|r| r.status == 200).count();
    let outcomes: Vec<String> = replies.iter().map(|r| format!("{} {}", r.status.as_u16(), r.code())).collect();
    assert!(applied >= 1, "{outcomes:?}");
    for refused in replies.iter().filter(|r| r.status != 200) {
        assert!(refused.status == 409 && matches!(refused.code(), "invalid_transition" | "concurrent_update"), "{refused:?}");
    }

    let after = h.application(&anna, &id).await;
    let path = history(&after);
    assert_eq!(after["version"].as_u64(), Some(start_version + applied as u64), "one version per applied move");
    assert_eq!(path.len(), 2 + applied, "one history entry per applied move: {path:?}");
    let steps: Vec<ApplicationStatus> = path.iter().map(|s| ApplicationStatus::parse(s).expect("known status")).collect();
    for pair in steps.windows(2) {
        assert!(can_transition(pair[0], pair[1], ActorKind::Citizen) || can_transition(pair[0], pair[1], ActorKind::Agency), "illegal step in {path:?}");
    }
    assert!(steps.last().is_some_and(|s| s.is_final()), "someone ends it: {path:?}");
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        after["history"].as_array().unwrap().iter().map(|h| h["at"].as_str().unwrap().parse().expect("RFC 3339")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "history is in commit order: {times:?}");

    // Relays of concurrent commits may overtake each other, so compare as multisets.
    let mut events = status_events(&h).await;
    let mut expected = path[1..].to_vec();
    events.sort();
    expected.sort();
    assert_eq!(events, expected, "exactly one event per applied move");
}

fn history(app: &Value) -> Vec<String> {
    app["history"].as_array().expect("history").iter().map(|h| h["status"].as_str().expect("status").to_owned()).collect()
}

async fn status_events(h: &Harness) -> Vec<String> {
    h.events_where(|payload| match payload {
        EventPayload::ApplicationStatusChanged { status, .. } => Some(status.as_str().to_owned()),
        _ => None,
    })
    .await
}

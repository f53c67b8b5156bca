//! A process killed between committing a change and relaying its event loses nothing: the
//! event waits in the outbox and the next process's sweep delivers it (ARCHITECTURE.md,
//! "Events and delivery guarantees").

use std::time::Duration;

use e2e::{Runner, TestPhone};
use serde_json::json;

#[tokio::test]
async fn an_event_committed_by_a_killed_process_is_delivered_after_restart() {
    // Inline relay off and no sweep: the process behaves as if it died right after the commit.
    let runner = Runner::start_with(&[("OUTBOX_INLINE_RELAY", "0"), ("OUTBOX_SWEEP_SECONDS", "3600")]).await;
    let phone = TestPhone::random();
    let reply = runner
        .api()
        .post_json("/v1/auth/register", &json!({"phone": &phone.e164, "password": "Xk#9vTq!mZ2p", "consents": {"terms": true, "personal_data": true}}))
        .await;
    reply.expect(202);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(runner.api().outbox(&phone.e164).await.is_empty(), "the code must not have been sent before the crash");

    // SIGKILL, then a normal process on the same data: its sweep relays the staged event.
    let runner = runner.crash_and_restart(&[("OUTBOX_INLINE_RELAY", "1"), ("OUTBOX_SWEEP_SECONDS", "1")]).await;
    // The sweep leaves events younger than a few seconds to the request that wrote them. On SQS
    // the killed process's abandoned long poll may still take the message, which then stays
    // invisible for the 60 s visibility timeout before the new process gets it: late, not lost.
    let patience = if e2e::is_aws_backend() { Duration::from_secs(100) } else { Duration::from_secs(30) };
    let deadline = std::time::Instant::now() + patience;
    let mut messages = Vec::new();
    while messages.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        messages = runner.api().outbox(&phone.e164).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = runner.api().outbox(&phone.e164).await;
    assert_eq!(messages.len(), 1, "exactly one code, delivered once: {messages:?}");
    let code = runner.api().outbox_code(&phone.e164).await;
    let flow_id = reply.str_at("/flow_id");
    runner.api().post_json("/v1/auth/register/confirm", &json!({"flow_id": flow_id, "code": code})).await.expect(201);
}

//! The delivery log and redeliver (SPEC §4.6) over a real socket, with agency client tokens.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use deliveries::DeliveriesState;
use serde_json::Value;
use shared::deliveries::{DeliveryStatus, Endpoint, endpoint_key};
use shared::http::TokenVerifier;
use shared::http::auth::issue_client_token;
use shared::keys::KeyRing;
use shared::persist;

const ISSUER: &str = "http://127.0.0.1:3000";
const AUDIENCE: &str = "gosuslugi-api";

struct Api {
    base: String,
    ring: Arc<KeyRing>,
    http: reqwest::Client,
}

impl Api {
    async fn start(kv: Arc<dyn shared::ports::KeyValue>) -> Self {
        let ring = Arc::new(KeyRing::from_json(&KeyRing::generate_json().unwrap()).unwrap());
        let verifier = Arc::new(TokenVerifier::new(ISSUER, AUDIENCE, &ring));
        let app = shared::http::finish(deliveries::router(Arc::new(DeliveriesState::new(kv, verifier))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, ring, http: reqwest::Client::new() }
    }

    fn token(&self, client: &str, scope: &str) -> String {
        issue_client_token(&self.ring, ISSUER, AUDIENCE, client, scope, ulid::Ulid::new().to_string(), chrono::Utc::now()).unwrap()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token).await
    }

    async fn post(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn the_log_lists_the_agencys_deliveries_by_status_page_by_page() {
    let (kv, _dir) = embedded_kv();
    let receiver = Receiver::start().await;
    receiver.script("mvd", vec![Answer::Status(500), Answer::Status(500)]);
    let agencies = registry(&receiver, &["mvd", "fns"]);
    let deliverer = deliverer(&kv, &agencies, settings(&[("DELIVERY_RETRY_SCHEDULE", "1h")]));
    let api = Api::start(kv.clone()).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(stage(kv.as_ref(), "mvd", serde_json::json!({"n": n})).await);
    }
    stage(kv.as_ref(), "fns", serde_json::json!({})).await;
    deliverer.sweep().await; // the first fails (retry in an hour)
    let token = api.token("mvd", "agency");

    let (status, all) = api.get("/v1/agency/mvd/deliveries", Some(&token)).await;
    assert_eq!(status, 200, "{all}");
    let listed: Vec<&str> = all["items"].as_array().unwrap().iter().map(|i| i["delivery_id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()], "newest first, only mvd's");
    let failed = &all["items"][2];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["webhook_id"], ids[0].as_str());
    assert_eq!((failed["attempts"].as_u64(), failed["last_response_status"].as_u64()), (Some(1), Some(500)));
    assert_eq!(failed["event_type"], "application.submitted");
    assert!(failed["last_attempt_at"].is_string() && failed["next_attempt_at"].is_string());
    assert_eq!(all["items"][0]["status"], "pending");
    assert!(all["items"][0]["last_attempt_at"].is_null());

    let (_, pending) = api.get("/v1/agency/mvd/deliveries?status=pending&limit=1", Some(&token)).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1);
    assert_eq!(pending["items"][0]["delivery_id"], ids[2].as_str());
    let cursor = pending["next_cursor"].as_str().unwrap();
    let (_, rest) = api.get(&format!("/v1/agency/mvd/deliveries?status=pending&limit=1&cursor={cursor}"), Some(&token)).await;
    assert_eq!(rest["items"][0]["delivery_id"], ids[1].as_str());
    let (_, last) = api.get(&format!("/v1/agency/mvd/deliveries?status=pending&limit=1&cursor={}", rest["next_cursor"].as_str().unwrap()), Some(&token)).await;
    assert_eq!((last["items"].as_array().unwrap().len(), &last["next_cursor"]), (0, &Value::Null));

    for bad in ["?status=lost", "?limit=0", "?limit=101", "?cursor=../x"] {
        let (status, body) = api.get(&format!("/v1/agency/mvd/deliveries{bad}"), Some(&token)).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("validation_failed")), "{bad}");
    }
}

#[tokio::test]
async fn tokens_guard_the_log_another_agency_is_404_and_none_is_401() {
    let (kv, _dir) = embedded_kv();
    let api = Api::start(kv.clone()).await;
    let id = stage(kv.as_ref(), "mvd", serde_json::json!({})).await;
    let redeliver = format!("/v1/agency/mvd/deliveries/{id}/redeliver");
    assert_eq!(api.get("/v1/agency/mvd/deliveries", None).await.0, 401);
    assert_eq!(api.post(&redeliver, None).await.0, 401);
    assert_eq!(api.get("/v1/agency/mvd/deliveries", Some("garbage")).await.0, 401);
    let fns = api.token("fns", "agency");
    let (status, body) = api.get("/v1/agency/mvd/deliveries", Some(&fns)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(api.post(&redeliver, Some(&fns)).await.0, 404);
    assert_eq!(api.post(&format!("/v1/agency/fns/deliveries/{id}/redeliver"), Some(&fns)).await.0, 404, "not fns's delivery");
    assert_eq!(api.get("/v1/agency/mvd/deliveries", Some(&api.token("mvd", "openid"))).await.0, 403, "a token without the agency scope");
    let mvd = api.token("mvd", "agency");
    assert_eq!(api.post("/v1/agency/mvd/deliveries/01UNKNOWN000000000000000000/redeliver", Some(&mvd)).await.0, 404);
    assert_eq!(api.post(&redeliver, Some(&mvd)).await.0, 202);
}

#[tokio::test]
async fn redeliver_after_gone_enables_the_endpoint_and_sends_the_same_webhook_id() {
    for (store, kv, _dir) in stores().await {
        let receiver = Receiver::start().await;
        receiver.script("mvd", vec![Answer::Status(410)]);
        let agencies = registry(&receiver, &["mvd"]);
        let deliverer = deliverer(&kv, &agencies, settings(&[]));
        let api = Api::start(kv.clone()).await;
        let gone = stage(kv.as_ref(), "mvd", serde_json::json!({"n": 1})).await;
        let waiting = stage(kv.as_ref(), "mvd", serde_json::json!({"n": 2})).await;
        sweep_until(&deliverer, Duration::from_secs(20), || receiver.received().len() == 1).await;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            assert!(deliverer.sweep().await.attempted == 0, "{store}: the endpoint is disabled");
        }
        let (status, entry) = api.post(&format!("/v1/agency/mvd/deliveries/{gone}/redeliver"), Some(&api.token("mvd", "agency"))).await;
        assert_eq!(status, 202, "{store}: {entry}");
        assert_eq!((entry["status"].as_str(), entry["attempts"].as_u64(), entry["webhook_id"].as_str()), (Some("pending"), Some(0), Some(gone.as_str())));
        let (pk, sk) = endpoint_key("mvd");
        assert_eq!(persist::get::<Endpoint>(kv.as_ref(), &pk, sk).await.unwrap().map(|e| e.value.disabled), Some(false), "{store}");
        sweep_until(&deliverer, Duration::from_secs(20), || receiver.received().len() == 3).await;
        let got: Vec<(String, u16)> = receiver.received().into_iter().map(|r| (r.webhook_id, r.answered)).collect();
        assert_eq!(got[0], (gone.clone(), 410));
        assert!(got.contains(&(gone.clone(), 200)) && got.contains(&(waiting.clone(), 200)), "{store}: {got:?}");
        assert!(receiver.received().iter().all(|r| r.verified));
        assert_eq!(load(kv.as_ref(), "mvd", &gone).await.status, DeliveryStatus::Delivered);
        // Redelivering a delivered one sends it again too (the agency asked).
        assert_eq!(api.post(&format!("/v1/agency/mvd/deliveries/{waiting}/redeliver"), Some(&api.token("mvd", "agency"))).await.0, 202);
        sweep_until(&deliverer, Duration::from_secs(20), || receiver.received().len() == 4).await;
        assert_eq!(receiver.received()[3].webhook_id, waiting, "{store}");
    }
}

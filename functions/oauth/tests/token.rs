//! `POST /oauth2/token` over HTTP: every RFC 6749 answer of `client_credentials`, the token it
//! issues verified as the agency API verifies it, and the seed registry over a real socket.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use base64::Engine as _;
use oauth::{AppState, OAuthState, Settings, TokenResponse};
use shared::adapters::embedded::{RedbKv, open_database};
use shared::clients::Registry;
use shared::http::{AgencyClient, ApiError};
use shared::keys::KeyRing;
use shared::ports::Ticker;
use tower::ServiceExt;

const BANK_SECRET: &str = "p@ss:w%rd+ü /&=?#"; // every character Basic must carry form-urlencoded
const POST_SECRET: &str = "post-secret-1";

/// A cheap argon2id hash (tests only; the registry takes the parameters from the PHC string).
fn quick_hash(secret: &str) -> String {
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::new(8, 1, 1, None).unwrap());
    argon.hash_password(secret.as_bytes(), &SaltString::generate(&mut OsRng)).unwrap().to_string()
}

fn test_registry() -> Registry {
    let doc = serde_json::json!({"clients": [
        {"client_id": "mvd", "name": "МВД России", "kind": "agency", "allowed_scopes": ["agency"], "token_endpoint_auth_method": "client_secret_basic",
         "client_secret_hash": quick_hash("mvd-secret"), "subject_type": "public"},
        {"client_id": "fns", "name": "ФНС России", "kind": "agency", "allowed_scopes": ["agency"], "token_endpoint_auth_method": "client_secret_post",
         "client_secret_hash": quick_hash(POST_SECRET), "subject_type": "public"},
        {"client_id": "bank.one", "name": "Банк", "kind": "partner", "redirect_uris": ["https://bank.example/cb"], "allowed_scopes": ["openid", "payments:read", "payments:write"],
         "token_endpoint_auth_method": "client_secret_basic", "client_secret_hash": quick_hash(BANK_SECRET), "subject_type": "pairwise"},
        {"client_id": "portal", "name": "Портал", "kind": "partner", "redirect_uris": ["https://portal.example/cb"], "allowed_scopes": ["openid", "email"],
         "token_endpoint_auth_method": "client_secret_post", "client_secret_hash": quick_hash("portal-secret"), "subject_type": "public"},
    ]});
    Registry::from_json(&doc.to_string()).unwrap()
}

struct Harness {
    _dir: tempfile::TempDir,
    state: Arc<OAuthState>,
    app: Router,
}

fn harness_with(registry: Registry, failed_auth_per_minute: u64) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let kv = Arc::new(RedbKv::new(open_database(&dir.path().join("state.redb")).unwrap()).unwrap());
    let keys = Arc::new(KeyRing::from_json(&KeyRing::generate_json().unwrap()).unwrap());
    let settings = Settings { failed_auth_per_minute, ..Settings::from(&shared::settings::Env::from_pairs(&[])).unwrap() };
    let (ticker, _clock) = Ticker::fixed(chrono::Utc::now());
    let state = Arc::new(OAuthState::new(kv, keys, Arc::new(registry), settings).with_ticker(ticker));
    let app = shared::http::finish_api(oauth::api(state.clone()), "OAuth");
    Harness { _dir: dir, state, app }
}

fn harness() -> Harness {
    harness_with(test_registry(), 10)
}

/// RFC 6749 §2.3.1: id and secret form-urlencoded, joined by a colon, base64.
fn basic(id: &str, secret: &str) -> String {
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", encode(id), encode(secret))))
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: serde_json::Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

async fn post(app: &Router, authorization: Option<&str>, form: &str) -> Answer {
    post_as(app, authorization, "application/x-www-form-urlencoded", form).await
}

async fn post_as(app: &Router, authorization: Option<&str>, content_type: &str, form: &str) -> Answer {
    let mut request = Request::post("/oauth2/token").header(header::CONTENT_TYPE, content_type);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app.clone().oneshot(request.body(Body::from(form.to_owned())).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let answer = Answer { status: parts.status, headers: parts.headers, body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null) };
    // RFC 6749 §5.1/§5.2: every answer is uncacheable JSON, never problem+json.
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(answer.headers[header::PRAGMA], "no-cache");
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    answer
}

fn assert_error(answer: &Answer, status: StatusCode, error: &str) {
    assert_eq!((answer.status, answer.error()), (status, error), "{}", answer.body);
    let description = answer.body["error_description"].as_str().expect("error_description");
    assert!(description.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'), "RFC 6749 §5.2 charset: {description}");
    assert_eq!(answer.body.as_object().unwrap().len(), 2, "only error and error_description: {}", answer.body);
}

fn challenge(answer: &Answer) -> Option<&str> {
    answer.headers.get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn an_agency_gets_a_token_with_basic_that_the_agency_api_accepts_for_its_own_path_only() {
    let h = harness();
    let answer = post(&h.app, Some(&basic("mvd", "mvd-secret")), "grant_type=client_credentials").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let token: TokenResponse = serde_json::from_value(answer.body.clone()).unwrap();
    assert_eq!((token.token_type.as_str(), token.expires_in, token.scope.as_str()), ("Bearer", 600, "agency"));
    assert_eq!(answer.body.as_object().unwrap().len(), 4, "{}", answer.body);

    let claims = h.state.verifier.verify_client(&token.access_token).expect("a client token of this issuer");
    assert_eq!((claims.cid.as_str(), claims.sub.as_str(), claims.scope.as_str()), ("mvd", "mvd", "agency"));
    assert_eq!(claims.exp - claims.iat, 600);
    assert_eq!(claims.iat, h.state.ticker.now().timestamp(), "time from the state's ticker");
    assert!(h.state.verifier.verify(&token.access_token).is_err(), "never a citizen's token");

    // The agency API's extractor over the same state: its own path passes, another agency's is 404.
    async fn ping(client: AgencyClient, Path(agency_id): Path<String>) -> Result<&'static str, ApiError> {
        client.require(&agency_id).map(|()| "ok")
    }
    let api = Router::new().route("/v1/agency/{agency_id}/ping", get(ping)).with_state(AppState(h.state.clone()));
    for (path, expected) in [("/v1/agency/mvd/ping", StatusCode::OK), ("/v1/agency/fns/ping", StatusCode::NOT_FOUND)] {
        let request = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {}", token.access_token)).body(Body::empty()).unwrap();
        assert_eq!(api.clone().oneshot(request).await.unwrap().status(), expected, "{path}");
    }
    let anonymous = api.oneshot(Request::get("/v1/agency/mvd/ping").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_client_registered_for_post_gets_a_token_with_the_secret_in_the_form() {
    let h = harness();
    let answer = post(&h.app, None, &format!("grant_type=client_credentials&client_id=fns&client_secret={POST_SECRET}&scope=agency")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let claims = h.state.verifier.verify_client(answer.body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!((claims.cid.as_str(), claims.scope.as_str()), ("fns", "agency"));
    // Empty parameters count as absent (RFC 6749 §3.1); unknown ones are ignored.
    let answer = post(&h.app, None, &format!("grant_type=client_credentials&client_id=fns&client_secret={POST_SECRET}&scope=&audience=x")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn basic_credentials_with_special_characters_are_form_urldecoded() {
    let h = harness();
    let answer = post(&h.app, Some(&basic("bank.one", BANK_SECRET)), "grant_type=client_credentials&scope=payments%3Aread").await;
    assert_eq!((answer.status, answer.body["scope"].as_str()), (StatusCode::OK, Some("payments:read")), "{}", answer.body);
    // The same secret without the form-urlencoding is another secret.
    let raw = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("bank.one:{BANK_SECRET}")));
    assert_error(&post(&h.app, Some(&raw), "grant_type=client_credentials").await, StatusCode::UNAUTHORIZED, "invalid_client");
    // A partner gets what it may without a citizen, never the citizen-data scopes.
    let answer = post(&h.app, Some(&basic("bank.one", BANK_SECRET)), "grant_type=client_credentials").await;
    assert_eq!(answer.body["scope"], "payments:read payments:write");
}

#[tokio::test]
async fn a_wrong_secret_or_an_unknown_client_is_invalid_client_with_the_basic_challenge_when_basic_was_tried() {
    let h = harness();
    let answer = post(&h.app, Some(&basic("mvd", "guess")), "grant_type=client_credentials").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(challenge(&answer).is_some_and(|c| c.starts_with("Basic ")), "{:?}", answer.headers);
    let answer = post(&h.app, Some(&basic("nobody", "guess")), "grant_type=client_credentials").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(challenge(&answer).is_some());
    let answer = post(&h.app, None, "grant_type=client_credentials&client_id=fns&client_secret=guess").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(challenge(&answer), None, "no Basic attempt, no Basic challenge");
    let answer = post(&h.app, None, "grant_type=client_credentials&client_id=nobody&client_secret=guess").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_error(&post(&h.app, None, "grant_type=client_credentials").await, StatusCode::UNAUTHORIZED, "invalid_client");
    for malformed in ["Basic", "Basic %%%", "Basic bXZk"] {
        let answer = post(&h.app, Some(malformed), "grant_type=client_credentials").await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(challenge(&answer).is_some(), "{malformed}");
    }
}

#[tokio::test]
async fn the_right_secret_by_another_method_than_registered_is_refused() {
    let h = harness();
    let answer = post(&h.app, None, "grant_type=client_credentials&client_id=mvd&client_secret=mvd-secret").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
    let answer = post(&h.app, Some(&basic("fns", POST_SECRET)), "grant_type=client_credentials").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(challenge(&answer).is_some());
    // Naming a confidential client without its secret is no authentication either.
    assert_error(&post(&h.app, None, "grant_type=client_credentials&client_id=mvd").await, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let h = harness();
    let mvd = basic("mvd", "mvd-secret");
    assert_error(&post(&h.app, Some(&mvd), "").await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(&post(&h.app, Some(&mvd), "scope=agency").await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(&post(&h.app, Some(&mvd), "grant_type=").await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(&post(&h.app, Some(&mvd), "grant_type=client_credentials&grant_type=client_credentials").await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(&post(&h.app, Some(&mvd), "grant_type=client_credentials&client_secret=mvd-secret").await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(&post(&h.app, Some(&mvd), "grant_type=client_credentials&client_id=fns").await, StatusCode::BAD_REQUEST, "invalid_request");
    for content_type in ["application/json", "text/plain", "multipart/form-data; boundary=x"] {
        assert_error(&post_as(&h.app, Some(&mvd), content_type, "grant_type=client_credentials").await, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let answer = post_as(&h.app, Some(&mvd), "Application/X-WWW-Form-Urlencoded; charset=UTF-8", "grant_type=client_credentials").await;
    assert_eq!(answer.status, StatusCode::OK, "media type names are case-insensitive");
}

#[tokio::test]
async fn unknown_grants_scopes_beyond_the_registration_and_sign_in_only_partners_are_refused() {
    let h = harness();
    let mvd = basic("mvd", "mvd-secret");
    for grant in ["password", "authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer", "CLIENT_CREDENTIALS"] {
        assert_error(&post(&h.app, Some(&mvd), &format!("grant_type={grant}")).await, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    for scope in ["openid", "agency%20payments%3Aread", "admin", "agency%20%20agency"] {
        assert_error(&post(&h.app, Some(&mvd), &format!("grant_type=client_credentials&scope={scope}")).await, StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let answer = post(&h.app, None, "grant_type=client_credentials&client_id=portal&client_secret=portal-secret").await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "unauthorized_client");
    // Authentication comes first: a wrong secret with a bad grant is still invalid_client.
    assert_error(&post(&h.app, Some(&basic("mvd", "guess")), "grant_type=password").await, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn a_client_id_that_keeps_failing_is_locked_for_the_minute_without_locking_others() {
    let h = harness_with(test_registry(), 3);
    for _ in 0..3 {
        assert_error(&post(&h.app, Some(&basic("mvd", "guess")), "grant_type=client_credentials").await, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let answer = post(&h.app, Some(&basic("mvd", "guess")), "grant_type=client_credentials").await;
    assert_error(&answer, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = answer.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Locked: not even the right secret is checked until the minute ends.
    assert_error(&post(&h.app, Some(&basic("mvd", "mvd-secret")), "grant_type=client_credentials").await, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let other = post(&h.app, None, &format!("grant_type=client_credentials&client_id=fns&client_secret={POST_SECRET}")).await;
    assert_eq!(other.status, StatusCode::OK);
    // Unknown client ids cost no argon2 and fill no counters.
    for _ in 0..5 {
        assert_error(&post(&h.app, Some(&basic("nobody", "guess")), "grant_type=client_credentials").await, StatusCode::UNAUTHORIZED, "invalid_client");
    }
}

#[tokio::test]
async fn the_document_declares_a_form_body_and_rfc_6749_errors_per_status() {
    let (_, doc) = shared::http::contract::split(oauth::api(harness().state), "OAuth");
    let doc = serde_json::to_value(&doc).unwrap();
    let operation = &doc["paths"]["/oauth2/token"]["post"];
    let form = &operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    assert!(form.is_object(), "{operation}");
    let errors = |status: &str| operation["responses"][status]["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]["enum"].clone();
    assert_eq!(errors("400"), serde_json::json!(["invalid_request", "unsupported_grant_type", "invalid_scope", "unauthorized_client"]));
    assert_eq!(errors("401"), serde_json::json!(["invalid_client"]));
    assert_eq!(errors("429"), serde_json::json!(["rate_limited"]));
    assert!(operation["responses"]["400"]["content"].get("application/problem+json").is_none());
    assert!(doc["components"]["schemas"]["OAuthError"].is_object() && doc["components"]["securitySchemes"]["client_secret_basic"].is_object());
}

/// The seed registry with its real argon2id hashes, over a real socket, as an agency would call it.
#[tokio::test]
async fn the_seed_agencies_get_tokens_over_a_real_socket() {
    let h = harness_with(Registry::dev_seed().unwrap(), 10);
    let seed: serde_json::Value = serde_json::from_str(include_str!("../../../infra/local/seed/clients.json")).unwrap();
    let secret = |id: &str| seed["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == id).unwrap()["client_secret"].as_str().unwrap().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(shared::runtime::serve_plain(listener, h.app.clone()));
    let http = reqwest::Client::new();

    let started = std::time::Instant::now();
    let response =
        http.post(format!("{base}/oauth2/token")).basic_auth("mvd", Some(secret("mvd"))).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().contains_key("x-request-id"));
    let token: TokenResponse = response.json().await.unwrap();
    assert_eq!(h.state.verifier.verify_client(&token.access_token).unwrap().cid, "mvd");
    println!("seed mvd token over a socket (argon2id m=19456,t=2,p=1 verify included): {elapsed:?}");

    let response = http
        .post(format!("{base}/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "fns"), ("client_secret", &secret("fns"))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response =
        http.post(format!("{base}/oauth2/token")).basic_auth("mvd", Some(secret("fns"))).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

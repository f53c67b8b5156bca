//! Acceptance journeys for SPEC §3 (identity) over real HTTP against the local runner.
//! Each test starts its own runner with fresh storage, so they run in parallel.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use e2e::{
    Api, Citizen, Contact, DEFAULT_AUDIENCE, MOBILE_UA, Reply, Runner, TestPhone, Tokens, different_code, parse_utc, random_email, registration_body,
    six_digit_numbers, strong_password, unverified_claims,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{Value, json};
use totp_rs::{Algorithm as TotpAlgorithm, Secret, TOTP};

/// A fresh runner, its API client and a citizen registered on it.
async fn runner_with_citizen() -> (Runner, Api, Citizen) {
    let runner = Runner::start().await;
    let api = runner.api();
    let citizen = api.new_citizen().await;
    (runner, api, citizen)
}

// ---------------------------------------------------------------------------------------------
// Registration, login, tokens (§3.4, §3.5, §3.7)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn newcomer_registers_by_phone_logs_in_with_sms_and_rotates_refresh_tokens() {
    let runner = Runner::start().await;
    let api = runner.api();
    let phone = TestPhone::random();
    let password = strong_password();

    // A human-formatted number is accepted and normalised (§3.1).
    let started = api.register(Contact::Phone(&phone.pretty()), &password).await;
    started.expect(202);
    assert_eq!(started.body["channel"], "sms", "{started}");
    let expires_at = parse_utc(&started.body["expires_at"]);
    let now = Utc::now();
    assert!(expires_at > now && expires_at <= now + TimeDelta::seconds(300 + 30), "a code lives 5 minutes, expires_at = {expires_at}");

    let code = api.outbox_code(&phone.e164).await;
    let confirmed = api.post_json("/v1/auth/register/confirm", &json!({"flow_id": started.str_at("/flow_id"), "code": code})).await;
    confirmed.expect(201);
    assert_eq!(confirmed.body["level"], "simplified", "{confirmed}");
    let user_id = confirmed.str_at("/user_id");
    let registration_tokens = Tokens::from_json(&confirmed.body["tokens"]);
    assert_eq!(registration_tokens.expires_in, 900, "access tokens live 15 minutes");

    let login = api.login(&phone.e164, &password).await;
    login.expect(200);
    assert_eq!(login.body["mfa_required"], true, "phone accounts have SMS 2FA on: {login}");
    assert!(methods(&login).contains("sms"), "{login}");
    let code = api.outbox_code(&phone.e164).await;
    let finished = api.post_json("/v1/auth/login/mfa", &json!({"flow_id": login.str_at("/flow_id"), "method": "sms", "code": code})).await;
    finished.expect(200);
    let tokens = Tokens::from_json(&finished.body["tokens"]);

    let me = api.me(&tokens.access_token).await;
    assert_eq!(me["user_id"], user_id.as_str(), "{me}");
    assert_eq!(me["phone"], phone.e164.as_str(), "{me}");
    assert_eq!(me["phone_confirmed"], true, "{me}");
    assert_eq!(me["level"], "simplified", "{me}");
    assert_eq!(me["mfa"]["sms"], true, "{me}");

    let refreshed = api.refresh(&tokens.refresh_token).await;
    refreshed.expect(200);
    let rotated = Tokens::from_json(&refreshed.body["tokens"]);
    assert_ne!(rotated.refresh_token, tokens.refresh_token, "refresh tokens rotate on every use");
    assert_ne!(rotated.access_token, tokens.access_token);
    api.me(&rotated.access_token).await;

    api.refresh(&tokens.refresh_token).await.assert_problem(401, "token_reused");
    // The SPEC names no code for a token of a revoked session, only that it stops working.
    api.refresh(&rotated.refresh_token).await.expect(401);

    api.bearer(&registration_tokens.access_token).post_empty("/v1/auth/logout").await.expect(204);
    api.refresh(&registration_tokens.refresh_token).await.expect(401);
}

#[tokio::test]
async fn login_accepts_the_phone_in_domestic_trunk_format() {
    let (_runner, api, Citizen { phone, password, .. }) = runner_with_citizen().await;

    let login = api.login(&phone.trunk(), &password).await;
    login.expect(200);
    assert_eq!(login.body["mfa_required"], true, "{login}");
}

#[tokio::test]
async fn access_tokens_verify_against_the_published_jwks_and_carry_every_spec_claim() {
    let (_runner, api, Citizen { phone, password, .. }) = runner_with_citizen().await;
    let tokens = api.login_with_sms(&phone.e164, &password).await;
    let user_id = api.me(&tokens.access_token).await["user_id"].clone();

    let discovery = api.get("/.well-known/openid-configuration").await;
    discovery.expect(200);
    let issuer = discovery.str_at("/issuer");
    let jwks_uri = discovery.str_at("/jwks_uri");
    // PUBLIC_BASE_URL defaults to the runner's own address, so the URI must lead back here.
    let jwks_path = jwks_uri.strip_prefix(&api.base).unwrap_or_else(|| panic!("jwks_uri points away from this runner: {discovery}"));
    assert_eq!(jwks_path, "/.well-known/jwks.json", "{discovery}");

    let jwks_reply = api.get(jwks_path).await;
    jwks_reply.expect(200);
    let keys = jwks_reply.body["keys"].as_array().cloned().unwrap_or_default();
    assert!(!keys.is_empty(), "{jwks_reply}");
    for key in &keys {
        assert_eq!(key["kty"], "OKP", "Ed25519 keys are OKP: {key}");
        assert_eq!(key["crv"], "Ed25519", "{key}");
        assert!(key["kid"].is_string(), "every key has a kid: {key}");
    }
    let jwks: JwkSet = serde_json::from_value(jwks_reply.body.clone()).expect("a JWK set");

    let header = jsonwebtoken::decode_header(&tokens.access_token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.expect("access tokens name their key");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).expect("an Ed25519 verification key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[DEFAULT_AUDIENCE]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    let claims = jsonwebtoken::decode::<Value>(&tokens.access_token, &key, &validation).expect("the access token verifies against the JWKS").claims;

    assert_eq!(claims["sub"], user_id, "{claims}");
    assert_eq!(claims["lvl"], "simplified", "{claims}");
    for claim in ["jti", "sid"] {
        assert!(claims[claim].as_str().is_some_and(|v| !v.is_empty()), "{claim}: {claims}");
    }
    let amr: Vec<&str> = claims["amr"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert!(amr.contains(&"pwd") && amr.contains(&"sms"), "password + SMS login: {claims}");
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert_eq!(exp.zip(iat).map(|(exp, iat)| exp - iat), Some(900), "15 minutes: {claims}");
}

#[tokio::test]
async fn registration_by_email_sends_the_code_by_email_and_needs_no_second_factor() {
    let runner = Runner::start().await;
    let api = runner.api();
    let email = random_email();
    let password = strong_password();

    // Trimmed and lower-cased (§3.1); the outbox is addressed to the normalised form.
    let typed = format!("  {}  ", email.to_uppercase());
    let started = api.register(Contact::Email(&typed), &password).await;
    started.expect(202);
    assert_eq!(started.body["channel"], "email", "{started}");
    let code = api.outbox_code(&email).await;
    let outbox = api.outbox(&email).await;
    assert_eq!(outbox[0]["channel"], "email", "{}", outbox[0]);
    let confirmed = api.post_json("/v1/auth/register/confirm", &json!({"flow_id": started.str_at("/flow_id"), "code": code})).await;
    confirmed.expect(201);
    assert_eq!(confirmed.body["level"], "simplified");
    let tokens = Tokens::from_json(&confirmed.body["tokens"]);

    let me = api.me(&tokens.access_token).await;
    assert_eq!(me["email"], email.as_str(), "{me}");
    assert_eq!(me["email_confirmed"], true, "{me}");
    assert_eq!(me["phone"], Value::Null, "{me}");
    assert_eq!(me["mfa"]["sms"], false, "no phone, no SMS factor: {me}");

    let tokens = api.login_without_mfa(&email, &password).await;
    api.me(&tokens.access_token).await;
}

// ---------------------------------------------------------------------------------------------
// Lockout, recovery, history (§3.5, §3.6, §3.7)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn three_wrong_passwords_lock_the_account_until_recovery() {
    let (_runner, api, Citizen { phone, password, tokens: registration }) = runner_with_citizen().await;
    let wrong = strong_password();
    let before = api.settled_outbox(&phone.e164).await.len();

    for _ in 0..2 {
        api.login(&phone.e164, &wrong).await.assert_problem(401, "invalid_credentials");
    }
    // The third wrong password locks; whether it answers 401 or already 423 is not fixed.
    let third = api.login(&phone.e164, &wrong).await;
    match third.status.as_u16() {
        401 => third.assert_problem(401, "invalid_credentials"),
        _ => third.assert_problem(423, "account_locked"),
    }
    api.login(&phone.e164, &password).await.assert_problem(423, "account_locked");

    let outbox = api.wait_for_outbox(&phone.e164, before + 1).await;
    let new_messages = &outbox[..outbox.len() - before];
    assert!(new_messages.iter().any(|m| !has_code(m)), "the owner gets a security notification about the lockout");

    let recover = api.post_json("/v1/auth/password/recover", &json!({"login": phone.e164})).await;
    recover.expect(202);
    let code = api.outbox_code(&phone.e164).await;
    let new_password = strong_password();
    api.post_json("/v1/auth/password/recover/confirm", &json!({"flow_id": recover.str_at("/flow_id"), "code": code, "new_password": new_password}))
        .await
        .expect(204);

    api.login(&phone.e164, &password).await.assert_problem(401, "invalid_credentials");
    let tokens = api.login_with_sms(&phone.e164, &new_password).await;
    api.me(&tokens.access_token).await;
    api.refresh(&registration.refresh_token).await.expect(401);
}

#[tokio::test]
async fn login_history_lists_every_attempt_newest_first_with_device_type() {
    let runner = Runner::start().await;
    let api = runner.api();
    let mobile = api.user_agent(MOBILE_UA);
    let Citizen { phone, password, .. } = api.new_citizen().await;
    let wrong = strong_password();

    api.login(&phone.e164, &wrong).await.assert_problem(401, "invalid_credentials");
    let login = mobile.login(&phone.e164, &password).await;
    login.expect(200);
    let flow_id = login.str_at("/flow_id");
    let code = api.outbox_code(&phone.e164).await;
    mobile
        .post_json("/v1/auth/login/mfa", &json!({"flow_id": flow_id, "method": "sms", "code": different_code(&code)}))
        .await
        .assert_problem(400, "otp_invalid");
    let finished = mobile.post_json("/v1/auth/login/mfa", &json!({"flow_id": flow_id, "method": "sms", "code": code})).await;
    finished.expect(200);
    let tokens = Tokens::from_json(&finished.body["tokens"]);
    for _ in 0..3 {
        api.login(&phone.e164, &wrong).await;
    }
    api.login(&phone.e164, &password).await.assert_problem(423, "account_locked");

    let history = api.bearer(&tokens.access_token).get("/v1/me/login-history").await;
    history.expect(200);
    let items = history.body["items"].as_array().cloned().unwrap_or_default();
    for item in &items {
        parse_utc(&item["at"]);
        assert!(item["ip"].is_string() && item["user_agent"].is_string(), "{item}");
        assert!(["desktop", "mobile", "tablet", "other"].contains(&item["device_type"].as_str().unwrap_or("")), "{item}");
    }
    let times: Vec<_> = items.iter().map(|item| parse_utc(&item["at"])).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "newest first: {history}");

    // The third wrong password may be recorded as wrong_password or as locked.
    let results: Vec<&str> = items.iter().filter_map(|item| item["result"].as_str()).collect();
    let expected = ["locked", "wrong_password", "wrong_password", "success", "wrong_code", "wrong_password"];
    assert!(is_subsequence(&expected, &results), "attempts newest first, got {results:?}");

    let success = items
        .iter()
        .find(|item| item["result"] == "success" && item["user_agent"] == MOBILE_UA)
        .unwrap_or_else(|| panic!("the phone login is in the history: {history}"));
    assert_eq!(success["device_type"], "mobile", "{success}");
    assert_eq!(success["mfa_method"], "sms", "{success}");
    let oldest_wrong = items.iter().rev().find(|item| item["result"] == "wrong_password").unwrap_or_else(|| panic!("wrong passwords are recorded: {history}"));
    assert_eq!(oldest_wrong["device_type"], "desktop", "{oldest_wrong}");
}

#[tokio::test]
async fn registration_recovery_and_login_never_reveal_whether_an_account_exists() {
    let (_runner, api, Citizen { phone, password, .. }) = runner_with_citizen().await;
    let before = api.settled_outbox(&phone.e164).await.len();

    let fresh = api.register(Contact::Phone(&TestPhone::random().e164), &strong_password()).await;
    fresh.expect(202);
    let again = api.register(Contact::Phone(&phone.e164), &strong_password()).await;
    again.expect(202);
    assert_eq!(keys(&again.body), keys(&fresh.body), "same shape: {again} vs {fresh}");
    assert_eq!(again.body["channel"], "sms");

    let outbox = api.wait_for_outbox(&phone.e164, before + 1).await;
    for message in &outbox[..outbox.len() - before] {
        assert!(!has_code(message), "the owner is warned, not sent a code: {message}");
    }

    for login in [TestPhone::random().e164, random_email()] {
        let recover = api.post_json("/v1/auth/password/recover", &json!({"login": login})).await;
        recover.expect(202);
        assert!(recover.body["flow_id"].is_string(), "{recover}");
    }

    let unknown = api.login(&TestPhone::random().e164, &password).await;
    let wrong = api.login(&phone.e164, &strong_password()).await;
    unknown.assert_problem(401, "invalid_credentials");
    wrong.assert_problem(401, "invalid_credentials");
    assert_eq!(without_request_fields(&unknown.body), without_request_fields(&wrong.body), "unknown login and wrong password answer alike");
}

// ---------------------------------------------------------------------------------------------
// Errors (§2, §3.1–§3.4)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn registration_without_both_consents_is_refused_with_consent_required() {
    let runner = Runner::start().await;
    let api = runner.api();
    let mut body = registration_body(Contact::Phone(&TestPhone::random().e164), &strong_password());

    body["consents"]["personal_data"] = json!(false);
    api.post_json("/v1/auth/register", &body).await.assert_problem(400, "consent_required");
    body.as_object_mut().expect("an object").remove("consents");
    api.post_json("/v1/auth/register", &body).await.assert_problem(400, "consent_required");
}

#[tokio::test]
async fn registration_with_both_phone_and_email_fails_validation() {
    let runner = Runner::start().await;
    let api = runner.api();
    let mut body = registration_body(Contact::Phone(&TestPhone::random().e164), &strong_password());
    body["email"] = json!(random_email());

    api.post_json("/v1/auth/register", &body).await.assert_problem(400, "validation_failed");
}

#[tokio::test]
async fn registration_with_anything_but_a_russian_mobile_number_names_the_phone_field() {
    let runner = Runner::start().await;
    let api = runner.api();
    // The last one is a St Petersburg landline: §3.1 accepts Russian mobiles only.
    for bad in ["12345", "+1 212 555 0100", "+7 912 345 67", "phone", "+7 (812) 123-45-67"] {
        let reply = api.register(Contact::Phone(bad), &strong_password()).await;
        reply.assert_problem(400, "validation_failed");
        assert!(reply.error_fields().iter().any(|f| f == "phone"), "{bad:?}: {reply}");
    }
}

#[tokio::test]
async fn weak_passwords_are_refused_naming_each_broken_rule() {
    let runner = Runner::start().await;
    let api = runner.api();
    let register = async |password: &str| api.register(Contact::Phone(&TestPhone::random().e164), password).await;

    let short = register("abc").await;
    short.assert_problem(400, "weak_password");
    for rule in ["too_short", "missing_upper", "missing_digit", "missing_special"] {
        assert!(short.error_codes().iter().any(|c| c == rule), "`abc` breaks {rule}: {short}");
    }

    let keyboard = register("Qwerty12!").await;
    keyboard.assert_problem(400, "weak_password");
    let codes = keyboard.error_codes();
    assert!(codes.iter().any(|c| c == "sequence" || c == "common"), "`Qwerty12!` is a keyboard sequence and a common password: {keyboard}");

    let phone = TestPhone::random();
    let with_phone = format!("Xq#{}", phone.national_digits());
    let reply = api.register(Contact::Phone(&phone.e164), &with_phone).await;
    reply.assert_problem(400, "weak_password");
    assert!(reply.error_codes().iter().any(|c| c == "personal_data"), "{reply}");

    // Cyrillic letters count for the upper/lower-case rules (§3.2).
    let cyrillic = register("Жук#Влг7Тмн").await;
    cyrillic.expect(202);
}

#[tokio::test]
async fn wrong_codes_are_otp_invalid_and_five_of_them_kill_the_code() {
    let runner = Runner::start().await;
    let api = runner.api();
    let phone = TestPhone::random();
    let started = api.register(Contact::Phone(&phone.e164), &strong_password()).await;
    started.expect(202);
    let flow_id = started.str_at("/flow_id");
    let code = api.outbox_code(&phone.e164).await;
    let confirm = async |code: &str| {
        let body = json!({"flow_id": flow_id, "code": code});
        api.post_json("/v1/auth/register/confirm", &body).await
    };

    for _ in 0..4 {
        confirm(&different_code(&code)).await.assert_problem(400, "otp_invalid");
    }
    // The fifth wrong entry may still say otp_invalid or already report the dead code.
    let fifth = confirm(&different_code(&code)).await;
    match fifth.status.as_u16() {
        400 => fifth.assert_problem(400, "otp_invalid"),
        _ => fifth.assert_problem(429, "otp_attempts_exceeded"),
    }
    confirm(&code).await.assert_problem(429, "otp_attempts_exceeded");
}

#[tokio::test]
async fn protected_endpoints_demand_a_valid_bearer_token() {
    let runner = Runner::start().await;
    let api = runner.api();
    let phone = TestPhone::random();
    let tokens = api.register_and_confirm(&phone.e164, &strong_password()).await;

    let missing = api.get("/v1/me").await;
    missing.expect(401).assert_problem_shape();
    let garbage = api.bearer("not-a-token").get("/v1/me").await;
    garbage.expect(401).assert_problem_shape();

    // Raising the level in the payload must break the signature.
    let parts: Vec<&str> = tokens.access_token.split('.').collect();
    let mut claims = unverified_claims(&tokens.access_token);
    claims["lvl"] = json!("confirmed");
    let forged_payload = base64_url(&serde_json::to_vec(&claims).expect("claims serialise"));
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    api.bearer(&forged).get("/v1/me").await.expect(401).assert_problem_shape();

    // Flip one signature character in the middle (the last one may only carry padding bits).
    let mut signature: Vec<char> = parts[2].chars().collect();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{}.{}.{}", parts[0], parts[1], signature.iter().collect::<String>());
    api.bearer(&tampered).get("/v1/me").await.expect(401).assert_problem_shape();

    api.me(&tokens.access_token).await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_an_incoming_one() {
    let runner = Runner::start().await;
    let api = runner.api();
    let replies = [
        api.get("/health").await,
        api.get("/openapi.json").await,
        api.get("/v1/me").await,
        api.get("/v1/no-such-route").await,
        api.post_json("/v1/auth/register", &json!({})).await,
        api.register(Contact::Phone(&TestPhone::random().e164), &strong_password()).await,
    ];
    for reply in &replies {
        assert!(reply.header("x-request-id").is_some_and(|id| !id.is_empty()), "{reply}");
    }

    let incoming = format!("e2e-{}", TestPhone::random().national_digits());
    for (method, path) in [(Method::GET, "/health"), (Method::GET, "/v1/me")] {
        let reply = api.send(method, path, None, &[("x-request-id", &incoming)]).await;
        assert_eq!(reply.header("x-request-id"), Some(incoming.as_str()), "{path}: {reply}");
    }
}

// ---------------------------------------------------------------------------------------------
// Second factors (§3.5, §3.7)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn totp_enrolment_adds_totp_and_single_use_backup_codes_to_login() {
    let (_runner, api, Citizen { phone, password, tokens }) = runner_with_citizen().await;
    let me = api.bearer(&tokens.access_token);

    // The SPEC gives the body, not the status, of the enrolment answer.
    let enrolment = me.post_empty("/v1/me/mfa/totp").await;
    assert!(matches!(enrolment.status.as_u16(), 200 | 201), "{enrolment}");
    let mut authenticator = Authenticator::new(&enrolment.str_at("/secret"));
    let uri = enrolment.str_at("/otpauth_uri");
    let from_uri = TOTP::from_url_unchecked(&uri).expect("an authenticator app can read the URI");
    assert_eq!(from_uri.generate(1_000_000), authenticator.totp.generate(1_000_000), "{uri}");

    let confirmed = me.post_json("/v1/me/mfa/totp/confirm", &json!({"code": authenticator.next_code().await})).await;
    confirmed.expect(200);
    let backup_codes: Vec<String> =
        confirmed.body["backup_codes"].as_array().into_iter().flatten().filter_map(|code| code.as_str().map(str::to_owned)).collect();
    assert_eq!(backup_codes.len(), 10, "{confirmed}");
    assert_eq!(backup_codes.iter().collect::<HashSet<_>>().len(), 10, "distinct: {confirmed}");
    assert_eq!(api.me(&tokens.access_token).await["mfa"]["totp"], true);

    let login = api.login(&phone.e164, &password).await;
    login.expect(200);
    let offered = methods(&login);
    for method in ["sms", "totp", "backup_code"] {
        assert!(offered.contains(method), "{method} is offered: {login}");
    }
    let with_totp = api
        .post_json(
            "/v1/auth/login/mfa",
            &json!({"flow_id": login.str_at("/flow_id"), "method": "totp",
                    "code": authenticator.next_code().await}),
        )
        .await;
    with_totp.expect(200);
    Tokens::from_json(&with_totp.body["tokens"]);

    let backup = &backup_codes[0];
    for attempt in 0..2 {
        let login = api.login(&phone.e164, &password).await;
        login.expect(200);
        let reply = api.post_json("/v1/auth/login/mfa", &json!({"flow_id": login.str_at("/flow_id"), "method": "backup_code", "code": backup})).await;
        if attempt == 0 {
            reply.expect(200);
        } else {
            // A spent backup code is simply a wrong code.
            reply.assert_problem(400, "otp_invalid");
        }
    }

    let without_code = me.delete("/v1/me/mfa/totp").await;
    assert!(without_code.status.is_client_error(), "disabling TOTP needs a code: {without_code}");
    let wrong = different_code(&authenticator.totp.generate_current().expect("a clock"));
    me.delete_json("/v1/me/mfa/totp", &json!({"code": wrong})).await.assert_problem(400, "otp_invalid");
    assert_eq!(api.me(&tokens.access_token).await["mfa"]["totp"], true, "still on");
    me.delete_json("/v1/me/mfa/totp", &json!({"code": authenticator.next_code().await})).await.expect(204);
    assert_eq!(api.me(&tokens.access_token).await["mfa"]["totp"], false);
    let login = api.login(&phone.e164, &password).await;
    login.expect(200);
    assert!(!methods(&login).contains("totp"), "{login}");
}

#[tokio::test]
async fn turning_off_the_sms_factor_at_simplified_level_skips_the_second_step() {
    let (_runner, api, Citizen { phone, password, tokens }) = runner_with_citizen().await;

    api.bearer(&tokens.access_token).put_json("/v1/me/mfa/sms", &json!({"enabled": false})).await.expect(200);
    assert_eq!(api.me(&tokens.access_token).await["mfa"]["sms"], false);

    let tokens = api.login_without_mfa(&phone.e164, &password).await;
    api.me(&tokens.access_token).await;
}

// ---------------------------------------------------------------------------------------------
// Sessions and password (§3.7)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_list_marks_the_current_one_and_deleting_another_revokes_it() {
    let (_runner, api, Citizen { phone, password, .. }) = runner_with_citizen().await;
    let desktop = api.login_with_sms(&phone.e164, &password).await;
    let phone_app = api.user_agent(MOBILE_UA).login_with_sms(&phone.e164, &password).await;
    let (desktop_sid, phone_sid) = (desktop.session_id(), phone_app.session_id());
    let me = api.bearer(&desktop.access_token);

    let listed = me.get("/v1/me/sessions").await;
    listed.expect(200);
    let items = listed.body["items"].as_array().cloned().unwrap_or_default();
    let find = |sid: &str| items.iter().find(|item| item["session_id"] == sid).unwrap_or_else(|| panic!("session {sid} is listed: {listed}"));
    assert_eq!(find(&desktop_sid)["current"], true, "{listed}");
    assert_eq!(find(&phone_sid)["current"], false, "{listed}");
    assert_eq!(find(&phone_sid)["user_agent"], MOBILE_UA, "{listed}");
    assert_eq!(items.iter().filter(|item| item["current"] == true).count(), 1, "{listed}");
    for item in &items {
        parse_utc(&item["created_at"]);
        parse_utc(&item["last_seen_at"]);
        assert!(item["ip"].is_string(), "{item}");
    }

    // Another citizen's session is 404, never a hint that it exists (§2).
    let stranger_phone = TestPhone::random();
    let stranger = api.register_and_confirm(&stranger_phone.e164, &strong_password()).await;
    api.bearer(&stranger.access_token).delete(&format!("/v1/me/sessions/{phone_sid}")).await.expect(404);

    me.delete(&format!("/v1/me/sessions/{phone_sid}")).await.expect(204);
    api.refresh(&phone_app.refresh_token).await.expect(401);
    api.refresh(&desktop.refresh_token).await.expect(200);
    let listed = me.get("/v1/me/sessions").await;
    let still_there = listed.body["items"].as_array().into_iter().flatten().any(|item| item["session_id"] == phone_sid.as_str());
    assert!(!still_there, "a deleted session leaves the list: {listed}");
}

#[tokio::test]
async fn password_change_checks_the_current_password_refuses_reuse_and_revokes_other_sessions() {
    let (_runner, api, Citizen { phone, password, tokens: other_session }) = runner_with_citizen().await;
    let current = api.login_with_sms(&phone.e164, &password).await;
    let me = api.bearer(&current.access_token);

    // The SPEC names no status here; the code must still say what went wrong.
    let wrong = me.post_json("/v1/me/password", &json!({"current_password": strong_password(), "new_password": strong_password()})).await;
    assert!(matches!(wrong.status.as_u16(), 400 | 401 | 403), "{wrong}");
    wrong.assert_problem(wrong.status.as_u16(), "invalid_credentials");

    let reused = me.post_json("/v1/me/password", &json!({"current_password": password, "new_password": password})).await;
    reused.assert_problem(400, "weak_password");
    assert!(reused.error_codes().iter().any(|c| c == "reused"), "{reused}");

    let before = api.settled_outbox(&phone.e164).await.len();
    let new_password = strong_password();
    me.post_json("/v1/me/password", &json!({"current_password": password, "new_password": new_password})).await.expect(204);

    api.refresh(&other_session.refresh_token).await.expect(401);
    api.refresh(&current.refresh_token).await.expect(200);
    let outbox = api.wait_for_outbox(&phone.e164, before + 1).await;
    assert!(outbox[..outbox.len() - before].iter().any(|m| !has_code(m)), "the owner is told the password changed");
    api.login(&phone.e164, &password).await.assert_problem(401, "invalid_credentials");
    api.login_with_sms(&phone.e164, &new_password).await;
}

// ---------------------------------------------------------------------------------------------
// Resending codes (§3.3)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn resend_sooner_than_the_interval_is_rate_limited_with_retry_after() {
    let runner = Runner::start().await;
    let api = runner.api();
    let started = api.register(Contact::Phone(&TestPhone::random().e164), &strong_password()).await;
    started.expect(202);

    let resend = api.post_json("/v1/auth/otp/resend", &json!({"flow_id": started.str_at("/flow_id")})).await;
    resend.assert_problem(429, "rate_limited");
    let retry_after: u64 =
        resend.header("retry-after").and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("Retry-After in seconds: {:?}", resend.headers));
    assert!((1..=60).contains(&retry_after), "at most the 60 s interval: {retry_after}");
}

#[tokio::test]
async fn resend_after_the_interval_delivers_a_new_code_that_confirms() {
    let runner = Runner::start_with(&[("OTP_RESEND_SECONDS", "1")]).await;
    let api = runner.api();
    let phone = TestPhone::random();
    let started = api.register(Contact::Phone(&phone.e164), &strong_password()).await;
    started.expect(202);
    let first = api.outbox_code(&phone.e164).await;

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let resent = api.post_json("/v1/auth/otp/resend", &json!({"flow_id": started.str_at("/flow_id")})).await;
    resent.expect(202);
    assert_eq!(keys(&resent.body), keys(&started.body), "same body as register: {resent}");
    assert_eq!(resent.body["channel"], "sms");
    let second = api.outbox_code(&phone.e164).await;
    assert_ne!(first, second);

    api.post_json("/v1/auth/register/confirm", &json!({"flow_id": resent.str_at("/flow_id"), "code": second})).await.expect(201);
}

#[tokio::test]
async fn a_sixth_code_to_one_destination_within_an_hour_is_rate_limited() {
    let runner = Runner::start_with(&[("OTP_RESEND_SECONDS", "1")]).await;
    let api = runner.api();
    let started = api.register(Contact::Phone(&TestPhone::random().e164), &strong_password()).await;
    started.expect(202);
    let resend = async || api.post_json("/v1/auth/otp/resend", &json!({"flow_id": started.str_at("/flow_id")})).await;

    for _ in 2..=5 {
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        resend().await.expect(202);
    }
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let sixth = resend().await;
    sixth.assert_problem(429, "rate_limited");
    assert!(sixth.header("retry-after").is_some(), "{:?}", sixth.headers);
}

// ---------------------------------------------------------------------------------------------
// Service endpoints and hygiene (§2, §7)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn health_and_the_openapi_document_are_served() {
    let runner = Runner::start().await;
    let api = runner.api();

    let health = api.get("/health").await;
    health.expect(200);
    assert_eq!(health.body, json!({"status": "ok"}));

    let openapi = api.get("/openapi.json").await;
    openapi.expect(200);
    let version = openapi.str_at("/openapi");
    assert!(version.starts_with("3.1"), "OpenAPI 3.1, got {version}");
    let paths: HashSet<String> =
        openapi.body["paths"].as_object().map(|paths| paths.keys().map(|path| without_parameter_names(path)).collect()).unwrap_or_default();
    for path in [
        "/v1/auth/register",
        "/v1/auth/register/confirm",
        "/v1/auth/otp/resend",
        "/v1/auth/login",
        "/v1/auth/login/mfa",
        "/v1/auth/password/recover",
        "/v1/auth/password/recover/confirm",
        "/v1/auth/token/refresh",
        "/v1/auth/logout",
        "/v1/me",
        "/v1/me/sessions",
        "/v1/me/sessions/{}",
        "/v1/me/login-history",
        "/v1/me/password",
        "/v1/me/mfa/totp",
        "/v1/me/mfa/totp/confirm",
        "/v1/me/mfa/sms",
    ] {
        assert!(paths.contains(path), "{path} is documented; documented: {paths:?}");
    }
}

#[tokio::test]
async fn runner_logs_never_contain_phone_numbers_codes_or_passwords() {
    // Debug level for the project's own crates makes leaks likelier to surface.
    let log_filter = "info,auth=debug,notifications=debug,shared=debug,local_runner=debug";
    let runner = Runner::start_with(&[("RUST_LOG", log_filter)]).await;
    let api = runner.api();
    let phone = TestPhone::random();
    let password = strong_password();
    let wrong = strong_password();

    let started = api.register(Contact::Phone(&phone.pretty()), &password).await;
    started.expect(202);
    let code = api.outbox_code(&phone.e164).await;
    api.post_json("/v1/auth/register/confirm", &json!({"flow_id": started.str_at("/flow_id"), "code": code})).await.expect(201);
    api.login(&phone.trunk(), &wrong).await.assert_problem(401, "invalid_credentials");
    let tokens = api.login_with_sms(&phone.e164, &password).await;
    let recover = api.post_json("/v1/auth/password/recover", &json!({"login": phone.e164})).await;
    recover.expect(202);
    let recovery_code = api.outbox_code(&phone.e164).await;
    let new_password = strong_password();
    api.post_json(
        "/v1/auth/password/recover/confirm",
        &json!({"flow_id": recover.str_at("/flow_id"), "code": recovery_code,
                "new_password": new_password}),
    )
    .await
    .expect(204);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let log = runner.log();
    assert!(!log.trim().is_empty(), "the runner logs something (e.g. its listening line)");
    let secrets = [
        ("phone digits", phone.national_digits().to_owned()),
        ("formatted phone", phone.pretty()),
        ("password", password),
        ("wrong password", wrong),
        ("new password", new_password),
        ("refresh token", tokens.refresh_token.clone()),
    ];
    for (what, secret) in &secrets {
        assert_not_logged(&log, what, secret, |line| line.contains(secret.as_str()));
    }
    for code in runner.issued_codes() {
        assert_not_logged(&log, "one-time code", &code, |line| logs_code(line, &code));
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An authenticator app: TOTP codes, each from a later 30 s step than the last one used,
/// because the server accepts every step only once.
struct Authenticator {
    totp: TOTP,
    last_step: Option<u64>,
}

impl Authenticator {
    fn new(base32_secret: &str) -> Authenticator {
        let secret = Secret::Encoded(base32_secret.to_owned()).to_bytes().expect("a base32 secret");
        let totp = TOTP::new_unchecked(TotpAlgorithm::SHA1, 6, 1, 30, secret, None, "e2e".to_owned());
        Authenticator { totp, last_step: None }
    }

    async fn next_code(&mut self) -> String {
        loop {
            let now = unix_now();
            let step = now / 30;
            if self.last_step.is_none_or(|last| step > last) {
                self.last_step = Some(step);
                return self.totp.generate(now);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the clock is after 1970").as_secs()
}

fn methods(login: &Reply) -> HashSet<String> {
    login.body["methods"].as_array().into_iter().flatten().filter_map(|method| method.as_str().map(str::to_owned)).collect()
}

fn has_code(message: &Value) -> bool {
    message["body"].as_str().is_some_and(|body| !six_digit_numbers(body).is_empty())
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|object| object.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

/// A problem body without the fields that legitimately differ per request.
fn without_request_fields(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        for field in ["instance", "request_id", "trace_id", "timestamp"] {
            object.remove(field);
        }
    }
    body
}

/// `needle` occurs in `haystack` in order, not necessarily adjacent.
fn is_subsequence(needle: &[&str], haystack: &[&str]) -> bool {
    let mut rest = haystack.iter();
    needle.iter().all(|wanted| rest.any(|item| item == wanted))
}

/// `/v1/me/sessions/{id}` → `/v1/me/sessions/{}` so parameter names do not matter.
fn without_parameter_names(path: &str) -> String {
    path.split('/').map(|segment| if segment.starts_with('{') { "{}" } else { segment }).collect::<Vec<_>>().join("/")
}

/// Fails with the offending lines (the secret masked) when `leaks` matches any log line.
fn assert_not_logged(log: &str, what: &str, secret: &str, leaks: impl Fn(&str) -> bool) {
    let leaked: Vec<String> = log.lines().filter(|line| leaks(line)).map(|line| line.replace(secret, "<REDACTED>")).collect();
    assert!(leaked.is_empty(), "the {what} appears in the runner log:\n{}", leaked.join("\n"));
}

/// A standalone six-digit run, ignoring fractional seconds of timestamps (`.123456`),
/// which would otherwise match a code by chance.
fn logs_code(line: &str, code: &str) -> bool {
    line.match_indices(code).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.') && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

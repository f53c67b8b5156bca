//! Agencies (МВД, ФНС, СФР, ГИБДД, МФЦ…) as this system knows them: who they are, what they may
//! do, and how their signed requests are checked and applied exactly once.
//!
//! - [`Registry`]: the agency list, loaded from `AGENCIES_JSON` (the document itself), else the
//!   file named by `AGENCIES_FILE`, else (never on Lambda) the dev seed
//!   `infra/local/seed/agencies.json`. Shape (SPEC §7), with optional extra accepted secrets for
//!   rotation: `{"agencies": [{"id", "name", "webhook_secret", "webhook_secrets"?: [..],
//!   "capabilities": ["applications" | "identity_verification" | "identity_confirmation"]}]}`.
//! - [`Registry::verify`]: Standard Webhooks v1 (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature`, 5-minute tolerance) against every secret of the agency.
//! - [`apply_once`]: `webhook-id` deduplication. The first answer (status and body) is stored at
//!   `WEBHOOK#<agency>#<webhook-id>` for 7 days in the same transaction as the state change it
//!   reports, so a redelivery gets the same answer and nothing is applied twice.
//!
//! An axum handler for a signed agency endpoint reads the raw body as `Bytes`, then:
//! ```ignore
//! let agency = state.agencies.verify(&agency_id, &headers, &body, state.ticker.now())?;
//! let webhook_id = agencies::webhook_id(&headers)?;
//! Ok(agencies::apply_once(kv, &relay, &agency.id, webhook_id, || decide(&state, agency, &body)).await)
//! ```
//! where `decide` reads what it needs and returns a [`Decision`] (ops + events + answer) or a
//! problem, which is stored as the answer too when it is final (4xx).

use std::collections::HashSet;
use std::future::Future;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use standardwebhooks::{Webhook, WebhookError};

use crate::http::ApiError;
use crate::idempotency;
use crate::outbox::Relay;
use crate::ports::KeyValue;

/// The dev seed, compiled in so the local runner works from any directory.
const DEV_SEED: &str = include_str!("../../infra/local/seed/agencies.json");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Receives applications for its services and pushes their status changes.
    Applications,
    /// A registry agency that verifies profiles (`identity.verification_completed`).
    IdentityVerification,
    /// Confirms identities in person or by a trusted channel (`identity.confirmed`).
    IdentityConfirmation,
    /// Issues charges (fines, taxes, duties) through `charge.issued` (SPEC §9).
    Charges,
    /// Publishes appointment slots (SPEC §10).
    Appointments,
}

pub struct Agency {
    pub id: String,
    pub name: String,
    pub capabilities: Vec<Capability>,
    /// Every accepted secret: the current one first, then the ones being rotated out.
    secrets: Vec<Webhook>,
    /// Where the portal delivers what concerns the agency (SPEC §4.5), if it takes deliveries.
    pub delivery_url: Option<String>,
    /// Secrets signing deliveries: the first signs (distinct from the inbound secrets).
    delivery_secrets: Vec<String>,
}

impl std::fmt::Debug for Agency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agency")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("capabilities", &self.capabilities)
            .field("secrets", &self.secrets.len())
            .field("delivery_url", &self.delivery_url)
            .field("delivery_secrets", &self.delivery_secrets.len())
            .finish()
    }
}

impl Agency {
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// The secret that signs deliveries to this agency (`whsec_…`), if it takes deliveries.
    pub fn delivery_secret(&self) -> Option<&str> {
        self.delivery_secrets.first().map(String::as_str)
    }

    /// Points the agency's deliveries at `url` signed with `secret` (the local runner's demo
    /// agencies; never on Lambda).
    pub fn deliver_to(&mut self, url: String, secret: String) {
        self.delivery_url = Some(url);
        self.delivery_secrets = vec![secret];
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("malformed agency registry: {0}")]
    Malformed(String),
    #[error(transparent)]
    Source(#[from] crate::settings::SourceError),
}

#[derive(Debug)]
pub struct Registry {
    agencies: Vec<Agency>,
}

#[derive(Deserialize)]
struct RegistryDocument {
    agencies: Vec<AgencyDocument>,
}

#[derive(Deserialize)]
struct AgencyDocument {
    id: String,
    name: String,
    #[serde(default)]
    webhook_secret: Option<String>,
    #[serde(default)]
    webhook_secrets: Vec<String>,
    #[serde(default)]
    capabilities: Vec<Capability>,
    #[serde(default)]
    delivery_url: Option<String>,
    #[serde(default)]
    delivery_secrets: Vec<String>,
}

impl Registry {
    /// From the environment: `AGENCIES_JSON`, else `AGENCIES_FILE`, else the dev seed, which is
    /// refused on Lambda because its secrets are public.
    pub fn load() -> Result<Self, RegistryError> {
        Self::from_json(&crate::settings::registry_document("AGENCIES_JSON", "AGENCIES_FILE", DEV_SEED)?)
    }

    /// The seed agencies with their dev-only secrets (local runner and tests).
    pub fn dev_seed() -> Result<Self, RegistryError> {
        Self::from_json(DEV_SEED)
    }

    pub fn from_json(json: &str) -> Result<Self, RegistryError> {
        let document: RegistryDocument = serde_json::from_str(json).map_err(|e| RegistryError::Malformed(e.to_string()))?;
        let mut seen = HashSet::new();
        let mut agencies = Vec::with_capacity(document.agencies.len());
        for entry in document.agencies {
            let valid_id = !entry.id.is_empty()
                && entry.id.len() <= 64
                && entry.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !valid_id {
                return Err(RegistryError::Malformed(format!("agency id {:?} must be 1-64 of [a-z0-9_-]", entry.id)));
            }
            if !seen.insert(entry.id.clone()) {
                return Err(RegistryError::Malformed(format!("agency {} is listed twice", entry.id)));
            }
            if entry.name.trim().is_empty() {
                return Err(RegistryError::Malformed(format!("agency {} has no name", entry.id)));
            }
            let secrets =
                entry.webhook_secret.iter().chain(entry.webhook_secrets.iter()).map(|secret| parse_secret(&entry.id, secret)).collect::<Result<Vec<_>, _>>()?;
            if secrets.is_empty() {
                return Err(RegistryError::Malformed(format!("agency {} has no webhook secret", entry.id)));
            }
            if let Some(url) = &entry.delivery_url {
                check_delivery_url(&entry.id, url)?;
                if entry.delivery_secrets.is_empty() {
                    return Err(RegistryError::Malformed(format!("agency {} has a delivery_url but no delivery_secrets", entry.id)));
                }
            }
            for secret in &entry.delivery_secrets {
                parse_secret(&entry.id, secret)?;
            }
            agencies.push(Agency {
                id: entry.id,
                name: entry.name,
                capabilities: entry.capabilities,
                secrets,
                delivery_url: entry.delivery_url,
                delivery_secrets: entry.delivery_secrets,
            });
        }
        Ok(Self { agencies })
    }

    pub fn get_mut(&mut self, agency_id: &str) -> Option<&mut Agency> {
        self.agencies.iter_mut().find(|a| a.id == agency_id)
    }

    pub fn get(&self, agency_id: &str) -> Option<&Agency> {
        self.agencies.iter().find(|a| a.id == agency_id)
    }

    pub fn agencies(&self) -> &[Agency] {
        &self.agencies
    }

    /// The first agency with `capability` (e.g. the registry agency that verifies profiles).
    pub fn first_with(&self, capability: Capability) -> Option<&Agency> {
        self.agencies.iter().find(|a| a.can(capability))
    }

    /// Checks a Standard Webhooks v1 signature of `body` by `agency_id` against each of its
    /// secrets. 401 `signature_invalid` for an unknown agency or a missing/bad signature,
    /// 401 `timestamp_out_of_tolerance` when `webhook-timestamp` is more than 5 minutes off.
    pub fn verify(&self, agency_id: &str, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Result<&Agency, ApiError> {
        let agency = self.get(agency_id).ok_or_else(signature_invalid)?;
        check_timestamp(headers, now.timestamp())?;
        for secret in &agency.secrets {
            match secret.verify(body, headers) {
                Ok(()) => return Ok(agency),
                // The timestamp is checked before the signature and is the same for every secret.
                Err(WebhookError::TimestampTooOldError | WebhookError::FutureTimestampError) => return Err(timestamp_out_of_tolerance()),
                Err(_) => continue,
            }
        }
        Err(signature_invalid())
    }
}

/// The `{"type", "data"}` of a webhook (SPEC §4.4) or a delivery (§4.5, which adds
/// `timestamp`), read before its type says what `data` holds.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// Webhook timestamps may differ from our clock by at most this many seconds (SPEC §4.4).
pub const TIMESTAMP_TOLERANCE_SECONDS: i128 = 5 * 60;

/// Checks `webhook-timestamp` before the signature library sees it: the library subtracts it
/// from the current time in plain `i64`, which overflows (and panics) on extreme values.
pub fn check_timestamp(headers: &HeaderMap, now: i64) -> Result<(), ApiError> {
    let timestamp = headers.get("webhook-timestamp").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok()).ok_or_else(signature_invalid)?;
    if (i128::from(now) - i128::from(timestamp)).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(timestamp_out_of_tolerance());
    }
    Ok(())
}

/// HTTPS, or plain HTTP to a loopback address (local mode), SPEC §4.5.
fn check_delivery_url(agency_id: &str, url: &str) -> Result<(), RegistryError> {
    let parsed = url::Url::parse(url).map_err(|e| RegistryError::Malformed(format!("agency {agency_id}: delivery_url: {e}")))?;
    if crate::http::is_https_or_loopback(&parsed) {
        Ok(())
    } else {
        Err(RegistryError::Malformed(format!("agency {agency_id}: delivery_url must be https (plain http only to a loopback address)")))
    }
}

fn parse_secret(agency_id: &str, secret: &str) -> Result<Webhook, RegistryError> {
    let malformed = || RegistryError::Malformed(format!("agency {agency_id}: webhook secrets must look like whsec_<base64 of at least 24 bytes>"));
    let encoded = secret.trim().strip_prefix("whsec_").ok_or_else(malformed)?;
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| malformed())?;
    if key.len() < 24 {
        return Err(malformed());
    }
    Webhook::from_bytes(key).map_err(|_| malformed())
}

pub fn signature_invalid() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "signature_invalid", "Подпись запроса отсутствует или неверна")
}

pub fn timestamp_out_of_tolerance() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "timestamp_out_of_tolerance", "Метка времени запроса отличается от текущего времени более чем на 5 минут")
}

/// The raw request body of a signed endpoint (the signature covers the exact bytes), with its
/// rejections as problem+json: a body over the size limit is 413 `payload_too_large`.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Тело запроса слишком большое"))
            }
            Err(rejection) => Err(ApiError::field("body", "unreadable", &rejection.body_text())),
        }
    }
}

/// The `webhook-id` of a verified request, usable as a key: 1-128 printable ASCII characters.
pub fn webhook_id(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::field("webhook-id", "invalid", "Заголовок webhook-id должен содержать от 1 до 128 печатных символов ASCII"))
}

// ---------------------------------------------------------------------------------------------
// Exactly-once application of deliveries
// ---------------------------------------------------------------------------------------------

pub use crate::idempotency::{Decision, StoredAnswer};

/// Applies a verified delivery exactly once (`idempotency::apply_once` keyed by the agency and
/// its `webhook-id`, remembered 7 days): a redelivery gets the first answer again.
pub async fn apply_once<F, Fut>(kv: &dyn KeyValue, relay: &Relay, agency_id: &str, webhook_id: &str, now: DateTime<Utc>, decide: F) -> Response
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Decision, ApiError>>,
{
    idempotency::apply_once(kv, relay, &idempotency::Key::webhook(agency_id, webhook_id), None, now, decide).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use base64::Engine as _;

    const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn registry(secrets: &[&str]) -> Registry {
        let doc = serde_json::json!({"agencies": [
            {"id": "mvd", "name": "МВД России", "webhook_secret": secrets[0], "webhook_secrets": &secrets[1..], "capabilities": ["applications"]},
        ]});
        Registry::from_json(&doc.to_string()).expect("valid registry")
    }

    fn signed(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
        Webhook::new(secret).expect("secret").sign(id, timestamp, body).expect("sign")
    }

    fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        h.insert("webhook-timestamp", HeaderValue::from_str(&timestamp.to_string()).unwrap());
        h.insert("webhook-signature", HeaderValue::from_str(signature).unwrap());
        h
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn extreme_or_garbage_timestamps_are_refused_without_panicking() {
        let reg = registry(&[SECRET_A]);
        let body = br#"{"x":1}"#;
        let sig = signed(SECRET_A, "msg_t", now(), body);
        for extreme in [i64::MIN, i64::MAX, i64::MIN + 1, 0, now() + 301, now() - 301] {
            let err = reg.verify("mvd", &headers("msg_t", extreme, &sig), body, chrono::Utc::now()).unwrap_err();
            assert_eq!((err.status, err.code), (StatusCode::UNAUTHORIZED, "timestamp_out_of_tolerance"), "{extreme}");
        }
        for garbage in ["", "abc", "1e9", "9223372036854775808", "-9223372036854775809", "12 34"] {
            let mut h = headers("msg_t", now(), &sig);
            h.insert("webhook-timestamp", HeaderValue::from_str(garbage).unwrap());
            let err = reg.verify("mvd", &h, body, chrono::Utc::now()).unwrap_err();
            assert_eq!((err.status, err.code), (StatusCode::UNAUTHORIZED, "signature_invalid"), "{garbage:?}");
        }
        let mut h = headers("msg_t", now(), &sig);
        h.remove("webhook-timestamp");
        assert_eq!(reg.verify("mvd", &h, body, chrono::Utc::now()).unwrap_err().code, "signature_invalid");
        // Within tolerance the signature decides as before.
        let edge = now() - 299;
        let sig = signed(SECRET_A, "msg_t", edge, body);
        assert!(reg.verify("mvd", &headers("msg_t", edge, &sig), body, chrono::Utc::now()).is_ok());
    }

    #[test]
    fn correctly_signed_body_is_accepted() {
        let body = br#"{"type":"application.message","data":{}}"#;
        let sig = signed(SECRET_A, "msg_1", now(), body);
        let reg = registry(&[SECRET_A]);
        let agency = reg.verify("mvd", &headers("msg_1", now(), &sig), body, chrono::Utc::now()).expect("valid");
        assert_eq!(agency.id, "mvd");
    }

    #[test]
    fn rotation_accepts_signatures_by_either_secret() {
        let reg = registry(&[SECRET_A, SECRET_B]);
        let body = br#"{"x":1}"#;
        for secret in [SECRET_A, SECRET_B] {
            let sig = signed(secret, "msg_2", now(), body);
            assert!(reg.verify("mvd", &headers("msg_2", now(), &sig), body, chrono::Utc::now()).is_ok(), "{secret}");
        }
        // A sender mid-rotation signs with both keys; one unknown signature among them is fine.
        let both = format!("v1,AAAA {} {}", signed(SECRET_B, "msg_3", now(), body), signed("whsec_dW5rbm93bi1rZXktdW5rbm93bi1rZXk=", "msg_3", now(), body));
        assert!(registry(&[SECRET_B]).verify("mvd", &headers("msg_3", now(), &both), body, chrono::Utc::now()).is_ok());
    }

    #[test]
    fn a_retired_secret_is_refused() {
        let body = br#"{"x":1}"#;
        let sig = signed(SECRET_B, "msg_4", now(), body);
        let err = registry(&[SECRET_A]).verify("mvd", &headers("msg_4", now(), &sig), body, chrono::Utc::now()).unwrap_err();
        assert_eq!((err.status, err.code), (StatusCode::UNAUTHORIZED, "signature_invalid"));
    }

    #[test]
    fn tampered_body_or_id_is_refused() {
        let reg = registry(&[SECRET_A]);
        let sig = signed(SECRET_A, "msg_5", now(), br#"{"status":"approved"}"#);
        let err = reg.verify("mvd", &headers("msg_5", now(), &sig), br#"{"status":"rejected"}"#, chrono::Utc::now()).unwrap_err();
        assert_eq!(err.code, "signature_invalid");
        let err = reg.verify("mvd", &headers("msg_6", now(), &sig), br#"{"status":"approved"}"#, chrono::Utc::now()).unwrap_err();
        assert_eq!(err.code, "signature_invalid");
    }

    #[test]
    fn stale_or_future_timestamp_is_out_of_tolerance() {
        let reg = registry(&[SECRET_A]);
        let body = b"{}";
        for at in [now() - 301, now() + 301] {
            let sig = signed(SECRET_A, "msg_7", at, body);
            let err = reg.verify("mvd", &headers("msg_7", at, &sig), body, chrono::Utc::now()).unwrap_err();
            assert_eq!((err.status, err.code), (StatusCode::UNAUTHORIZED, "timestamp_out_of_tolerance"), "at {at}");
        }
        let at = now() - 290;
        let sig = signed(SECRET_A, "msg_8", at, body);
        assert!(reg.verify("mvd", &headers("msg_8", at, &sig), body, chrono::Utc::now()).is_ok());
    }

    #[test]
    fn unknown_agency_and_missing_headers_are_signature_invalid() {
        let reg = registry(&[SECRET_A]);
        let body = b"{}";
        let sig = signed(SECRET_A, "msg_9", now(), body);
        assert_eq!(reg.verify("fns", &headers("msg_9", now(), &sig), body, chrono::Utc::now()).unwrap_err().code, "signature_invalid");
        for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut h = headers("msg_9", now(), &sig);
            h.remove(missing);
            assert_eq!(reg.verify("mvd", &h, body, chrono::Utc::now()).unwrap_err().code, "signature_invalid", "without {missing}");
        }
        let mut h = headers("msg_9", now(), &sig);
        h.insert("webhook-timestamp", HeaderValue::from_static("yesterday"));
        assert_eq!(reg.verify("mvd", &h, body, chrono::Utc::now()).unwrap_err().code, "signature_invalid");
    }

    #[test]
    fn malformed_registries_are_refused() {
        let short = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 8]));
        for doc in [
            serde_json::json!({"agencies": [{"id": "mvd", "name": "МВД", "capabilities": []}]}),
            serde_json::json!({"agencies": [{"id": "mvd", "name": "МВД", "webhook_secret": "plain-text"}]}),
            serde_json::json!({"agencies": [{"id": "mvd", "name": "МВД", "webhook_secret": short}]}),
            serde_json::json!({"agencies": [{"id": "MVD!", "name": "МВД", "webhook_secret": SECRET_A}]}),
            serde_json::json!({"agencies": [{"id": "mvd", "name": "МВД", "webhook_secret": SECRET_A}, {"id": "mvd", "name": "x", "webhook_secret": SECRET_B}]}),
            serde_json::json!({"agencies": [{"id": "mvd", "name": "МВД", "webhook_secret": SECRET_A, "capabilities": ["teleportation"]}]}),
        ] {
            assert!(Registry::from_json(&doc.to_string()).is_err(), "{doc}");
        }
    }

    #[test]
    fn dev_seed_has_an_agency_for_every_capability() {
        let seed = Registry::dev_seed().expect("the dev seed parses");
        assert!(seed.agencies().len() >= 5);
        for capability in [Capability::Applications, Capability::IdentityVerification, Capability::IdentityConfirmation] {
            assert!(seed.first_with(capability).is_some(), "{capability:?}");
        }
        assert!(format!("{:?}", seed.get("mvd")).contains("secrets: 2"), "Debug shows the count, never a secret");
    }

    #[test]
    fn webhook_ids_must_be_short_printable_ascii() {
        let mut h = HeaderMap::new();
        assert!(webhook_id(&h).is_err());
        h.insert("webhook-id", HeaderValue::from_static("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"));
        assert_eq!(webhook_id(&h).unwrap(), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W");
        h.insert("webhook-id", HeaderValue::from_str(&"a".repeat(129)).unwrap());
        assert!(webhook_id(&h).is_err());
        h.insert("webhook-id", HeaderValue::from_static("with space"));
        assert!(webhook_id(&h).is_err());
    }
}

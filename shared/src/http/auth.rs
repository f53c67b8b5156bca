//! Bearer access tokens: EdDSA JWTs verified by `kid` against the published key ring.
//! Every function verifies tokens locally; only the auth function signs them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::problem::ApiError;
use crate::keys::KeyRing;
use crate::ports::KeyValue;

/// Claims of an access token (SPEC §3.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub sid: String,
    pub lvl: String,
    pub amr: Vec<String>,
}

/// The issuer and audience when `JWT_ISSUER` / `JWT_AUDIENCE` are unset (the local runner's).
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:3000";
pub const DEFAULT_AUDIENCE: &str = "gosuslugi-api";

pub struct TokenVerifier {
    issuer: String,
    audience: String,
    keys: HashMap<String, DecodingKey>,
    /// When set, a token is accepted only while its session exists (logout, revocation,
    /// refresh-token reuse and password changes end sessions before the token expires).
    sessions: Option<Arc<dyn KeyValue>>,
}

impl TokenVerifier {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, ring: &KeyRing) -> Self {
        let keys = ring.keys().iter().map(|k| (k.kid.clone(), DecodingKey::from_ed_der(&k.public))).collect();
        Self { issuer: issuer.into(), audience: audience.into(), keys, sessions: None }
    }

    /// Also require the token's session to be live in `kv` (one read per request).
    /// The verifier every function uses: `JWT_ISSUER` / `JWT_AUDIENCE` (defaults as in auth)
    /// over `ring`, with the session-liveness check against `kv`.
    pub fn from_settings(env: &crate::settings::Env, ring: &KeyRing, kv: Arc<dyn KeyValue>) -> Self {
        let issuer = env.text("JWT_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        let audience = env.text("JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        Self::new(issuer, audience, ring).with_sessions(kv)
    }

    pub fn with_sessions(mut self, kv: Arc<dyn KeyValue>) -> Self {
        self.sessions = Some(kv);
        self
    }

    /// Verifies the token and, when configured, that its session has not ended.
    pub async fn verify_live(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let claims = self.verify(token)?;
        if let Some(kv) = &self.sessions {
            let (pk, sk) = crate::records::session_key(&claims.sub, &claims.sid);
            if kv.get(&pk, &sk).await?.is_none() {
                return Err(ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "session_expired", "Сеанс завершён, войдите снова"));
            }
        }
        Ok(claims)
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        self.decode(token)
    }

    /// Checks the signature (EdDSA, a key of the ring by `kid`), issuer, audience and expiry,
    /// and that the claims have the shape of `T` (a citizen's or a client's token).
    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid_token())?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid_token());
        }
        let key = header.kid.as_deref().and_then(|kid| self.keys.get(kid)).ok_or_else(invalid_token)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        jsonwebtoken::decode::<T>(token, key, &validation).map(|data| data.claims).map_err(|_| invalid_token())
    }
}

/// Claims of a client's access token (`client_credentials`, SPEC §8): the client acts for
/// itself, so there is no citizen, session or level. `sub` and `cid` are the client id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub cid: String,
    /// Space-separated scopes (RFC 8693 §4.2 form), e.g. `agency`.
    pub scope: String,
}

impl ClientClaims {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// How long a client's access token lives (SPEC §8: 10 minutes).
pub const CLIENT_TOKEN_SECONDS: i64 = 600;

/// Signs a client's access token with the ring's current key.
pub fn issue_client_token(
    ring: &KeyRing,
    issuer: &str,
    audience: &str,
    client_id: &str,
    scope: &str,
    jti: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, ApiError> {
    let claims = ClientClaims {
        iss: issuer.to_owned(),
        sub: client_id.to_owned(),
        aud: audience.to_owned(),
        exp: now.timestamp() + CLIENT_TOKEN_SECONDS,
        iat: now.timestamp(),
        jti,
        cid: client_id.to_owned(),
        scope: scope.to_owned(),
    };
    let key = ring.current();
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(ApiError::internal)
}

impl TokenVerifier {
    /// Verifies a client's access token (a citizen's token does not parse as one).
    pub fn verify_client(&self, token: &str) -> Result<ClientClaims, ApiError> {
        self.decode(token)
    }
}

/// An agency calling the agency API (SPEC §4.6) with a `client_credentials` token of scope
/// `agency`, on a path whose `{agency_id}` is the token's client. 401 problem+json for a missing
/// or bad token, 403 without the scope, 404 for another agency's path (or a route without
/// `{agency_id}`): another agency's data does not exist for this caller.
#[derive(Clone, Debug)]
pub struct AgencyClient(pub ClientClaims);

impl AgencyClient {
    pub fn client_id(&self) -> &str {
        &self.0.cid
    }

    /// The agency of the path (checked to be the token's client).
    pub fn agency_id(&self) -> &str {
        &self.0.cid
    }

    /// The agency of the path, when it is the token's client; else 404 (another agency's data
    /// does not exist for this caller).
    pub fn require(&self, agency_id: &str) -> Result<(), ApiError> {
        if crate::keys::ct_eq_str(&self.0.cid, agency_id) { Ok(()) } else { Err(ApiError::not_found()) }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AgencyClient
where
    Arc<TokenVerifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = Arc::<TokenVerifier>::from_ref(state).verify_client(bearer(parts)?)?;
        if !claims.has_scope("agency") {
            return Err(ApiError::forbidden("Токен не даёт доступа к API ведомств"));
        }
        let caller = Self(claims);
        let params = axum::extract::RawPathParams::from_request_parts(parts, state).await.map_err(|_| ApiError::not_found())?;
        let path_agency = params.iter().find(|(name, _)| *name == "agency_id").map(|(_, value)| value).ok_or_else(ApiError::not_found)?;
        caller.require(path_agency)?;
        Ok(caller)
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(ApiError::unauthorized)?;
    let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).ok_or_else(ApiError::unauthorized)?;
    Ok(token.trim())
}

fn invalid_token() -> ApiError {
    ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_token", "Токен доступа недействителен или истёк")
}

/// An authenticated citizen. Extracting it answers 401 problem+json for a missing, malformed,
/// expired or foreign token.
#[derive(Clone, Debug)]
pub struct Authenticated(pub AccessClaims);

impl Authenticated {
    pub fn user_id(&self) -> &str {
        &self.0.sub
    }
    pub fn session_id(&self) -> &str {
        &self.0.sid
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<TokenVerifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        Arc::<TokenVerifier>::from_ref(state).verify_live(token).await.map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::from_json(&KeyRing::generate_json().unwrap()).unwrap()
    }

    #[test]
    fn a_client_token_verifies_as_a_client_and_never_as_a_citizen() {
        let ring = ring();
        let verifier = TokenVerifier::new(DEFAULT_ISSUER, DEFAULT_AUDIENCE, &ring);
        let token = issue_client_token(&ring, DEFAULT_ISSUER, DEFAULT_AUDIENCE, "mvd", "agency", "j1".into(), chrono::Utc::now()).unwrap();
        let claims = verifier.verify_client(&token).unwrap();
        assert_eq!((claims.cid.as_str(), claims.sub.as_str()), ("mvd", "mvd"));
        assert!(claims.has_scope("agency") && !claims.has_scope("agenc"));
        assert_eq!(verifier.verify(&token).unwrap_err().code, "invalid_token", "no session, no level: not a citizen's token");
        let client = AgencyClient(claims);
        assert!(client.require("mvd").is_ok());
        assert_eq!(client.require("fns").unwrap_err().status, axum::http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_client_token_of_another_ring_issuer_or_an_expired_one_is_refused() {
        let (ring, other) = (ring(), ring());
        let verifier = TokenVerifier::new(DEFAULT_ISSUER, DEFAULT_AUDIENCE, &ring);
        let now = chrono::Utc::now();
        let foreign = issue_client_token(&other, DEFAULT_ISSUER, DEFAULT_AUDIENCE, "mvd", "agency", "j".into(), now).unwrap();
        let wrong_issuer = issue_client_token(&ring, "https://elsewhere", DEFAULT_AUDIENCE, "mvd", "agency", "j".into(), now).unwrap();
        let expired = issue_client_token(&ring, DEFAULT_ISSUER, DEFAULT_AUDIENCE, "mvd", "agency", "j".into(), now - chrono::Duration::hours(1)).unwrap();
        for token in [foreign, wrong_issuer, expired, "garbage".to_owned()] {
            assert_eq!(verifier.verify_client(&token).unwrap_err().code, "invalid_token");
        }
    }
}

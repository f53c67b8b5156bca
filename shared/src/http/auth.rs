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
        jsonwebtoken::decode::<AccessClaims>(token, key, &validation).map(|data| data.claims).map_err(|_| invalid_token())
    }
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
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(ApiError::unauthorized)?;
        let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).ok_or_else(ApiError::unauthorized)?;
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        verifier.verify_live(token.trim()).await.map(Self)
    }
}

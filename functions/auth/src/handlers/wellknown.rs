//! Public key discovery: JWKS and the OpenID Connect discovery document (SPEC §3.7).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::schemas::Jwks;
use crate::AppState;

/// `GET /.well-known/jwks.json`: current and previous public keys, cacheable for five minutes.
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "jwks", tag = "auth",
    responses((status = 200, description = "The public signing keys", body = Jwks)))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], axum::Json(state.keys.jwks()))
}

/// OpenID Connect discovery metadata of this issuer.
#[derive(Serialize, ToSchema)]
pub struct OpenIdConfiguration {
    issuer: String,
    jwks_uri: String,
    token_endpoint: String,
    authorization_endpoint: String,
    userinfo_endpoint: String,
    registration_endpoint: String,
    end_session_endpoint: String,
    response_types_supported: Vec<&'static str>,
    subject_types_supported: Vec<&'static str>,
    id_token_signing_alg_values_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    grant_types_supported: Vec<&'static str>,
    claims_supported: Vec<&'static str>,
    acr_values_supported: Vec<&'static str>,
}

/// `GET /.well-known/openid-configuration`.
#[utoipa::path(get, path = "/.well-known/openid-configuration", operation_id = "openid_configuration", tag = "auth",
    responses((status = 200, description = "Discovery metadata", body = OpenIdConfiguration)))]
pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = state.settings.issuer.trim_end_matches('/');
    axum::Json(OpenIdConfiguration {
        issuer: issuer.to_owned(),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        token_endpoint: format!("{issuer}/v1/auth/token/refresh"),
        authorization_endpoint: format!("{issuer}/v1/auth/login"),
        userinfo_endpoint: format!("{issuer}/v1/me"),
        registration_endpoint: format!("{issuer}/v1/auth/register"),
        end_session_endpoint: format!("{issuer}/v1/auth/logout"),
        response_types_supported: vec!["token"],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec!["EdDSA"],
        token_endpoint_auth_methods_supported: vec!["none"],
        grant_types_supported: vec!["password", "refresh_token"],
        claims_supported: vec!["iss", "sub", "aud", "exp", "iat", "jti", "sid", "lvl", "amr"],
        acr_values_supported: vec!["simplified", "standard", "confirmed"],
    })
}

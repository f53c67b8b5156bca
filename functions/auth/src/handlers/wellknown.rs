//! Public key discovery: JWKS and the OpenID Connect discovery document (SPEC §3.7).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], axum::Json(state.keys.jwks()))
}

pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = state.settings.issuer.trim_end_matches('/');
    axum::Json(serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/v1/auth/token/refresh"),
        "authorization_endpoint": format!("{issuer}/v1/auth/login"),
        "userinfo_endpoint": format!("{issuer}/v1/me"),
        "registration_endpoint": format!("{issuer}/v1/auth/register"),
        "end_session_endpoint": format!("{issuer}/v1/auth/logout"),
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": ["password", "refresh_token"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "lvl", "amr"],
        "acr_values_supported": ["simplified", "standard", "confirmed"]
    }))
}

//! `POST /oauth2/token` (RFC 6749 §3.2, SPEC §8): parse the form, authenticate the client,
//! decide the grant, sign the token, answer as RFC 6749 §5 says.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use shared::http::Limit;
use shared::http::auth::{CLIENT_TOKEN_SECONDS, issue_client_token};
use utoipa::ToSchema;

use crate::AppState;
use crate::answer::{self, OAuthError, TokenResponse};
use crate::domain::client_auth::{self, Presented};
use crate::domain::{TokenError, client_credentials};
use crate::store;

/// The form of a token request (`application/x-www-form-urlencoded`). Parameters without a value
/// count as absent; a repeated parameter is `invalid_request`; unknown ones are ignored.
/// Schema only: the handler reads the form itself (`Form`) to answer RFC 6749 errors.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    grant_type: GrantType,
    /// Space-separated scopes; absent = every scope the client may get with this grant.
    #[schema(max_length = 1024)]
    scope: Option<String>,
    /// With `client_secret_post`, or to name a public client (with Basic it must match).
    #[schema(max_length = 255)]
    client_id: Option<String>,
    /// `client_secret_post` only; with `client_secret_basic` the secret travels in `Authorization`.
    #[schema(max_length = 512)]
    client_secret: Option<String>,
}

/// The grant types this endpoint serves (schema only).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum GrantType {
    ClientCredentials,
}

crate::oauth_errors!(pub TokenErrors {
    400 => ["invalid_request", "unsupported_grant_type", "invalid_scope", "unauthorized_client"],
    401 => ["invalid_client"],
    429 => ["rate_limited"],
});

/// Issue an access token (OAuth 2.0 token endpoint)
///
/// `grant_type=client_credentials`: an agency (scope `agency`, SPEC §4.6) or a partner acting for
/// itself. The client authenticates as it registered: `client_secret_basic` (HTTP Basic with the
/// form-urlencoded id and secret) or `client_secret_post`. Errors are RFC 6749 §5.2 JSON, not
/// problem+json; a 401 to a Basic attempt carries `WWW-Authenticate: Basic`. Every answer is
/// `Cache-Control: no-store`. Repeated failed authentications of one client id → 429 until the
/// minute ends.
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth", operation_id = "oauth2_token",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_secret_basic" = [])),
    responses((status = 200, description = "The access token (RFC 6749 §5.1)", body = TokenResponse), TokenErrors))]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    match issue(&state, &headers, body).await {
        Ok(issued) => answer::json(StatusCode::OK, &issued),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

async fn issue(state: &AppState, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<TokenResponse, OAuthError> {
    let form = Form::parse(headers, body)?;
    let grant_type = form.get("grant_type").ok_or(TokenError::InvalidRequest("grant_type is required"))?;
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let presented = client_auth::presented(authorization, form.get("client_id"), form.get("client_secret"))?;
    authenticate(state, &presented).await?;
    let client = state.clients.get(&presented.client_id).ok_or(OAuthError::Server { unavailable: false })?;
    match grant_type {
        "client_credentials" => {
            let scope = client_credentials::grant(client, form.get("scope"))?.join(" ");
            let now = state.ticker.now();
            let token = issue_client_token(&state.keys, &state.settings.issuer, &state.settings.audience, &client.client_id, &scope, state.ticker.id(), now)?;
            tracing::info!(client_id = %client.client_id, scope = %scope, "client token issued");
            Ok(TokenResponse { access_token: token, token_type: "Bearer".into(), expires_in: CLIENT_TOKEN_SECONDS, scope })
        }
        _ => Err(TokenError::UnsupportedGrantType.into()),
    }
}

/// Authenticates the presented client on a blocking thread (argon2id). A registered client id
/// that keeps failing is locked for the rest of the minute, and not even checked while locked.
async fn authenticate(state: &AppState, presented: &Presented) -> Result<(), OAuthError> {
    let known = state.clients.get(&presented.client_id).is_some();
    let now = state.ticker.now();
    if known && let Some(seconds) = store::locked_for(&state.kv, &presented.client_id, now).await.map_err(shared::http::ApiError::from)? {
        return Err(OAuthError::RateLimited { retry_after_seconds: seconds });
    }
    let (clients, checked) = (state.clients.clone(), presented.clone());
    let verdict = tokio::task::spawn_blocking(move || client_auth::authenticate(clients.get(&checked.client_id), &checked))
        .await
        .map_err(|_| OAuthError::Server { unavailable: false })?;
    let Err(refused) = verdict else { return Ok(()) };
    if known {
        tracing::warn!(client_id = %presented.client_id, "client authentication failed");
        let limit = Limit::per_minute(state.settings.failed_auth_per_minute);
        if let Err(over) = state.limiter.hit("oauth_client_auth", &presented.client_id, limit).await {
            let error = OAuthError::from(over);
            if let OAuthError::RateLimited { retry_after_seconds } = error {
                store::lock(&state.kv, &presented.client_id, now, retry_after_seconds).await.map_err(shared::http::ApiError::from)?;
            }
            return Err(error);
        }
    }
    Err(refused.into())
}

/// The parameters of the form body: one value each, empty values dropped.
struct Form(HashMap<String, String>);

const FORM_MAX_BYTES: usize = 16 * 1024;

impl Form {
    fn parse(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Self, TokenError> {
        let form_encoded = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !form_encoded {
            return Err(TokenError::InvalidRequest("the body must be application/x-www-form-urlencoded"));
        }
        let body = body.map_err(|_| TokenError::InvalidRequest("the body could not be read"))?;
        if body.len() > FORM_MAX_BYTES {
            return Err(TokenError::InvalidRequest("the body is too large"));
        }
        let mut values = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in url::form_urlencoded::parse(&body) {
            if !seen.insert(name.clone().into_owned()) {
                return Err(TokenError::InvalidRequest("a parameter is repeated"));
            }
            if !value.is_empty() {
                values.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Self(values))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

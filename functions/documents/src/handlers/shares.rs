//! Share links: a citizen hands out `{PUBLIC_BASE_URL}/v1/shares/{token}`, which anyone may
//! follow without logging in until it expires or is revoked. The token (256 random bits) is
//! stored only as its SHA-256. Following the link answers a redirect to a fresh presigned GET
//! that lives `share_redirect_ttl`, so a revocation takes effect within that time even for
//! someone who already followed the link. Expired, revoked and unknown links answer 404 alike.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use shared::http::rate_limit::Limit;
use shared::http::{ApiError, ApiJson, ApiPath, Authenticated, ClientIp};
use shared::identity::user_pk;
use shared::persist;
use shared::ports::Condition;

use super::documents::own_document;
use crate::Api;
use crate::domain::{self, ShareError};
use crate::store::{self, Share, SharePointer};

/// Random bytes in a share token.
const TOKEN_BYTES: usize = 32;
/// Share revocations (two deletes each) committed with a document's deletion; its own ops
/// take at most 4, so this stays within the 25-op transaction limit.
pub(crate) const REVOCATIONS_WITH_DELETE: usize = 10;
/// Revocations per transaction when a deletion has more links than fit with it.
pub(crate) const REVOCATIONS_PER_TRANSACTION: usize = 12;

shared::problems!(CreateErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"],
    409 => ["document_not_available", "concurrent_update"], 413 => ["payload_too_large"], 415 => ["unsupported_media_type"], 429 => ["rate_limited"] });
shared::problems!(ReadErrors { 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"] });
shared::problems!(FollowErrors { 404 => ["not_found"], 429 => ["rate_limited"] });

/// How long the link lives.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ShareRequest)]
pub struct CreateBody {
    /// 1 to 604800 (7 days).
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 604800, example = 86400)]
    expires_in_seconds: Option<i64>,
}

/// A new share link; its URL is shown only this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ShareCreated {
    share_id: String,
    /// Downloads the document without login until `expires_at` or revocation.
    url: String,
    expires_at: DateTime<Utc>,
}

/// `POST /v1/documents/{id}/shares {"expires_in_seconds"}` → 201 (available documents only).
#[utoipa::path(post, path = "/v1/documents/{id}/shares", tag = "documents", operation_id = "create_share", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id", max_length = 64)),
    request_body = CreateBody,
    responses((status = 201, description = "The share link", body = ShareCreated), CreateErrors))]
pub async fn create(
    State(api): State<Api>,
    auth: Authenticated,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    let lifetime = domain::share_lifetime(body.expires_in_seconds, api.settings.max_share_ttl)?;
    let doc = own_document(&api, &auth, &id).await?;
    if doc.value.status != store::DocumentStatus::Available {
        return Err(ShareError::NotAvailable.into());
    }
    api.limiter.hit("document-shares", auth.user_id(), Limit::per_minute(30)).await?;

    let mut raw = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = URL_SAFE_NO_PAD.encode(raw);
    let token_hash = store::sha256_hex(token.as_bytes());
    let share_id = api.ticker.id();
    let share = persist::retry(|| async {
        // Read again on a lost race: the document may have been deleted meanwhile.
        let doc = own_document(&api, &auth, &id).await?;
        let (share, pointer) = Share::issue(&doc.value, share_id.clone(), token_hash.clone(), lifetime, api.now())?;
        let (share_pk, share_sk) = store::share_key(&token_hash);
        let owner_pk = user_pk(auth.user_id());
        let expires = Some(share.expires_at.timestamp());
        let ops = vec![
            // Still available at commit time, and the version bump tells a concurrent delete
            // (which revokes every link it listed) that there is one more to revoke.
            persist::put_op(owner_pk.clone(), store::document_sk(&doc.value.document_id), &doc.value, doc.unchanged(), None)?,
            persist::put_op(share_pk, share_sk, &share, Condition::NotExists, expires)?,
            persist::put_op(owner_pk, store::share_pointer_sk(&share.document_id, &share.share_id), &pointer, Condition::NotExists, expires)?,
        ];
        Ok::<_, ApiError>(api.commit_round(ops, &[], share).await?)
    })
    .await?;
    tracing::info!(document_id = %share.document_id, share_id = %share.share_id, "share link created");
    let url = format!("{}/v1/shares/{token}", api.settings.public_base_url);
    Ok((StatusCode::CREATED, ApiJson(ShareCreated { share_id: share.share_id, url, expires_at: share.expires_at })).into_response())
}

/// A share link still in force (its URL is not kept).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Share)]
pub struct ShareView {
    share_id: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// The share links of a document.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SharePage)]
pub struct ShareList {
    items: Vec<ShareView>,
    /// Always `null`: every link is on the one page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// `GET /v1/documents/{id}/shares`: the links still in force (their URLs are not kept).
#[utoipa::path(get, path = "/v1/documents/{id}/shares", tag = "documents", operation_id = "list_shares", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id", max_length = 64)),
    responses((status = 200, description = "The links still in force", body = ShareList), ReadErrors))]
pub async fn list(State(api): State<Api>, auth: Authenticated, ApiPath(id): ApiPath<String>) -> Result<ApiJson<ShareList>, ApiError> {
    let doc = own_document(&api, &auth, &id).await?;
    let now = api.now();
    let items = store::share_pointers(api.kv.as_ref(), auth.user_id(), &doc.value.document_id)
        .await?
        .into_iter()
        .filter(|pointer| pointer.is_live(now))
        .map(|pointer| ShareView { share_id: pointer.share_id, created_at: pointer.created_at, expires_at: pointer.expires_at })
        .collect();
    Ok(ApiJson(ShareList { items, next_cursor: None }))
}

/// `DELETE /v1/documents/{id}/shares/{share_id}` → 204.
#[utoipa::path(delete, path = "/v1/documents/{id}/shares/{share_id}", tag = "documents", operation_id = "revoke_share", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id", max_length = 64), ("share_id" = String, Path, description = "Share id", max_length = 64)),
    responses((status = 204, description = "Revoked: the link no longer works"), ReadErrors))]
pub async fn revoke(State(api): State<Api>, auth: Authenticated, ApiPath((id, share_id)): ApiPath<(String, String)>) -> Result<StatusCode, ApiError> {
    let doc = own_document(&api, &auth, &id).await?;
    if !store::is_document_id(&share_id) {
        return Err(ApiError::not_found());
    }
    let owner_pk = user_pk(auth.user_id());
    let pointer_sk = store::share_pointer_sk(&doc.value.document_id, &share_id);
    let pointer = persist::get::<SharePointer>(api.kv.as_ref(), &owner_pk, &pointer_sk).await?.ok_or_else(ApiError::not_found)?;
    api.relay.commit(store::revoke_share_ops(auth.user_id(), &doc.value.document_id, &pointer.value).into(), &[]).await?;
    tracing::info!(document_id = %doc.value.document_id, share_id, "share link revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/shares/{token}` (no login) → 302 to a short-lived download URL.
#[utoipa::path(get, path = "/v1/shares/{token}", tag = "documents", operation_id = "follow_share",
    params(("token" = String, Path, description = "The token of the share URL", min_length = 43, max_length = 43)),
    responses(
        (status = 302, description = "Redirect to a presigned download of the file (valid for about a minute)",
            headers(("Location" = String, description = "The presigned GET URL"))),
        FollowErrors))]
pub async fn follow(State(api): State<Api>, ip: ClientIp, ApiPath(token): ApiPath<String>) -> Result<Response, ApiError> {
    api.limiter.hit("share-follow", &ip.0.to_string(), Limit::per_minute(120)).await?;
    if token.len() != 43 || URL_SAFE_NO_PAD.decode(&token).map_or(true, |raw| raw.len() != TOKEN_BYTES) {
        return Err(ApiError::not_found());
    }
    let (pk, sk) = store::share_key(&store::sha256_hex(token.as_bytes()));
    let share = persist::get::<Share>(api.kv.as_ref(), &pk, &sk).await?.ok_or_else(ApiError::not_found)?.value;
    let doc = store::load_document(api.kv.as_ref(), &share.owner_user_id, &share.document_id).await?.ok_or_else(ApiError::not_found)?.value;
    if !share.opens(&doc, api.now()) {
        return Err(ApiError::not_found());
    }
    let response = super::redirect_to_download(&api, &doc, api.settings.share_redirect_ttl).await?;
    tracing::info!(document_id = %doc.document_id, share_id = %share.share_id, "share link followed");
    Ok(response)
}

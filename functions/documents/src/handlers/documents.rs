//! The citizen's documents: upload slots, reading, listing, versions, deletion and restore.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use shared::domain::FieldError;
use shared::domain::text::{Text, TextRule};
use shared::http::rate_limit::Limit;
use shared::http::{ApiError, ApiJson, ApiPath, ApiQuery, Authenticated};
use shared::identity::user_pk;
use shared::persist::{self, Attempt, Versioned};
use shared::ports::{Condition, Query as KvQuery, TxOp};

use super::{CitizenDocumentType, DocumentType, DocumentView, UploadView, object_error, shares};
use crate::domain::{DeclaredFile, NewDocument};
use crate::policy::{self, Purpose};
use crate::store::{self, DocOwner, Document, DocumentStatus, Series, Source};
use crate::{Api, DocumentsState};

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;
/// SPEC §2: a file name is at most 255 characters, on one line, with nothing invisible in it.
const FILE_NAME: TextRule = TextRule::line(255);
/// A media type with its parameters; registered names are far shorter.
const MAX_CONTENT_TYPE_BYTES: usize = 255;

shared::problems!(CreateErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 409 => ["concurrent_update"],
    413 => ["payload_too_large", "quota_exceeded"], 415 => ["unsupported_media_type"], 429 => ["rate_limited"] });
shared::problems!(ListErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"] });
shared::problems!(ReadErrors { 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"] });
shared::problems!(DeleteErrors { 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"], 409 => ["concurrent_update"] });
shared::problems!(RestoreErrors {
    401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"], 409 => ["document_not_deleted", "concurrent_update"],
});

/// What the client is about to upload. Fields are checked by hand so every problem is named.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = DocumentSlotRequest)]
pub struct CreateBody {
    #[serde(rename = "type")]
    #[schema(value_type = CitizenDocumentType, required = true)]
    doc_type: Option<String>,
    /// One line, no `/` or `\`, no control or bidirectional characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255, example = "паспорт.pdf")]
    file_name: Option<String>,
    /// PDF, JPEG, PNG anywhere; DOCX and XML in the vault.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255, example = "application/pdf")]
    content_type: Option<String>,
    /// 5 MiB for `identity`, 10 MiB for `application`, 20 MiB for `vault`; the citizen's quota applies.
    #[schema(value_type = i64, required = true, minimum = 0, example = 482133)]
    size_bytes: Option<i64>,
    #[schema(value_type = Purpose, required = true)]
    purpose: Option<String>,
}

/// `POST /v1/documents` → 201 upload slot.
#[utoipa::path(post, path = "/v1/documents", tag = "documents", operation_id = "create_document", security(("bearer" = [])),
    request_body = CreateBody,
    responses((status = 201, description = "The pending document and where to PUT its bytes", body = SlotView), CreateErrors))]
pub async fn create(State(api): State<Api>, auth: Authenticated, ApiJson(body): ApiJson<CreateBody>) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    let doc_type = body.doc_type.unwrap_or_default();
    if !policy::citizen_may_upload(&doc_type) {
        problems.push(FieldError::new("type", "invalid", "Неизвестный тип документа"));
    }
    let purpose = Purpose::parse(body.purpose.as_deref().unwrap_or_default());
    if purpose.is_none() {
        problems.push(FieldError::new("purpose", "invalid", "Назначение: vault, identity или application"));
    }
    let file = check_file(body.file_name.as_deref(), body.content_type.as_deref(), body.size_bytes, &mut problems);
    let (Some(purpose), Some(file), true) = (purpose, file, problems.is_empty()) else {
        return Err(ApiError::validation(problems));
    };
    let accepted = file.accept(purpose)?;
    api.limiter.hit("document-slots", auth.user_id(), Limit::per_minute(60)).await?;

    let new = NewDocument { owner_user_id: auth.user_id().to_owned(), doc_type, purpose, file: accepted, source: Source::Citizen, enforce_quota: true };
    let slot = create_slot(&api, new).await?;
    Ok((StatusCode::CREATED, ApiJson(slot)).into_response())
}

/// Checks the file fields every upload carries; problems are appended to `problems`. Every
/// string is bounded and checked here, before any storage is touched, and no message echoes
/// what was submitted.
pub(crate) fn check_file(file_name: Option<&str>, content_type: Option<&str>, size_bytes: Option<i64>, problems: &mut Vec<FieldError>) -> Option<DeclaredFile> {
    let file_name = match Text::parse(file_name.unwrap_or_default(), FILE_NAME) {
        Ok(name) if is_plain_file_name(name.as_str()) => Some(name.into_string()),
        Ok(_) => {
            problems.push(FieldError::new("file_name", "invalid", "Имя файла не может содержать «/» и «\\» или состоять из точек"));
            None
        }
        Err(error) => {
            problems.push(error.field_error("file_name"));
            None
        }
    };
    let content_type = content_type.map(str::trim).unwrap_or_default();
    let content_type_ok = !content_type.is_empty() && content_type.len() <= MAX_CONTENT_TYPE_BYTES && content_type.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !content_type_ok {
        problems.push(FieldError::new("content_type", "invalid", "Укажите тип содержимого, например application/pdf (не длиннее 255 символов)"));
    }
    let size_bytes = size_bytes.and_then(|size| u64::try_from(size).ok());
    if size_bytes.is_none() {
        problems.push(FieldError::new("size_bytes", "invalid", "Размер файла в байтах: целое неотрицательное число"));
    }
    match (file_name, content_type_ok, size_bytes) {
        (Some(file_name), true, Some(size_bytes)) => Some(DeclaredFile { file_name, content_type: content_type.to_owned(), size_bytes }),
        _ => None,
    }
}

/// A file name names one file: no path separators, not `.` or `..`.
fn is_plain_file_name(name: &str) -> bool {
    !name.contains(['/', '\\']) && name != "." && name != ".."
}

/// An upload slot (SPEC §5): the pending document and its presigned PUT.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UploadSlot)]
pub(crate) struct SlotView {
    document_id: String,
    /// Always `pending_upload`.
    status: DocumentStatus,
    upload: UploadView,
}

/// Records a pending document and presigns its upload. Every slot of a citizen updates the
/// same usage item, so parallel uploads collide by design and retry under the one policy.
pub(crate) async fn create_slot(state: &DocumentsState, new: NewDocument) -> Result<SlotView, ApiError> {
    let document_id = state.ticker.id();
    let doc = persist::retry(|| async {
        let (doc, ops) = prepare_slot(state, &new, &document_id).await?;
        Ok::<_, ApiError>(state.commit_round(ops, &[], doc).await?)
    })
    .await?;
    // Presigned only once the record exists, so every object that lands has a document.
    slot_view(state, &doc).await
}

/// The pending document for `new` and the ops that record it: the document with its indexes,
/// its size charged to the owner's quota and, in the vault, the next version number taken
/// (conditional on the series as read, so a lost race takes the number again).
pub(crate) async fn prepare_slot(state: &DocumentsState, new: &NewDocument, document_id: &str) -> Result<(Document, Vec<TxOp>), ApiError> {
    let kv = state.kv.as_ref();
    let owner_pk = user_pk(&new.owner_user_id);
    let usage = store::load_usage(kv, &new.owner_user_id).await?;
    let series = match new.purpose {
        Purpose::Vault => persist::get::<Series>(kv, &owner_pk, &store::series_sk(&new.doc_type)).await?,
        _ => None,
    };
    let last_version = series.as_ref().map_or(0, |s| s.value.last_version);
    let doc = new.reserve(document_id, usage.as_ref().map_or(0, |u| u.value.bytes), last_version, &state.settings, state.now())?;
    let mut ops = Vec::new();
    if new.purpose == Purpose::Vault {
        let next = Series { last_version: doc.version };
        ops.push(persist::put_op(owner_pk, store::series_sk(&new.doc_type), &next, persist::condition_for(series.as_ref()), None)?);
    }
    ops.extend(store::transition_ops(None, &doc, usage.as_ref())?);
    let (owner_index_pk, owner_index_sk) = store::owner_key(document_id);
    ops.push(persist::put_op(owner_index_pk, owner_index_sk, &DocOwner { owner_user_id: new.owner_user_id.clone() }, Condition::NotExists, None)?);
    Ok((doc, ops))
}

/// The slot answer for a recorded pending document, with a fresh presigned PUT.
pub(crate) async fn slot_view(state: &DocumentsState, doc: &Document) -> Result<SlotView, ApiError> {
    let upload = state.objects.presign_put(&doc.object_key, &doc.content_type, doc.size_bytes, state.settings.upload_url_ttl).await.map_err(object_error)?;
    tracing::info!(document_id = %doc.document_id, purpose = doc.purpose.as_str(), size_bytes = doc.size_bytes, "upload slot created");
    Ok(SlotView { document_id: doc.document_id.clone(), status: doc.status, upload: upload.into() })
}

/// `GET /v1/documents/{id}`
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents", operation_id = "get_document", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id", max_length = 64)),
    responses((status = 200, description = "The document, with a download URL when available", body = DocumentView), ReadErrors))]
pub async fn show(State(api): State<Api>, auth: Authenticated, ApiPath(id): ApiPath<String>) -> Result<ApiJson<DocumentView>, ApiError> {
    let doc = own_document(&api, &auth, &id).await?;
    Ok(ApiJson(DocumentView::build(&api, &doc.value).await?))
}

pub(crate) async fn own_document(state: &DocumentsState, auth: &Authenticated, id: &str) -> Result<Versioned<Document>, ApiError> {
    store::load_document(state.kv.as_ref(), auth.user_id(), id).await?.ok_or_else(ApiError::not_found)
}

/// Raw query parameters, parsed by hand so bad values get problem+json like everything else.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only documents of this type.
    #[serde(rename = "type")]
    #[param(value_type = Option<DocumentType>, inline)]
    doc_type: Option<String>,
    /// Only documents in this status; without it, all but `deleted`.
    #[param(value_type = Option<DocumentStatus>, inline)]
    status: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 64)]
    cursor: Option<String>,
    /// 1–100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `true` also lists vault versions replaced by a newer available one.
    #[param(value_type = Option<bool>)]
    all_versions: Option<String>,
}

/// One page of documents, newest first.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DocumentPage)]
pub struct ListView {
    items: Vec<DocumentView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// `GET /v1/documents?type=&status=&cursor=&limit=&all_versions=`, newest first. Without
/// `status`, deleted documents are left out; without `all_versions=true`, so are vault
/// documents that a newer available version of the same type replaced.
#[utoipa::path(get, path = "/v1/documents", tag = "documents", operation_id = "list_documents", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, description = "The citizen's documents, newest first", body = ListView), ListErrors))]
pub async fn list(State(api): State<Api>, auth: Authenticated, ApiQuery(q): ApiQuery<ListQuery>) -> Result<ApiJson<ListView>, ApiError> {
    let mut problems = Vec::new();
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            let parsed = DocumentStatus::parse(raw);
            if parsed.is_none() {
                problems.push(FieldError::new("status", "invalid", "Статус: pending_upload, available, rejected или deleted"));
            }
            parsed
        }
    };
    let doc_type = q.doc_type.filter(|t| !t.is_empty());
    if doc_type.as_deref().is_some_and(|t| !policy::is_document_type(t)) {
        problems.push(FieldError::new("type", "invalid", "Неизвестный тип документа"));
    }
    let limit = match q.limit.as_deref().filter(|l| !l.is_empty()) {
        None => DEFAULT_PAGE,
        Some(raw) => raw.parse::<usize>().ok().filter(|l| (1..=MAX_PAGE).contains(l)).unwrap_or_else(|| {
            problems.push(FieldError::new("limit", "invalid", "limit: от 1 до 100"));
            DEFAULT_PAGE
        }),
    };
    let cursor = q.cursor.filter(|c| !c.is_empty());
    if cursor.as_deref().is_some_and(|c| !store::is_document_id(c)) {
        problems.push(FieldError::new("cursor", "invalid", "Неверный курсор"));
    }
    let all_versions = matches!(q.all_versions.as_deref(), Some("true" | "1"));
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }

    let owner = auth.user_id();
    let mut latest_available: HashMap<String, u32> = HashMap::new();
    let mut found: Vec<Document> = Vec::new();
    let mut start_after = cursor.map(|c| store::document_sk(&c));
    let mut next_cursor = None;
    'pages: loop {
        let page = api.kv.query(KvQuery::partition(user_pk(owner)).prefix("DOC#").descending().limit(MAX_PAGE).after(start_after.clone())).await?;
        let count = page.items.len();
        for (index, item) in page.items.iter().enumerate() {
            let doc: Document = item.parse()?;
            let wanted = match status {
                Some(status) => doc.status == status,
                None => doc.status != DocumentStatus::Deleted,
            } && doc_type.as_deref().is_none_or(|t| doc.doc_type == t);
            if !wanted || (!all_versions && superseded(&api, &doc, &mut latest_available).await?) {
                continue;
            }
            found.push(doc);
            if found.len() == limit {
                if index + 1 < count || page.last_key.is_some() {
                    next_cursor = found.last().map(|d| d.document_id.clone());
                }
                break 'pages;
            }
        }
        match page.last_key {
            Some(key) => start_after = Some(key),
            None => break,
        }
    }
    Ok(ApiJson(ListView { items: DocumentView::build_all(&api, &found).await?, next_cursor }))
}

/// An available vault document is superseded once a newer version of its type is available.
async fn superseded(state: &DocumentsState, doc: &Document, latest_available: &mut HashMap<String, u32>) -> Result<bool, ApiError> {
    let (Some(series), DocumentStatus::Available) = (doc.series(), doc.status) else { return Ok(false) };
    if !latest_available.contains_key(series) {
        let versions = store::versions(state.kv.as_ref(), &doc.owner_user_id, series).await?;
        let latest = versions.iter().filter(|v| v.status == DocumentStatus::Available).map(|v| v.version).max().unwrap_or(0);
        latest_available.insert(series.to_owned(), latest);
    }
    Ok(latest_available.get(series).is_some_and(|latest| *latest > doc.version))
}

/// `GET /v1/documents/{id}/versions`: every version of the document's vault series, newest
/// first (a document outside the vault is its own only version).
#[utoipa::path(get, path = "/v1/documents/{id}/versions", tag = "documents", operation_id = "list_document_versions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id (any version of the series)", max_length = 64)),
    responses((status = 200, description = "Every version, newest first (`next_cursor` is always `null`)", body = ListView), ReadErrors))]
pub async fn versions(State(api): State<Api>, auth: Authenticated, ApiPath(id): ApiPath<String>) -> Result<ApiJson<ListView>, ApiError> {
    let doc = own_document(&api, &auth, &id).await?.value;
    let docs = match doc.series() {
        None => vec![doc],
        Some(series) => {
            let mut docs = Vec::new();
            for entry in store::versions(api.kv.as_ref(), auth.user_id(), series).await? {
                if let Some(version) = store::load_document(api.kv.as_ref(), auth.user_id(), &entry.document_id).await? {
                    docs.push(version.value);
                }
            }
            docs
        }
    };
    Ok(ApiJson(ListView { items: DocumentView::build_all(&api, &docs).await?, next_cursor: None }))
}

/// `DELETE /v1/documents/{id}` → 204; the document stays restorable for the restore window,
/// but its share links are revoked for good (a restore does not bring them back).
#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents", operation_id = "delete_document", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id", max_length = 64)),
    responses((status = 204, description = "Deleted (or already deleted); restorable for 30 days"), DeleteErrors))]
pub async fn delete(State(api): State<Api>, auth: Authenticated, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    persist::retry(|| async {
        let doc = own_document(&api, &auth, &id).await?;
        let Some(after) = doc.value.delete(api.now(), api.settings.restore_window) else { return Ok(Attempt::Done(())) };
        // Creating a share bumps the document's version, so a link made after this listing
        // makes the conditional commit below fail and the listing is taken again.
        let mut pointers = store::share_pointers(api.kv.as_ref(), auth.user_id(), &after.document_id).await?;
        let in_delete = pointers.len().min(shares::REVOCATIONS_WITH_DELETE);
        for excess in pointers.split_off(in_delete).chunks(shares::REVOCATIONS_PER_TRANSACTION) {
            let ops = excess.iter().flat_map(|p| store::revoke_share_ops(auth.user_id(), &after.document_id, p)).collect();
            api.relay.commit(ops, &[]).await?;
        }
        let mut ops = store::transition_ops(Some(&doc), &after, None)?;
        ops.extend(pointers.iter().flat_map(|p| store::revoke_share_ops(auth.user_id(), &after.document_id, p)));
        let attempt = api.commit_round(ops, &[], ()).await?;
        if let Attempt::Done(()) = attempt {
            tracing::info!(document_id = %after.document_id, revoked_shares = pointers.len(), "document deleted");
        }
        Ok::<_, ApiError>(attempt)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/documents/{id}/restore` → 200 with the document as it was before deletion.
#[utoipa::path(post, path = "/v1/documents/{id}/restore", tag = "documents", operation_id = "restore_document", security(("bearer" = [])),
    params(("id" = String, Path, description = "Document id", max_length = 64)),
    responses((status = 200, description = "The document as it was before deletion", body = DocumentView), RestoreErrors))]
pub async fn restore(State(api): State<Api>, auth: Authenticated, ApiPath(id): ApiPath<String>) -> Result<ApiJson<DocumentView>, ApiError> {
    let after = persist::retry(|| async {
        let doc = own_document(&api, &auth, &id).await?;
        let after = doc.value.restore(api.now(), &api.settings)?;
        Ok::<_, ApiError>(api.commit_round(store::transition_ops(Some(&doc), &after, None)?, &[], after).await?)
    })
    .await?;
    tracing::info!(document_id = %after.document_id, "document restored");
    Ok(ApiJson(DocumentView::build(&api, &after).await?))
}

//! The citizen's applications (SPEC §4.3): drafts, submission, withdrawal, supplements, lists.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use shared::agencies::RawBody;
use shared::http::{ApiError, ApiJson, ApiPath, ApiQuery, Authenticated};
use shared::vocabulary::ApplicationStatus;

use super::common::{self, Citizen, CitizenCreate, Effects, MAX_COMMENT_CHARS, OwnWrite, Paging};
use crate::body::{ApplicationBody, application_response};
use crate::domain::Application;
use crate::errors;
use crate::outbound::{self, Applicant, Notice};
use crate::store;
use crate::{AppState, ApplicationsState};

shared::problems!(CreateErrors {
    400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 413 => ["payload_too_large"],
    415 => ["unsupported_media_type"], 422 => ["validation_failed"], 429 => ["rate_limited"],
});
shared::problems!(ListErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"] });
shared::problems!(GetErrors { 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"] });
shared::problems!(PatchErrors {
    400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"],
    409 => ["invalid_transition", "concurrent_update"], 412 => ["precondition_failed"], 413 => ["payload_too_large"],
    415 => ["unsupported_media_type"], 429 => ["rate_limited"],
});
shared::problems!(SubmitErrors {
    401 => ["unauthorized", "invalid_token", "session_expired"], 403 => ["level_insufficient"], 404 => ["not_found"],
    409 => ["invalid_transition", "concurrent_update"], 412 => ["precondition_failed"], 422 => ["validation_failed"], 429 => ["rate_limited"],
});
shared::problems!(WithdrawErrors {
    400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"],
    409 => ["invalid_transition", "concurrent_update"], 412 => ["precondition_failed"], 413 => ["payload_too_large"], 429 => ["rate_limited"],
});
shared::problems!(SupplementErrors {
    400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token", "session_expired"], 404 => ["not_found"],
    409 => ["invalid_transition", "concurrent_update"], 412 => ["precondition_failed"], 413 => ["payload_too_large"],
    415 => ["unsupported_media_type"], 422 => ["validation_failed"], 429 => ["rate_limited"],
});

/// `{"service_code", "form"?, "document_ids"?}`: a new draft.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewApplication)]
pub struct CreateRequest {
    /// A code of the catalogue (an unknown one → 422).
    #[schema(max_length = 64)]
    service_code: String,
    /// The form so far (a JSON object, at most 64 KiB); checked against `form_schema` on submission.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    form: Option<Value>,
    /// Ids of the citizen's documents to attach.
    #[serde(default)]
    #[schema(max_items = 50)]
    document_ids: Option<Vec<String>>,
}

/// `POST /v1/applications` → 201 draft. The form is checked against the schema on submit only,
/// so a draft can be saved half-filled.
#[utoipa::path(post, path = "/v1/applications", tag = "applications", operation_id = "create_application", security(("bearer" = [])),
    request_body = CreateRequest,
    responses((status = 201, description = "The new draft", body = ApplicationBody,
        headers(("Location" = String, description = "`/v1/applications/{id}`"), ("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))), CreateErrors))]
pub async fn create(State(state): State<AppState>, Citizen(auth): CitizenCreate, ApiJson(req): ApiJson<CreateRequest>) -> Result<Response, ApiError> {
    let service = state
        .catalogue
        .get(common::check_id("/service_code", &req.service_code)?)
        .ok_or_else(|| errors::unprocessable_field("/service_code", "unknown_service", "Услуга не найдена в каталоге"))?;
    let form = common::check_form_shape(req.form.unwrap_or_else(|| Value::Object(Default::default())))?;
    let document_ids = common::check_document_ids("/document_ids", req.document_ids.unwrap_or_default())?;
    let mut app = Application::new_draft(state.ticker.id(), auth.user_id(), service, form, document_ids, state.ticker.now());
    state.relay.commit(store::save_ops(&mut app)?, &[]).await?;
    tracing::info!(application_id = %app.application_id, service = %app.service_code, "draft created");
    let mut response = application_response(StatusCode::CREATED, &app);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/applications/{}", app.application_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// One page of the citizen's applications, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApplicationPage {
    items: Vec<ApplicationBody>,
    /// The cursor of the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    service_code: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

/// `GET /v1/applications?status=&service_code=` — newest first.
#[utoipa::path(get, path = "/v1/applications", tag = "applications", operation_id = "list_applications", security(("bearer" = [])),
    params(("status" = Option<ApplicationStatus>, Query, description = "Only applications in this status"),
        ("service_code" = Option<String>, Query, description = "Only applications for this service"), Paging),
    responses((status = 200, description = "The citizen's applications, newest first", body = ApplicationPage), ListErrors))]
pub async fn list(State(state): State<AppState>, auth: Authenticated, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let (cursor, limit) = query.paging.parse()?;
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(ApplicationStatus::parse(raw).ok_or_else(|| ApiError::field("status", "invalid", "Неизвестный статус заявления"))?),
    };
    let service_code = query.service_code.as_deref().filter(|s| !s.is_empty());
    let filter = |app: &Application| status.is_none_or(|s| app.status == s) && service_code.is_none_or(|c| app.service_code == c);
    let (apps, next) = store::list_for_user(state.kv.as_ref(), auth.user_id(), filter, cursor, limit).await?;
    let items = apps.iter().map(ApplicationBody::from).collect();
    Ok(axum::Json(ApplicationPage { items, next_cursor: next }).into_response())
}

/// `GET /v1/applications/{id}`: the caller's application (another citizen's → 404).
#[utoipa::path(get, path = "/v1/applications/{id}", tag = "applications", operation_id = "get_application", security(("bearer" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses((status = 200, description = "The application", body = ApplicationBody,
        headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))), GetErrors))]
pub async fn get(State(state): State<AppState>, auth: Authenticated, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let app = common::load_own(&state, auth.user_id(), &id).await?;
    Ok(application_response(StatusCode::OK, &app))
}

/// The fields of a draft to replace.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApplicationPatch)]
pub struct PatchRequest {
    /// The whole new form (a JSON object, at most 64 KiB); `null` keeps the current one.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    form: Option<Value>,
    /// The whole new list of attached document ids.
    #[serde(default)]
    #[schema(max_items = 50)]
    document_ids: Option<Vec<String>>,
}

/// `PATCH /v1/applications/{id}` — drafts only (409 otherwise). The body is an object of the
/// fields to replace; one that changes nothing writes nothing and keeps the version.
#[utoipa::path(patch, path = "/v1/applications/{id}", tag = "applications", operation_id = "update_application", security(("bearer" = [])),
    params(OwnWrite), request_body = PatchRequest,
    responses((status = 200, description = "The draft as it now is", body = ApplicationBody,
        headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))), PatchErrors))]
pub async fn patch(State(state): State<AppState>, target: OwnWrite, ApiJson(body): ApiJson<Value>) -> Result<Response, ApiError> {
    let req: PatchRequest = common::object_body(body)?;
    let form = req.form.filter(|f| !f.is_null()).map(common::check_form_shape).transpose()?;
    let document_ids = req.document_ids.map(|ids| common::check_document_ids("/document_ids", ids)).transpose()?;
    let app = common::write_own(&state, &target, |mut app, now| {
        let changed = app.revise(form.clone(), document_ids.clone(), now);
        async move {
            let effects = Effects { unchanged: !changed?, ..Effects::default() };
            Ok((app, effects))
        }
    })
    .await?;
    Ok(application_response(StatusCode::OK, &app))
}

/// `POST /v1/applications/{id}/submit` → `submitted` with a number, after checking the account
/// level (as it is now, not as the token says), the form and the documents.
#[utoipa::path(post, path = "/v1/applications/{id}/submit", tag = "applications", operation_id = "submit_application", security(("bearer" = [])),
    params(OwnWrite),
    responses((status = 200, description = "Submitted, with its number and expected completion date", body = ApplicationBody,
        headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))), SubmitErrors))]
pub async fn submit(State(state): State<AppState>, target: OwnWrite) -> Result<Response, ApiError> {
    let state: &ApplicationsState = &state;
    // Drawn by the first round that passes the checks and kept for any retried round.
    let number = OnceCell::new();
    let app = common::write_own(state, &target, |mut app, now| {
        let number = &number;
        async move {
            let (account, _) = shared::identity::load(state.kv.as_ref(), &app.user_id).await?.ok_or_else(ApiError::unauthorized)?;
            let documents = store::documents(state.kv.as_ref(), &app.user_id, &app.document_ids).await?;
            let submission = app.check_submission(&state.catalogue, account.level, &documents)?;
            let number = number.get_or_try_init(|| store::next_number(state.kv.as_ref(), now)).await?.clone();
            let index = store::number_index_op(&number, &app.application_id)?;
            let payload = app.submit(submission, number, now);
            let event = common::event(state, &app, payload);
            let notice = Notice::Submitted { applicant: Box::new(Applicant::of(&account)), documents: outbound::attached(&documents) };
            Ok((app, Effects { ops: vec![index], ..Effects::told(event, notice) }))
        }
    })
    .await?;
    tracing::info!(application_id = %app.application_id, number = ?app.number, "application submitted");
    Ok(application_response(StatusCode::OK, &app))
}

/// `{"reason"?}`; the body may be empty.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationWithdrawal)]
pub struct WithdrawRequest {
    /// Why the citizen withdraws (told to the agency).
    #[serde(default)]
    #[schema(max_length = 2000)]
    reason: Option<String>,
}

/// `POST /v1/applications/{id}/withdraw {"reason"?}` (the body may be empty).
#[utoipa::path(post, path = "/v1/applications/{id}/withdraw", tag = "applications", operation_id = "withdraw_application", security(("bearer" = [])),
    params(OwnWrite), request_body(content = WithdrawRequest, description = "Optional: an empty body withdraws without a reason"),
    responses((status = 200, description = "Withdrawn", body = ApplicationBody,
        headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))), WithdrawErrors))]
pub async fn withdraw(State(state): State<AppState>, target: OwnWrite, RawBody(body): RawBody) -> Result<Response, ApiError> {
    let req: WithdrawRequest = common::optional_json(&body)?;
    let reason = common::check_text("/reason", req.reason, MAX_COMMENT_CHARS)?;
    let state: &ApplicationsState = &state;
    let app = common::write_own(state, &target, |mut app, now| {
        let withdrawn = app.withdraw(reason.clone(), &common::service_title(state, &app), now);
        let notice = Notice::Withdrawn { reason: reason.clone() };
        async move {
            let event = common::event(state, &app, withdrawn?);
            Ok((app, Effects::told(event, notice)))
        }
    })
    .await?;
    Ok(application_response(StatusCode::OK, &app))
}

/// `{"document_ids", "comment"?}`: what the agency asked for (documents, a comment or both).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationSupplement)]
pub struct SupplementRequest {
    /// Ids of the citizen's `available` documents to add.
    #[schema(max_items = 50)]
    document_ids: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    comment: Option<String>,
}

/// `POST /v1/applications/{id}/supplement {"document_ids", "comment"?}`: answers an information
/// request; the documents join the application and it goes back `in_progress`.
#[utoipa::path(post, path = "/v1/applications/{id}/supplement", tag = "applications", operation_id = "supplement_application", security(("bearer" = [])),
    params(OwnWrite), request_body = SupplementRequest,
    responses((status = 200, description = "Back `in_progress` with the documents attached", body = ApplicationBody,
        headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))), SupplementErrors))]
pub async fn supplement(State(state): State<AppState>, target: OwnWrite, ApiJson(req): ApiJson<SupplementRequest>) -> Result<Response, ApiError> {
    let document_ids = common::check_document_ids("/document_ids", req.document_ids)?;
    let comment = common::check_text("/comment", req.comment, MAX_COMMENT_CHARS)?;
    if document_ids.is_empty() && comment.is_none() {
        return Err(errors::unprocessable_field("/document_ids", "required", "Приложите документы или напишите комментарий"));
    }
    let state: &ApplicationsState = &state;
    let app = common::write_own(state, &target, |mut app, now| {
        let (document_ids, comment) = (document_ids.clone(), comment.clone());
        async move {
            let documents = store::documents(state.kv.as_ref(), &app.user_id, &document_ids).await?;
            let notice = Notice::Supplemented { document_ids: document_ids.clone(), comment: comment.clone() };
            let payload = app.supplement(document_ids, &documents, comment, &common::service_title(state, &app), now)?;
            let event = common::event(state, &app, payload);
            Ok((app, Effects::told(event, notice)))
        }
    })
    .await?;
    Ok(application_response(StatusCode::OK, &app))
}

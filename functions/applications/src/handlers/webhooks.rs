//! `POST /v1/webhooks/agencies/{agency_id}` (SPEC §4.4): signed deliveries from agencies.
//!
//! Order of checks: signature (401), then the `webhook-id` dedupe record (a redelivery gets the
//! first answer), then the body. Bodies over `MAX_BODY_BYTES` are refused before anything else,
//! and no refusal quotes what the agency sent: refusals are stored as the delivery's answer.
//! Each delivery's state change, its events and its answer commit
//! in one transaction (`shared::agencies::apply_once`), conditional on the versions read.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use shared::agencies::{self, Agency, Capability, Decision, Envelope, RawBody, StoredAnswer};
use shared::domain::FieldError;
use shared::domain::text;
use shared::events::{Event, EventPayload};
use shared::http::{ApiError, ApiJson, ApiPath};
use shared::identity::{ACCOUNT_SK, Account, Verdict, user_pk};
use shared::persist::{self, Versioned};
use shared::ports::{Condition, Item, TxOp};
use shared::vocabulary::{ActorKind, ApplicationStatus};

use super::common::{self, MAX_COMMENT_CHARS};
use super::messages::message_text;
use crate::domain::{self, Actor, AgencyUpdate, Application, Message, Rejection};
use crate::errors;
use crate::store;
use crate::{AppState, ApplicationsState};

/// The largest delivery body: a status change with a full comment, rejection reason and
/// recommendations, each of 2,000 characters escaped as `\uXXXX`, fits several times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

shared::problems!(WebhookErrors {
    400 => ["validation_failed"], 401 => ["signature_invalid", "timestamp_out_of_tolerance"], 403 => ["forbidden"], 404 => ["not_found"],
    409 => ["invalid_transition", "verification_outdated", "concurrent_update"], 413 => ["payload_too_large"], 422 => ["validation_failed"],
});

/// A signed delivery from an agency (SPEC §4.4): `{"type", "data"}`. Describes the body for the
/// document only: `decide` reads the type first, so an unknown one is its own 422.
#[derive(utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
#[schema(as = AgencyDelivery)]
#[allow(dead_code)]
enum Delivery {
    #[serde(rename = "application.status_changed")]
    StatusChanged(StatusChanged),
    #[serde(rename = "application.message")]
    Message(AgencyMessage),
    #[serde(rename = "identity.verification_completed")]
    VerificationCompleted(VerificationCompleted),
    #[serde(rename = "identity.confirmed")]
    IdentityConfirmed(IdentityConfirmed),
}

/// `{"result": "applied"}`: the delivery took effect, now or when first delivered.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookApplied)]
struct Applied {
    result: AppliedResult,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = WebhookResult)]
enum AppliedResult {
    Applied,
}

/// `POST /v1/webhooks/agencies/{agency_id}`: a signed delivery from an agency. The same
/// `webhook-id` again gets the first answer again, and nothing is applied twice.
#[utoipa::path(post, path = "/v1/webhooks/agencies/{agency_id}", tag = "agencies", operation_id = "receive_agency_webhook",
    params(("agency_id" = String, Path, description = "The sending agency's id"),
        ("webhook-id" = String, Header, min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$", description = "Delivery id (Standard Webhooks), the dedupe key"),
        ("webhook-timestamp" = i64, Header, description = "Unix seconds; at most 5 minutes from the portal's clock"),
        ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256 of \"{id}.{timestamp}.{body}\">`, several space-separated during key rotation")),
    request_body(content = Delivery, description = "At most 64 KiB"),
    responses((status = 200, description = "Applied (or applied when first delivered)", body = Applied), WebhookErrors))]
pub async fn receive(State(state): State<AppState>, ApiPath(agency_id): ApiPath<String>, headers: HeaderMap, RawBody(body): RawBody) -> Response {
    if body.len() > MAX_BODY_BYTES {
        tracing::warn!(bytes = body.len(), "webhook body over the limit");
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Тело запроса слишком большое").into_response();
    }
    let agency = match state.agencies.verify(&agency_id, &headers, &body, state.ticker.now()) {
        Ok(agency) => agency,
        Err(error) => {
            let known = state.agencies.get(&agency_id).map_or("unknown", |a| a.id.as_str());
            tracing::warn!(agency_id = known, code = error.code, "webhook refused");
            return error.into_response();
        }
    };
    let webhook_id = match agencies::webhook_id(&headers) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let state_ref: &ApplicationsState = &state;
    let now = state.ticker.now();
    let response = agencies::apply_once(state.kv.as_ref(), &state.relay, &agency.id, webhook_id, now, || decide(state_ref, agency, &body)).await;
    tracing::info!(agency_id = %agency.id, webhook_id, status = response.status().as_u16(), "webhook answered");
    response
}

async fn decide(state: &ApplicationsState, agency: &Agency, body: &[u8]) -> Result<Decision, ApiError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|_| errors::unprocessable_field("/", "malformed", "Тело должно быть JSON-объектом {\"type\", \"data\"}"))?;
    match envelope.kind.as_str() {
        "application.status_changed" => status_changed(state, agency, data(envelope.data)?).await,
        "application.message" => agency_message(state, agency, data(envelope.data)?).await,
        "identity.verification_completed" => {
            require(agency, Capability::IdentityVerification)?;
            verification_completed(state, data(envelope.data)?).await
        }
        "identity.confirmed" => {
            require(agency, Capability::IdentityConfirmation)?;
            identity_confirmed(state, data(envelope.data)?).await
        }
        _ => Err(errors::unprocessable_field("/type", "unknown_type", "Неизвестный тип события")),
    }
}

/// `data` as `T`; a refusal names the field under `/data` and what is wrong, never the value.
fn data<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    let bytes = serde_json::to_vec(&value).map_err(ApiError::internal)?;
    ApiJson::<T>::from_bytes(&bytes).map_err(|error| {
        let under_data = |field: String| if field.starts_with('/') { format!("/data{field}") } else { "/data".to_owned() };
        errors::unprocessable(error.errors.into_iter().map(|e| FieldError { field: under_data(e.field), ..e }).collect())
    })
}

fn require(agency: &Agency, capability: Capability) -> Result<(), ApiError> {
    if agency.can(capability) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Это ведомство не может передавать сведения об идентификации граждан"))
    }
}

fn applied() -> StoredAnswer {
    StoredAnswer::json(StatusCode::OK, &json!(Applied { result: AppliedResult::Applied }))
}

// ---------------------------------------------------------------------------------------------
// application.*
// ---------------------------------------------------------------------------------------------

/// The agency's employee who acted; shown to the citizen.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AgencyEmployee)]
struct Employee {
    #[schema(max_length = 100)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    position: Option<String>,
}

/// Why an application is rejected; required with `rejected`, refused with any other status.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AgencyRejection)]
struct RejectionData {
    /// Required.
    #[serde(default)]
    #[schema(max_length = 2000)]
    reason: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    recommendations: Option<String>,
}

/// `application.status_changed`: names the application by `application_id` or `number`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AgencyStatusChange)]
struct StatusChanged {
    #[serde(default)]
    #[schema(max_length = 64)]
    application_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 64)]
    number: Option<String>,
    /// The new status; the SPEC §4.2 table says which an agency may set.
    #[schema(value_type = ApplicationStatus)]
    status: String,
    #[serde(default)]
    #[schema(max_length = 2000)]
    comment: Option<String>,
    #[serde(default)]
    employee: Option<Employee>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    expected_completion_date: Option<String>,
    #[serde(default)]
    rejection: Option<RejectionData>,
    /// The citizen's `result` documents the agency uploaded (with `approved`).
    #[serde(default)]
    #[schema(max_items = 50)]
    result_document_ids: Option<Vec<String>>,
}

async fn status_changed(state: &ApplicationsState, agency: &Agency, data: StatusChanged) -> Result<Decision, ApiError> {
    // Everything the delivery says is checked before anything is read.
    let (application_id, number) = target(data.application_id.as_deref(), data.number.as_deref())?;
    let to =
        ApplicationStatus::parse(&data.status).ok_or_else(|| errors::unprocessable_field("/data/status", "unknown_status", "Неизвестный статус заявления"))?;
    let comment = common::check_text("/data/comment", data.comment, MAX_COMMENT_CHARS).map_err(as_unprocessable)?;
    let rejection = rejection(to, data.rejection)?;
    let expected_completion_date = data
        .expected_completion_date
        .map(|raw| NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d"))
        .transpose()
        .map_err(|_| errors::unprocessable_field("/data/expected_completion_date", "invalid_date", "Укажите дату в формате ГГГГ-ММ-ДД"))?;
    let actor = agency_actor(agency, data.employee)?;
    let result_ids = common::check_document_ids("/data/result_document_ids", data.result_document_ids.unwrap_or_default()).map_err(as_unprocessable)?;

    let mut app = resolve(state, agency, application_id, number).await?;
    let documents = store::documents(state.kv.as_ref(), &app.user_id, &result_ids).await?;
    let update = AgencyUpdate { to, actor, comment, rejection, expected_completion_date };
    let results = result_ids.into_iter().zip(documents).collect();
    let payload = app.agency_update(update, results, &common::service_title(state, &app), state.ticker.now())?;
    let event = common::event(state, &app, payload);
    let ops = store::save_ops(&mut app)?;
    Ok(Decision::Apply { ops, events: vec![event], answer: applied() })
}

/// `application.message`: a message to the citizen in the application's thread.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AgencyApplicationMessage)]
struct AgencyMessage {
    #[serde(default)]
    #[schema(max_length = 64)]
    application_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 64)]
    number: Option<String>,
    #[schema(min_length = 1, max_length = 4000)]
    text: String,
    #[serde(default)]
    employee: Option<Employee>,
}

async fn agency_message(state: &ApplicationsState, agency: &Agency, data: AgencyMessage) -> Result<Decision, ApiError> {
    let (application_id, number) = target(data.application_id.as_deref(), data.number.as_deref())?;
    let text = message_text("/data/text", &data.text).map_err(as_unprocessable)?;
    let author = agency_actor(agency, data.employee)?;
    let app = resolve(state, agency, application_id, number).await?;
    let message = Message { message_id: state.ticker.id(), author, text, at: state.ticker.now() };
    let event = common::event(state, &app, app.message(&message, &common::service_title(state, &app))?);
    Ok(Decision::Apply { ops: vec![store::message_op(&app.application_id, &message)?], events: vec![event], answer: applied() })
}

/// `application_id` and `number` as given, each at most `text::ID_MAX_CHARS`; one is needed.
fn target<'a>(application_id: Option<&'a str>, number: Option<&'a str>) -> Result<(Option<&'a str>, Option<&'a str>), ApiError> {
    let application_id = application_id.map(|id| common::check_id("/data/application_id", id)).transpose().map_err(as_unprocessable)?;
    let number = number.map(|n| common::check_id("/data/number", n)).transpose().map_err(as_unprocessable)?;
    if application_id.is_none() && number.is_none() {
        return Err(errors::unprocessable_field("/data/application_id", "required", "Укажите application_id или number"));
    }
    Ok((application_id, number))
}

/// The application a delivery names, if it belongs to one of this agency's services and has
/// reached the agency; anything else is 404 (agencies learn nothing of others' applications).
async fn resolve(state: &ApplicationsState, agency: &Agency, application_id: Option<&str>, number: Option<&str>) -> Result<Application, ApiError> {
    let found = match (application_id, number) {
        (Some(id), _) => store::load(state.kv.as_ref(), id).await?,
        (None, Some(number)) => store::find_by_number(state.kv.as_ref(), number).await?,
        (None, None) => return Err(errors::unprocessable_field("/data/application_id", "required", "Укажите application_id или number")),
    };
    let own_service = |app: &Application| state.catalogue.get(&app.service_code).is_none_or(|s| s.agency_id == agency.id);
    found
        .filter(|app| app.agency_id == agency.id && own_service(app) && app.status.visible_to_agency())
        .filter(|app| number.is_none_or(|n| app.number.as_deref() == Some(n)))
        .ok_or_else(ApiError::not_found)
}

fn agency_actor(agency: &Agency, employee: Option<Employee>) -> Result<Actor, ApiError> {
    let Some(employee) = employee else {
        return Ok(Actor { kind: ActorKind::Agency, name: Some(agency.name.clone()), position: None });
    };
    let name = common::check_text_as("/data/employee/name", Some(employee.name), text::NAME).map_err(as_unprocessable)?;
    let position = common::check_text_as("/data/employee/position", employee.position, text::POSITION).map_err(as_unprocessable)?;
    Ok(Actor { kind: ActorKind::Agency, name: name.or_else(|| Some(agency.name.clone())), position })
}

/// `rejected` needs a reason (SPEC §4.2); a rejection on any other status is a mistake.
fn rejection(to: ApplicationStatus, data: Option<RejectionData>) -> Result<Option<Rejection>, ApiError> {
    match (to, data) {
        (ApplicationStatus::Rejected, data) => {
            let data = data.unwrap_or(RejectionData { reason: None, recommendations: None });
            let reason = common::check_text("/data/rejection/reason", data.reason, MAX_COMMENT_CHARS)
                .map_err(as_unprocessable)?
                .ok_or_else(|| errors::unprocessable_field("/data/rejection/reason", "required", "Укажите причину отказа"))?;
            let recommendations = common::check_text("/data/rejection/recommendations", data.recommendations, MAX_COMMENT_CHARS).map_err(as_unprocessable)?;
            Ok(Some(Rejection { reason, recommendations }))
        }
        (_, Some(_)) => Err(errors::unprocessable_field("/data/rejection", "unexpected", "Причина отказа указывается только для статуса rejected")),
        (_, None) => Ok(None),
    }
}

/// Agencies get 422 for bad data, as SPEC §4.4 lists; the shared checks answer 400.
fn as_unprocessable(error: ApiError) -> ApiError {
    if error.status == StatusCode::BAD_REQUEST { errors::unprocessable(error.errors) } else { error }
}

// ---------------------------------------------------------------------------------------------
// identity.*
// ---------------------------------------------------------------------------------------------

/// `identity.verification_completed`: the registry agency's verdict on a verification request.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = RegistryVerdict)]
struct VerificationCompleted {
    #[schema(max_length = 64)]
    user_id: String,
    /// The `identity.verification_requested` this verdict answers (SPEC §3.8).
    request_id: String,
    /// `verified` or `rejected`.
    #[schema(pattern = "^(verified|rejected)$")]
    result: String,
    /// Why the data was not confirmed (with `rejected`).
    #[serde(default)]
    #[schema(max_length = 500)]
    reason: Option<String>,
}

/// The registry agency's verdict on one verification request: `verified` raises `simplified`
/// to `standard`; `rejected` records why and leaves the level alone. Either way the citizen
/// hears of it through `identity.level_changed` (reason `registry_verified` / `registry_rejected`).
/// A verdict on any request but the citizen's pending latest one is `verification_outdated`.
async fn verification_completed(state: &ApplicationsState, data: VerificationCompleted) -> Result<Decision, ApiError> {
    let verdict = match data.result.as_str() {
        "verified" => Verdict::Verified,
        "rejected" => Verdict::Rejected { reason: common::check_text("/data/reason", data.reason, 500).map_err(as_unprocessable)? },
        _ => return Err(errors::unprocessable_field("/data/result", "invalid", "result: verified или rejected")),
    };
    let mut account = load_account(state, &data.user_id).await?;
    let verified = verdict == Verdict::Verified;
    let payload = domain::registry_verdict(&mut account.value, &data.request_id, verdict)?;
    let mut ops = vec![account_op(&account)?];
    if let (true, Some(profile)) = (verified, &account.value.profile) {
        ops.extend(claim_snils_login(state, &account.value.user_id, &profile.snils).await?);
    }
    Ok(Decision::Apply { ops, events: vec![level_event(state, &account.value, payload)], answer: applied() })
}

/// A verified SNILS becomes a login of this account (SPEC §3.1), unless it already names an
/// account: a SNILS login never moves between accounts.
async fn claim_snils_login(state: &ApplicationsState, user_id: &str, snils: &shared::domain::Snils) -> Result<Option<TxOp>, ApiError> {
    let key = shared::identity::login_pk(&state.index_key, &shared::identity::snils_login(snils));
    match state.kv.get(&key, shared::identity::LOGIN_SK).await? {
        None => {
            let index = shared::identity::LoginIndex { user_id: user_id.to_owned() };
            Ok(Some(TxOp::Put { item: Item::json(key, shared::identity::LOGIN_SK, &index)?, condition: Condition::NotExists }))
        }
        Some(existing) => {
            if existing.parse::<shared::identity::LoginIndex>()?.user_id != user_id {
                tracing::warn!(user_id, "verified SNILS already names another account; login left where it is");
            }
            Ok(None)
        }
    }
}

/// `identity.confirmed`: identity confirmed in person or by a trusted channel.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = IdentityConfirmation)]
struct IdentityConfirmed {
    #[schema(max_length = 64)]
    user_id: String,
    /// `mfc`, `bank`, `post` or `signature`.
    #[schema(pattern = "^(mfc|bank|post|signature)$")]
    method: String,
}

/// Identity confirmed in person or by a trusted channel: `standard` → `confirmed`.
async fn identity_confirmed(state: &ApplicationsState, data: IdentityConfirmed) -> Result<Decision, ApiError> {
    if !matches!(data.method.as_str(), "mfc" | "bank" | "post" | "signature") {
        return Err(errors::unprocessable_field("/data/method", "invalid", "method: mfc, bank, post или signature"));
    }
    let mut account = load_account(state, &data.user_id).await?;
    let payload = domain::confirm_identity(&mut account.value)?;
    tracing::info!(user_id = %account.value.user_id, method = %data.method, "identity confirmed");
    Ok(Decision::Apply { ops: vec![account_op(&account)?], events: vec![level_event(state, &account.value, payload)], answer: applied() })
}

async fn load_account(state: &ApplicationsState, user_id: &str) -> Result<Versioned<Account>, ApiError> {
    if user_id.is_empty() || user_id.len() > 64 || !user_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found());
    }
    persist::get(state.kv.as_ref(), &user_pk(user_id), ACCOUNT_SK).await?.ok_or_else(ApiError::not_found)
}

/// The account as changed, written only if it is still as read.
fn account_op(account: &Versioned<Account>) -> Result<TxOp, ApiError> {
    Ok(persist::put_op(user_pk(&account.value.user_id), ACCOUNT_SK, &account.value, account.unchanged(), None)?)
}

fn level_event(state: &ApplicationsState, account: &Account, payload: EventPayload) -> Event {
    Event::new(&state.ticker, Some(account.user_id.clone()), payload)
}

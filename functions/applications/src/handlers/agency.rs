//! The agency API (SPEC §4.6): an agency, with a `client_credentials` token of scope `agency`,
//! reads the applications of its services (never drafts), oldest change first, for
//! reconciliation and for agencies without a delivery endpoint. Another agency's path or
//! application is 404.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use shared::http::{AgencyClient, ApiError, ApiPath, ApiQuery};
use shared::vocabulary::ApplicationStatus;

use super::common::Paging;
use crate::domain::Application;
use crate::outbound::{self, AgencyApplication, Applicant};
use crate::store;
use crate::{AppState, ApplicationsState};

shared::problems!(ListErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token"], 403 => ["forbidden"], 404 => ["not_found"] });
shared::problems!(GetErrors { 401 => ["unauthorized", "invalid_token"], 403 => ["forbidden"], 404 => ["not_found"] });

/// One page of the agency's applications, oldest change first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AgencyApplicationPage {
    items: Vec<AgencyApplication>,
    /// The cursor of the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgencyListQuery {
    /// Only applications in this status.
    #[param(value_type = Option<ApplicationStatus>)]
    status: Option<String>,
    /// Only applications last changed at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    updated_since: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9]{13}#[0-9A-Za-z]{26})?$")]
    cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// `GET /v1/agency/{agency_id}/applications?status=&updated_since=&cursor=&limit=`: the
/// applications of the agency's services, oldest change first, each as in
/// `application.submitted` with its `history`. An application changed while the agency pages
/// moves to the end, so reading on finds its latest state.
#[utoipa::path(get, path = "/v1/agency/{agency_id}/applications", tag = "agencies", operation_id = "list_agency_applications", security(("bearer" = [])),
    params(("agency_id" = String, Path, description = "The agency's id (the token's client)", max_length = 64), AgencyListQuery),
    responses((status = 200, description = "The agency's applications, oldest change first", body = AgencyApplicationPage), ListErrors))]
pub async fn list(State(state): State<AppState>, client: AgencyClient, ApiQuery(query): ApiQuery<AgencyListQuery>) -> Result<Response, ApiError> {
    let agency_id = client.agency_id();
    let limit = Paging { cursor: None, limit: query.limit }.parse()?.1;
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(ApplicationStatus::parse(raw).ok_or_else(|| ApiError::field("status", "invalid", "Неизвестный статус заявления"))?),
    };
    let since = match query.updated_since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            DateTime::parse_from_rfc3339(raw.trim())
                .map_err(|_| ApiError::field("updated_since", "invalid", "Укажите время в формате RFC 3339, например 2026-03-01T10:00:00Z"))?
                .with_timezone(&Utc),
        ),
    };
    let cursor = query.cursor.as_deref().filter(|c| !c.is_empty());
    if cursor.is_some_and(|c| !store::is_agency_cursor(c)) {
        return Err(ApiError::field("cursor", "invalid", "Неверный курсор"));
    }
    let filter = |app: &Application| own(&state, agency_id, app) && status.is_none_or(|s| app.status == s);
    let (apps, next_cursor) = store::list_for_agency(state.kv.as_ref(), agency_id, filter, since, cursor, limit).await?;
    let items = futures::future::try_join_all(apps.iter().map(|app| view(&state, app))).await?;
    Ok(axum::Json(AgencyApplicationPage { items, next_cursor }).into_response())
}

/// `GET /v1/agency/{agency_id}/applications/{id}`: one application of the agency's services.
#[utoipa::path(get, path = "/v1/agency/{agency_id}/applications/{id}", tag = "agencies", operation_id = "get_agency_application", security(("bearer" = [])),
    params(("agency_id" = String, Path, description = "The agency's id (the token's client)", max_length = 64),
        ("id" = String, Path, description = "Application id", max_length = 64)),
    responses((status = 200, description = "The application with its applicant, documents and history", body = AgencyApplication), GetErrors))]
pub async fn get(State(state): State<AppState>, _: AgencyClient, ApiPath((agency_id, id)): ApiPath<(String, String)>) -> Result<Response, ApiError> {
    let app = store::load(state.kv.as_ref(), &id).await?.filter(|app| own(&state, &agency_id, app)).ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(view(&state, &app).await?).into_response())
}

/// An application the agency may see: one of its services (as the catalogue now says, when the
/// service is still offered) that has reached it.
fn own(state: &ApplicationsState, agency_id: &str, app: &Application) -> bool {
    app.agency_id == agency_id && app.status.visible_to_agency() && state.catalogue.get(&app.service_code).is_none_or(|s| s.agency_id == agency_id)
}

/// The agency's view of `app`: the applicant and the attached documents as they are now.
async fn view(state: &ApplicationsState, app: &Application) -> Result<AgencyApplication, ApiError> {
    let (account, documents) =
        tokio::try_join!(shared::identity::load(state.kv.as_ref(), &app.user_id), store::documents(state.kv.as_ref(), &app.user_id, &app.document_ids))?;
    let applicant = account.map(|(account, _)| Applicant::of(&account));
    Ok(outbound::agency_view(app, applicant, outbound::attached(&documents)))
}

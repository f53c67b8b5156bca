//! `GET /v1/services` and `GET /v1/services/{code}` (SPEC §4.1): the public catalogue.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use shared::http::{ApiError, ApiPath, ApiQuery};

use crate::AppState;
use crate::catalogue::{Service, ServiceSummary};

shared::problems!(ListErrors { 400 => ["validation_failed"] });
shared::problems!(GetErrors { 404 => ["not_found"] });

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServiceQuery {
    /// Only services of this category.
    category: Option<String>,
    /// Only services of this agency.
    agency_id: Option<String>,
    /// Words of the title or description (case-insensitive, `ё` = `е`), at most 100 characters.
    #[param(max_length = 100)]
    q: Option<String>,
    /// `next_cursor` of the previous page (a service code).
    cursor: Option<String>,
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// One page of the catalogue.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServicePage<'a> {
    items: Vec<ServiceSummary<'a>>,
    /// The cursor of the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Services in catalogue order, filtered; the cursor is the code of the last one returned.
#[utoipa::path(get, path = "/v1/services", tag = "applications", operation_id = "list_services", params(ServiceQuery),
    responses((status = 200, description = "Services in catalogue order, without `form_schema` and `form_example`", body = ServicePage), ListErrors))]
pub async fn list(State(state): State<AppState>, ApiQuery(query): ApiQuery<ServiceQuery>) -> Result<Json<Value>, ApiError> {
    let limit = match query.limit.as_deref() {
        None | Some("") => 50,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::field("limit", "out_of_range", "limit — целое число от 1 до 100"))?,
    };
    let text = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if text.is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::field("q", "too_long", "Поисковый запрос не длиннее 100 символов"));
    }
    let wanted = |value: &Option<String>| value.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    let (category, agency_id) = (wanted(&query.category), wanted(&query.agency_id));
    let matching: Vec<_> = state
        .catalogue
        .services()
        .iter()
        .filter(|s| category.as_ref().is_none_or(|c| &s.category == c))
        .filter(|s| agency_id.as_ref().is_none_or(|a| &s.agency_id == a))
        .filter(|s| text.is_none_or(|q| s.matches_text(q)))
        .collect();
    let start = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => 0,
        Some(cursor) => matching.iter().position(|s| s.code == cursor).map(|i| i + 1).ok_or_else(|| ApiError::field("cursor", "invalid", "Неверный курсор"))?,
    };
    let page: Vec<_> = matching.iter().skip(start).take(limit).collect();
    let next = (start + page.len() < matching.len()).then(|| page.last().map(|s| s.code.clone())).flatten();
    let items = page.iter().map(|s| s.summary()).collect();
    serde_json::to_value(ServicePage { items, next_cursor: next }).map(Json).map_err(ApiError::internal)
}

#[utoipa::path(get, path = "/v1/services/{code}", tag = "applications", operation_id = "get_service",
    params(("code" = String, Path, description = "Service code")),
    responses((status = 200, description = "The service with its form schema and example", body = Service), GetErrors))]
pub async fn get(State(state): State<AppState>, ApiPath(code): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let service = state.catalogue.get(&code).ok_or_else(ApiError::not_found)?;
    serde_json::to_value(service).map(Json).map_err(ApiError::internal)
}

//! `GET /v1/services` and `GET /v1/services/{code}` (SPEC §4.1): the public catalogue.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

use shared::http::{ApiError, ApiPath, ApiQuery};

use super::common::list_body;
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct ServiceQuery {
    category: Option<String>,
    agency_id: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// Services in catalogue order, filtered; the cursor is the code of the last one returned.
pub async fn list(State(state): State<AppState>, ApiQuery(query): ApiQuery<ServiceQuery>) -> Result<Json<Value>, ApiError> {
    let limit = match query.limit.as_deref() {
        None | Some("") => 50,
        Some(raw) => raw.parse::<usize>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| ApiError::field("limit", "out_of_range", "limit — целое число от 1 до 100"))?,
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
    let items: Vec<_> = page.iter().map(|s| s.summary()).collect();
    Ok(Json(list_body(&items, next)))
}

pub async fn get(State(state): State<AppState>, ApiPath(code): ApiPath<String>) -> Result<Json<Value>, ApiError> {
    let service = state.catalogue.get(&code).ok_or_else(ApiError::not_found)?;
    serde_json::to_value(service).map(Json).map_err(ApiError::internal)
}

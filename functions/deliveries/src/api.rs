//! The agency's delivery log and redeliver (SPEC §4.6), behind the agency's client token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::deliveries::{self, Delivery, DeliveryStatus, Due, Endpoint, delivery_pk, due_pk, due_sk, endpoint_key};
use shared::http::{AgencyClient, ApiError, ApiPath, ApiQuery};
use shared::persist;
use shared::ports::{Condition, Query, TxOp};
use shared::vocabulary::DeliveryType;

use crate::ApiState;
use crate::domain;

shared::problems!(ListErrors { 400 => ["validation_failed"], 401 => ["unauthorized", "invalid_token"], 403 => ["forbidden"], 404 => ["not_found"] });
shared::problems!(RedeliverErrors { 401 => ["unauthorized", "invalid_token"], 403 => ["forbidden"], 404 => ["not_found"], 409 => ["concurrent_update"] });

/// One delivery in the agency's log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryEntry {
    /// The event id.
    #[schema(max_length = 64)]
    delivery_id: String,
    event_type: DeliveryType,
    /// The `webhook-id` header of every attempt (the same as `delivery_id`).
    #[schema(max_length = 64)]
    webhook_id: String,
    status: DeliveryStatus,
    /// Attempts since the delivery was last queued (staged or redelivered).
    attempts: u32,
    #[schema(required = true)]
    last_attempt_at: Option<DateTime<Utc>>,
    /// The agency's HTTP status on the last attempt; `null` when there was no answer.
    #[schema(required = true)]
    last_response_status: Option<u16>,
    /// When the next attempt is due; `null` once delivered or dead.
    #[schema(required = true)]
    next_attempt_at: Option<DateTime<Utc>>,
}

impl From<&Delivery> for DeliveryEntry {
    fn from(d: &Delivery) -> Self {
        Self {
            delivery_id: d.delivery_id.clone(),
            event_type: d.event_type,
            webhook_id: d.delivery_id.clone(),
            status: d.status,
            attempts: d.attempts,
            last_attempt_at: d.last_attempt_at,
            last_response_status: d.last_response_status,
            next_attempt_at: domain::due_at(d),
        }
    }
}

/// One page of the delivery log, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    items: Vec<DeliveryEntry>,
    /// The cursor of the next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only deliveries in this status.
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9A-Za-z]{1,64})?$")]
    cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// `GET /v1/agency/{agency_id}/deliveries?status=&cursor=&limit=`: what the portal delivered
/// or still owes the agency, newest first.
#[utoipa::path(get, path = "/v1/agency/{agency_id}/deliveries", tag = "agency", operation_id = "list_deliveries", security(("bearer" = [])),
    params(("agency_id" = String, Path, description = "The agency (the token's client)"), ListQuery),
    responses((status = 200, description = "The agency's deliveries, newest first", body = DeliveryPage), ListErrors))]
pub async fn list(State(state): State<ApiState>, client: AgencyClient, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    let agency_id = client.agency_id();
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            Some(DeliveryStatus::parse(raw).ok_or_else(|| ApiError::field("status", "invalid", "Статус доставки: pending, failed, dead или delivered"))?)
        }
    };
    let limit = match query.limit.as_deref().filter(|s| !s.is_empty()) {
        None => 20,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::field("limit", "out_of_range", "limit — целое число от 1 до 100"))?,
    };
    let cursor = query.cursor.filter(|c| !c.is_empty());
    if cursor.as_deref().is_some_and(|c| !is_id(c)) {
        return Err(ApiError::field("cursor", "invalid", "Неверный курсор"));
    }
    let query = Query::partition(delivery_pk(agency_id)).descending().limit(100).after(cursor);
    let (found, more) = persist::filtered_page(state.kv.as_ref(), query, limit, |d: &Delivery| status.is_none_or(|s| d.status == s)).await?;
    let next_cursor = more.then(|| found.last().map(|(sk, _)| sk.clone())).flatten();
    let items = found.iter().map(|(_, delivery)| DeliveryEntry::from(delivery)).collect();
    Ok(axum::Json(DeliveryPage { items, next_cursor }).into_response())
}

/// `POST /v1/agency/{agency_id}/deliveries/{delivery_id}/redeliver` → 202: the same body with
/// the same `webhook-id`, due now with a fresh retry schedule; an endpoint disabled by a
/// `410 Gone` is enabled again.
#[utoipa::path(post, path = "/v1/agency/{agency_id}/deliveries/{delivery_id}/redeliver", tag = "agency", operation_id = "redeliver", security(("bearer" = [])),
    params(("agency_id" = String, Path, description = "The agency (the token's client)"), ("delivery_id" = String, Path, description = "The delivery (its webhook-id)")),
    responses((status = 202, description = "Queued again", body = DeliveryEntry), RedeliverErrors))]
pub async fn redeliver(
    State(state): State<ApiState>,
    _: AgencyClient,
    ApiPath((agency_id, delivery_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let now = state.ticker.now();
    let queued = persist::retry(|| async {
        let read = deliveries::load(state.kv.as_ref(), &agency_id, &delivery_id).await?.ok_or_else(ApiError::not_found)?;
        let queued = domain::redeliver(&read.value, now);
        let lane = due_pk(&agency_id);
        let new_key = due_sk(now, &delivery_id);
        let mut ops = vec![persist::put_op(delivery_pk(&agency_id), delivery_id.clone(), &queued, read.unchanged(), None)?];
        match domain::due_at(&read.value).map(|at| due_sk(at, &delivery_id)) {
            Some(old_key) if old_key == new_key => {}
            Some(old_key) => ops.push(TxOp::Delete { pk: lane.clone(), sk: old_key, condition: Condition::None }),
            None => {}
        }
        ops.push(persist::put_op(lane, new_key, &Due { delivery_id: delivery_id.clone() }, Condition::None, None)?);
        let (pk, sk) = endpoint_key(&agency_id);
        ops.push(persist::put_op(pk, sk, &Endpoint { disabled: false, disabled_at: None }, Condition::None, None)?);
        Ok::<_, ApiError>(persist::settle(state.kv.transact(ops).await, queued)?)
    })
    .await?;
    tracing::info!(agency_id = %agency_id, delivery_id = %delivery_id, "delivery queued again by the agency");
    Ok((StatusCode::ACCEPTED, axum::Json(DeliveryEntry::from(&queued))).into_response())
}

fn is_id(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric())
}

//! Deliveries to agencies (SPEC §4.5): what the portal owes an agency, recorded in the same
//! transaction as the change that causes it, then attempted by the deliveries function.
//!
//! | pk                    | sk                          | item                                   |
//! |-----------------------|-----------------------------|----------------------------------------|
//! | `DELIVERY#<agency>`   | `<delivery_id>`             | [`Delivery`]: the body and its log      |
//! | `DUE#<agency>`        | `<due unix ms, 13 digits>#<delivery_id>` | [`Due`]: the next attempt  |
//! | `ENDPOINT#<agency>`   | `ENDPOINT`                  | [`Endpoint`]: disabled after a 410      |
//!
//! Each agency has its own due lane, so its deliveries are attempted in order and a slow or
//! failing agency never delays another's. `delivery_id` is the event id and the `webhook-id`
//! of every attempt, so receivers can drop repeats.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::persist::{self, Versioned};
use crate::ports::{Condition, KeyValue, KvError, TxOp};
use crate::vocabulary::DeliveryType;

/// The state of one delivery in the agency's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not attempted yet.
    Pending,
    /// The last attempt failed; another follows at `next_attempt_at`.
    Failed,
    /// Every attempt of the schedule failed (or the endpoint was disabled for good).
    Dead,
    /// The agency answered 2xx.
    Delivered,
}

impl DeliveryStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Failed, Self::Dead, Self::Delivered];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Delivered => "delivered",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// One delivery: the exact body every attempt sends, and what happened so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event id: also the `webhook-id` of every attempt.
    pub delivery_id: String,
    pub agency_id: String,
    pub event_type: DeliveryType,
    /// `{"type", "timestamp", "data"}` as sent (SPEC §4.5), fixed at staging so retries are
    /// byte-identical.
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_response_status: Option<u16>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The pointer in an agency's due lane: which delivery, and its place in the lane's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub delivery_id: String,
}

/// An agency endpoint's switch: a `410 Gone` turns it off until ops (or a redeliver) turn it on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub disabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
}

pub fn delivery_pk(agency_id: &str) -> String {
    format!("DELIVERY#{agency_id}")
}

pub fn due_pk(agency_id: &str) -> String {
    format!("DUE#{agency_id}")
}

/// Sorts by time, then id: a lane read in key order is a lane read in due order.
pub fn due_sk(at: DateTime<Utc>, delivery_id: &str) -> String {
    format!("{:013}#{delivery_id}", at.timestamp_millis().max(0))
}

pub fn endpoint_key(agency_id: &str) -> (String, &'static str) {
    (format!("ENDPOINT#{agency_id}"), "ENDPOINT")
}

/// The body of a delivery (SPEC §4.5): `{"type", "timestamp", "data"}`.
pub fn body(event_type: DeliveryType, at: DateTime<Utc>, data: &serde_json::Value) -> String {
    serde_json::json!({"type": event_type, "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "data": data}).to_string()
}

/// The ops that record a delivery of `data` to `agency_id`, due at once; add them to the
/// transaction of the change that causes it. `delivery_id` is the event's id (a ULID).
pub fn stage(agency_id: &str, delivery_id: &str, event_type: DeliveryType, at: DateTime<Utc>, data: &serde_json::Value) -> Result<Vec<TxOp>, KvError> {
    let delivery = Delivery {
        delivery_id: delivery_id.to_owned(),
        agency_id: agency_id.to_owned(),
        event_type,
        body: body(event_type, at, data),
        status: DeliveryStatus::Pending,
        attempts: 0,
        created_at: at,
        last_attempt_at: None,
        last_response_status: None,
        next_attempt_at: Some(at),
    };
    Ok(vec![
        persist::put_op(delivery_pk(agency_id), delivery_id, &delivery, Condition::NotExists, None)?,
        persist::put_op(due_pk(agency_id), due_sk(at, delivery_id), &Due { delivery_id: delivery_id.to_owned() }, Condition::NotExists, None)?,
    ])
}

pub async fn load(kv: &dyn KeyValue, agency_id: &str, delivery_id: &str) -> Result<Option<Versioned<Delivery>>, KvError> {
    if delivery_id.is_empty() || delivery_id.len() > 64 || !delivery_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    persist::get(kv, &delivery_pk(agency_id), delivery_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time_then_id() {
        let early = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let late = early + chrono::Duration::milliseconds(1);
        let mut keys = vec![due_sk(late, "01A"), due_sk(early, "01B"), due_sk(early, "01A")];
        keys.sort();
        assert_eq!(keys, vec![due_sk(early, "01A"), due_sk(early, "01B"), due_sk(late, "01A")]);
        assert_eq!(due_sk(early, "x").len(), 13 + 2);
    }

    #[test]
    fn a_body_is_type_timestamp_and_data() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let body: serde_json::Value = serde_json::from_str(&body(DeliveryType::ApplicationSubmitted, at, &serde_json::json!({"a": 1}))).unwrap();
        assert_eq!(body, serde_json::json!({"type": "application.submitted", "timestamp": "2026-03-01T10:00:00.000Z", "data": {"a": 1}}));
    }
}

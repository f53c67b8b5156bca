//! The problem answers each operation documents, composed from the groups several share
//! (a JSON body, a live session, a one-time code), so a group is declared once.

use std::collections::BTreeMap;

use shared::http::contract::problem_responses;
use utoipa::openapi::{RefOr, Response};

/// `status => codes` rows of problem answers.
pub type Group = &'static [(u16, &'static [&'static str])];

/// Any operation that reads a JSON body: invalid, too large, or not JSON at all.
pub const JSON_BODY: Group = &[(400, &["validation_failed"]), (413, &["payload_too_large"]), (415, &["unsupported_media_type"])];
/// Any operation behind an access token with a live session.
pub const SESSION: Group = &[(401, &["unauthorized", "invalid_token", "session_expired"])];
/// Any operation that judges a one-time code: wrong, expired, or dead after too many tries.
pub const ONE_TIME_CODE: Group = &[(400, &["otp_invalid"]), (410, &["otp_expired"]), (429, &["rate_limited", "otp_attempts_exceeded"])];
/// A write that kept losing races (`persist::Contended`).
pub const CONTENDED: Group = &[(409, &["concurrent_update"])];
pub const RATE_LIMITED: Group = &[(429, &["rate_limited"])];

/// The groups' rows merged by status, codes in the order given, each once.
pub fn merged(groups: &[Group]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for (status, codes) in groups.iter().flat_map(|g| g.iter()) {
        let known = by_status.entry(*status).or_default();
        for code in *codes {
            if !known.contains(code) {
                known.push(code);
            }
        }
    }
    let rows: Vec<(u16, &[&str])> = by_status.iter().map(|(status, codes)| (*status, codes.as_slice())).collect();
    problem_responses(&rows)
}

/// Declares a type documenting an operation's problem answers (`responses(...)` of
/// `#[utoipa::path]`) as the merge of groups: `answers!(Name = JSON_BODY, &[(409, &["…"])]);`
macro_rules! answers {
    ($(#[$meta:meta])* $vis:vis $name:ident = $($group:expr),+ $(,)?) => {
        $(#[$meta])*
        $vis struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
                #[allow(unused_imports)]
                use $crate::handlers::answers::*;
                merged(&[$($group),+])
            }
        }
    };
}

pub(crate) use answers;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_merge_by_status_without_repeating_a_code() {
        let merged = merged(&[JSON_BODY, ONE_TIME_CODE, RATE_LIMITED]);
        assert_eq!(merged.keys().map(String::as_str).collect::<Vec<_>>(), ["400", "410", "413", "415", "429"]);
        let answer = serde_json::to_value(&merged["429"]).unwrap();
        let codes = &answer["content"]["application/problem+json"]["schema"]["allOf"][1]["properties"]["code"]["enum"];
        assert_eq!(codes, &serde_json::json!(["rate_limited", "otp_attempts_exceeded"]));
    }
}

//! Steps the handlers share: the citizen's write budget, optimistic writes of one application
//! with `If-Match`, paging, input limits and events.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{Object, Required, Type};

use shared::deliveries;
use shared::domain::text::{self, Text, TextRule};
use shared::events::{Event, EventPayload};
use shared::http::{ApiError, ApiJson, ApiPath, Authenticated};
use shared::persist::{self, Attempt};
use shared::ports::{KvError, TxOp};

use crate::domain::{Application, MAX_DOCUMENTS};
use crate::errors;
use crate::outbound::Notice;
use crate::store;
use crate::{AppState, ApplicationsState};

pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Comments, reasons and recommendations (`shared::domain::text::COMMENT`).
pub const MAX_COMMENT_CHARS: usize = text::COMMENT.max_chars;

/// The signed-in citizen, having spent one write of their budget (`crate::WRITE_BUDGET`) and,
/// with `DRAFT`, one draft. Spent before the body is read, so refused requests count too.
pub struct Citizen<const DRAFT: bool>(pub Authenticated);

pub type CitizenWrite = Citizen<false>;
pub type CitizenCreate = Citizen<true>;

impl<const DRAFT: bool> FromRequestParts<AppState> for Citizen<DRAFT> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        if DRAFT {
            state.limiter.create(&state.write_budget, auth.user_id()).await?;
        } else {
            state.limiter.write(&state.write_budget, auth.user_id()).await?;
        }
        Ok(Self(auth))
    }
}

/// A write to one of the citizen's applications: the citizen (budget spent), the `{id}` of the
/// path and the `If-Match` they sent.
pub struct OwnWrite {
    pub auth: Authenticated,
    pub id: String,
    pub expected: IfMatch,
}

impl FromRequestParts<AppState> for OwnWrite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Citizen(auth) = CitizenWrite::from_request_parts(parts, state).await?;
        let ApiPath(id) = ApiPath::<String>::from_request_parts(parts, state).await?;
        Ok(Self { auth, id, expected: IfMatch::from_headers(&parts.headers) })
    }
}

/// `{id}` and `If-Match` in the contract, as `OwnWrite` reads them.
impl utoipa::IntoParams for OwnWrite {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            string_param("id", ParameterIn::Path, Required::True, "Application id"),
            string_param("If-Match", ParameterIn::Header, Required::False, "`\"<version>\"` from `ETag`: apply only to that version (else 412)"),
        ]
    }
}

fn string_param(name: &str, at: ParameterIn, required: Required, description: &str) -> Parameter {
    let schema = Object::with_type(Type::String);
    ParameterBuilder::new().name(name).parameter_in(at).required(required).description(Some(description)).schema(Some(schema)).build()
}

/// The caller's application, or 404 when it does not exist or is someone else's.
pub async fn load_own(state: &ApplicationsState, user_id: &str, application_id: &str) -> Result<Application, ApiError> {
    match store::load(state.kv.as_ref(), application_id).await? {
        Some(app) if app.user_id == user_id => Ok(app),
        _ => Err(ApiError::not_found()),
    }
}

/// What a change to an application adds to its write: more ops, the events it causes and what
/// its agency must be told.
#[derive(Default)]
pub struct Effects {
    pub ops: Vec<TxOp>,
    pub events: Vec<Event>,
    /// The change left the application as it was: nothing is written, the version stays.
    pub unchanged: bool,
    /// A delivery to the application's agency (SPEC §4.5) and its id, the id of the event it
    /// goes with; staged in the same transaction from the application as saved.
    pub notice: Option<(String, Notice)>,
}

impl Effects {
    pub fn event(event: Event) -> Self {
        Self { events: vec![event], ..Self::default() }
    }

    /// `event`, and `notice` to the agency under the event's id.
    pub fn told(event: Event, notice: Notice) -> Self {
        Self { notice: Some((event.id.clone(), notice)), ..Self::event(event) }
    }
}

/// The ops that stage `notice` about `app` (as saved) for its agency as delivery `delivery_id`.
pub fn stage_notice(app: &Application, delivery_id: &str, notice: &Notice, at: DateTime<Utc>) -> Result<Vec<TxOp>, KvError> {
    deliveries::stage(&app.agency_id, delivery_id, notice.delivery_type(), at, &notice.data(app))
}

/// Applies `change` to the caller's application as one conditional write on the version read,
/// with its events (`Relay::commit`). On a lost race it re-reads and re-decides under the one
/// retry policy (`persist::retry`), unless the caller pinned a version with `If-Match`, which
/// then answers 412. `change` gets the time of its round, so history follows commit order.
pub async fn write_own<F, Fut>(state: &ApplicationsState, target: &OwnWrite, change: F) -> Result<Application, ApiError>
where
    F: Fn(Application, DateTime<Utc>) -> Fut,
    Fut: Future<Output = Result<(Application, Effects), ApiError>>,
{
    persist::retry(|| async {
        let app = load_own(state, target.auth.user_id(), &target.id).await?;
        target.expected.check(app.version)?;
        let now = state.ticker.now();
        let (mut app, effects) = change(app, now).await?;
        if effects.unchanged {
            return Ok(Attempt::Done(app));
        }
        let mut ops = store::save_ops(&mut app)?;
        ops.extend(effects.ops);
        if let Some((delivery_id, notice)) = &effects.notice {
            ops.extend(stage_notice(&app, delivery_id, notice, now)?);
        }
        match Attempt::of(state.relay.commit(ops, &effects.events).await)? {
            Attempt::Done(()) => Ok(Attempt::Done(app)),
            Attempt::Conflict if target.expected.is_pinned() => Err(errors::precondition_failed()),
            Attempt::Conflict => Ok(Attempt::Conflict),
        }
    })
    .await
}

/// `If-Match` as sent: absent, `*`, or a list of entity tags (`"3"`, `W/"3"` or bare `3`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    Absent,
    Any,
    Versions(Vec<u64>),
}

impl IfMatch {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let values: Vec<&str> = headers.get_all(header::IF_MATCH).iter().filter_map(|v| v.to_str().ok()).collect();
        if values.is_empty() {
            return Self::Absent;
        }
        let tags: Vec<&str> = values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|t| !t.is_empty()).collect();
        if tags.contains(&"*") {
            return Self::Any;
        }
        // A tag that is not a version can match nothing, so it is dropped (and 412 follows).
        Self::Versions(tags.iter().filter_map(|t| t.trim_start_matches("W/").trim_matches('"').parse().ok()).collect())
    }

    pub fn is_pinned(&self) -> bool {
        matches!(self, Self::Versions(_))
    }

    pub fn check(&self, version: u64) -> Result<(), ApiError> {
        match self {
            Self::Versions(versions) if !versions.contains(&version) => Err(errors::precondition_failed()),
            _ => Ok(()),
        }
    }
}

/// `payload` as an event about `app`'s citizen, stamped by the state's ticker.
pub fn event(state: &ApplicationsState, app: &Application, payload: EventPayload) -> Event {
    Event::new(&state.ticker, Some(app.user_id.clone()), payload)
}

/// The service title for events; an application outlives catalogue edits, so fall back to the code.
pub fn service_title(state: &ApplicationsState, app: &Application) -> String {
    state.catalogue.get(&app.service_code).map_or_else(|| app.service_code.clone(), |s| s.title.clone())
}

/// `?cursor=&limit=` of the citizen's lists (SPEC §2).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([0-9A-Za-z]{26})?$")]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

impl Paging {
    /// The page size (default 20, at most 100) and a cursor that can only be an id.
    pub fn parse(&self) -> Result<(Option<&str>, usize), ApiError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => 20,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => return Err(ApiError::field("limit", "out_of_range", "limit — целое число от 1 до 100")),
            },
        };
        let cursor = self.cursor.as_deref().filter(|c| !c.is_empty());
        if cursor.is_some_and(|c| !store::is_id(c)) {
            return Err(ApiError::field("cursor", "invalid", "Неверный курсор"));
        }
        Ok((cursor, limit))
    }
}

/// A JSON body that may be absent (e.g. `POST /withdraw` with no reason).
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    ApiJson::<T>::from_bytes(body)
}

/// A body that must be a JSON object of exactly `T`'s fields (`T` denies unknown fields);
/// serde alone would also take an array for a struct.
pub fn object_body<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    if !body.is_object() {
        return Err(ApiError::field("body", "invalid_type", "Тело запроса должно быть JSON-объектом"));
    }
    ApiJson::<T>::from_bytes(&serde_json::to_vec(&body).map_err(ApiError::internal)?)
}

/// The form as given: a JSON object of bounded size whose texts hold no control or invisible
/// characters (checked against the schema on submit).
pub fn check_form_shape(form: Value) -> Result<Value, ApiError> {
    if !form.is_object() {
        return Err(ApiError::field("/form", "invalid", "form должна быть JSON-объектом"));
    }
    if form.to_string().len() > MAX_FORM_BYTES {
        return Err(ApiError::field("/form", "too_large", "Форма слишком велика"));
    }
    if let Some(at) = unclean_text(&form, "/form") {
        return Err(ApiError::validation(vec![text::TextError::ForbiddenCharacters.field_error(&at)]));
    }
    Ok(form)
}

/// The pointer of the first string (or the object holding the first key) with a forbidden
/// character; forms may hold multi-line text such as addresses.
fn unclean_text(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) => text::has_forbidden_characters(s, true).then(|| at.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| unclean_text(v, &format!("{at}/{i}"))),
        Value::Object(fields) => fields.iter().find_map(|(key, v)| {
            if text::has_forbidden_characters(key, false) {
                return Some(at.to_owned());
            }
            unclean_text(v, &format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")))
        }),
        _ => None,
    }
}

/// An id or code named in a request: at most `text::ID_MAX_CHARS` characters (what it names
/// is looked up after).
pub fn check_id<'a>(field: &str, raw: &'a str) -> Result<&'a str, ApiError> {
    let id = raw.trim();
    if id.chars().take(text::ID_MAX_CHARS + 1).count() > text::ID_MAX_CHARS {
        return Err(ApiError::field(field, "too_long", &format!("Не длиннее {} символов", text::ID_MAX_CHARS)));
    }
    Ok(id)
}

/// Document ids as given, deduplicated in order; their existence is checked on submit.
pub fn check_document_ids(field: &str, ids: Vec<String>) -> Result<Vec<String>, ApiError> {
    if ids.len() > MAX_DOCUMENTS {
        return Err(ApiError::field(field, "too_many", &format!("Можно приложить не больше {MAX_DOCUMENTS} документов")));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for (index, id) in ids.into_iter().enumerate() {
        let id = id.trim().to_owned();
        if id.is_empty() || id.len() > text::ID_MAX_CHARS || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ApiError::field(&format!("{field}/{index}"), "invalid", "Неверный идентификатор документа"));
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// An optional comment or reason: trimmed, blank means none, at most `max_chars`, clean
/// (`shared::domain::text`; `\n` and `\t` allowed).
pub fn check_text(field: &str, text: Option<String>, max_chars: usize) -> Result<Option<String>, ApiError> {
    check_text_as(field, text, TextRule::multiline(max_chars))
}

/// Optional free text of any kind (a name, a position, a comment) under its `rule`.
pub fn check_text_as(field: &str, text: Option<String>, rule: TextRule) -> Result<Option<String>, ApiError> {
    Text::parse_optional(text.as_deref(), rule).map(|t| t.map(Text::into_string)).map_err(|e| ApiError::validation(vec![e.field_error(field)]))
}

/// Required free text (a message): as `check_text`, but blank is refused.
pub fn required_text(field: &str, text: &str, rule: TextRule) -> Result<String, ApiError> {
    Text::parse(text, rule).map(Text::into_string).map_err(|e| ApiError::validation(vec![e.field_error(field)]))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn if_match_accepts_strong_weak_and_bare_tags() {
        assert_eq!(IfMatch::from_headers(&headers(&[])), IfMatch::Absent);
        assert_eq!(IfMatch::from_headers(&headers(&["*"])), IfMatch::Any);
        assert_eq!(IfMatch::from_headers(&headers(&["\"3\""])), IfMatch::Versions(vec![3]));
        assert_eq!(IfMatch::from_headers(&headers(&["W/\"4\", 5"])), IfMatch::Versions(vec![4, 5]));
        let garbage = IfMatch::from_headers(&headers(&["\"abc\""]));
        assert!(garbage.is_pinned());
        assert_eq!(garbage.check(1).unwrap_err().code, "precondition_failed");
        assert!(IfMatch::Versions(vec![2]).check(2).is_ok());
        assert!(IfMatch::Any.check(9).is_ok());
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(Paging::default().parse().unwrap(), (None, 20));
        let p = Paging { cursor: None, limit: Some("101".into()) };
        assert!(p.parse().is_err());
        let p = Paging { cursor: Some("../x".into()), limit: Some("5".into()) };
        assert!(p.parse().is_err());
    }

    #[test]
    fn document_ids_are_deduplicated_and_checked() {
        assert_eq!(check_document_ids("/document_ids", vec!["A1".into(), "A1".into(), "B2".into()]).unwrap(), vec!["A1", "B2"]);
        assert_eq!(check_document_ids("/document_ids", vec!["ok".into(), "../x".into()]).unwrap_err().errors[0].field, "/document_ids/1");
        assert!(check_document_ids("/document_ids", vec!["a".into(); 51]).is_err());
    }
}

//! `PUT /v1/me/profile` (SPEC §3.8): the citizen's personal data. Storing it asks the registry
//! agency to verify it; changing core data (name, birth date, SNILS, passport) drops a
//! verified level back to `simplified` until it is verified again.

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use shared::deliveries;
use shared::domain::{FieldError, Inn, Passport, PassportInput, Snils};
use shared::events::{Event, EventPayload};
use shared::http::{ApiError, ApiJson, Authenticated};
use shared::identity::{Gender, LOGIN_SK, Profile, Verification};
use shared::persist;
use shared::ports::TxOp;
use shared::vocabulary::DeliveryType;

use super::answers::answers;
use super::common;
use crate::AppState;
use crate::domain::account;
use crate::store::LoginIndex;

/// Every field is checked and each broken one reported (missing ones too) in `errors[]`.
#[derive(Deserialize, ToSchema)]
pub struct ProfileRequest {
    #[serde(default)]
    #[schema(required = true, max_length = 100, example = "Иванова")]
    last_name: String,
    #[serde(default)]
    #[schema(required = true, max_length = 100, example = "Анна")]
    first_name: String,
    #[schema(max_length = 100, example = "Сергеевна")]
    middle_name: Option<String>,
    /// `YYYY-MM-DD`, not in the future.
    #[serde(default)]
    #[schema(required = true, format = Date, example = "1990-05-17")]
    birth_date: String,
    #[serde(default)]
    #[schema(required = true, value_type = shared::identity::Gender)]
    gender: String,
    /// 11 digits with a valid checksum, bare or `XXX-XXX-XXX YY`.
    #[serde(default)]
    #[schema(required = true, example = "112-233-445 95")]
    snils: String,
    /// 12 digits with valid check digits.
    #[schema(example = "500100732259")]
    inn: Option<String>,
    #[serde(default)]
    #[schema(required = true, value_type = shared::domain::PassportInput)]
    passport: PassportInput,
}

answers!(ProfileErrors = JSON_BODY, SESSION, CONTENDED);

/// `PUT /v1/me/profile`: stores the personal data and asks the registry agency to verify it;
/// changed core data drops a verified level back to `simplified`.
#[utoipa::path(put, path = "/v1/me/profile", operation_id = "put_profile", tag = "auth", security(("bearer" = [])), request_body = ProfileRequest,
    responses((status = 200, description = "The stored profile with its verification request", body = shared::identity::Profile), ProfileErrors))]
pub async fn put_profile(State(state): State<AppState>, auth: Authenticated, ApiJson(req): ApiJson<ProfileRequest>) -> Result<impl IntoResponse, ApiError> {
    let parsed = parse(&req, state.ticker.now())?;
    let (profile, core_changed) = persist::retry(|| async {
        let (read, _) = common::current(&state, &auth).await?;
        let mut account = read.value.clone();
        let stored = account::store_profile(&mut account, parsed.clone(), state.ticker.now(), state.ticker.id(), &state.settings.registry_agency_id);
        let mut ops = vec![common::account_op(&read, &account)?];
        // SNILS becomes a login only when the registry verifies it (applications function);
        // a changed SNILS stops naming this account at once.
        if let Some(old) = &stored.dropped_snils {
            let key = shared::identity::login_pk(&state.index_key, &shared::identity::snils_login(old));
            if let Some(index) = persist::get::<LoginIndex>(state.kv.as_ref(), &key, LOGIN_SK).await?
                && index.value.user_id == auth.user_id()
            {
                ops.push(TxOp::Delete { pk: key, sk: LOGIN_SK.into(), condition: index.unchanged() });
            }
        }
        let events: Vec<Event> = stored.events.into_iter().map(|p| common::event(&state, Some(auth.user_id()), p)).collect();
        // The registry agency is asked in the same transaction, under the event's id.
        for event in &events {
            if let EventPayload::IdentityVerificationRequested { registry_agency_id, request_id, profile } = &event.payload {
                let data = account::verification_request(auth.user_id(), request_id, profile);
                ops.extend(deliveries::stage(registry_agency_id, &event.id, DeliveryType::IdentityVerificationRequested, event.at, &data)?);
            }
        }
        Ok::<_, ApiError>(common::commit(&state, ops, &events, (stored.profile, stored.core_changed)).await?)
    })
    .await?;
    tracing::info!(user_id = %auth.user_id(), core_changed, "profile stored");
    Ok(ApiJson(profile))
}

/// Checks every field and reports all broken ones at once.
fn parse(req: &ProfileRequest, now: DateTime<Utc>) -> Result<Profile, ApiError> {
    let mut errors = Vec::new();
    let name = |field: &str, value: &str, required: bool, errors: &mut Vec<FieldError>| -> Option<String> {
        let value = value.trim();
        if value.is_empty() {
            if required {
                errors.push(FieldError::new(field, "required", "Поле обязательно для заполнения"));
            }
            return None;
        }
        let valid = value.chars().count() <= 100 && value.chars().all(|c| c.is_alphabetic() || c == '-' || c == ' ' || c == '\'');
        if !valid {
            errors.push(FieldError::new(field, "invalid_format", "Допустимы только буквы, дефис, пробел и апостроф (до 100 символов)"));
            return None;
        }
        Some(value.to_owned())
    };
    let last_name = name("last_name", &req.last_name, true, &mut errors);
    let first_name = name("first_name", &req.first_name, true, &mut errors);
    let middle_name = name("middle_name", req.middle_name.as_deref().unwrap_or(""), false, &mut errors);
    let today = now.date_naive();
    let birth_date = match NaiveDate::parse_from_str(req.birth_date.trim(), "%Y-%m-%d") {
        Ok(d) if d > today => {
            errors.push(FieldError::new("birth_date", "in_future", "Дата рождения не может быть в будущем"));
            None
        }
        Ok(d) if d < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(d) => {
            errors.push(FieldError::new("birth_date", "invalid", "Проверьте дату рождения"));
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new("birth_date", "invalid_format", "Укажите дату в формате ГГГГ-ММ-ДД"));
            None
        }
    };
    let gender = match req.gender.as_str() {
        "male" => Some(Gender::Male),
        "female" => Some(Gender::Female),
        _ => {
            errors.push(FieldError::new("gender", "invalid", "Укажите пол: male или female"));
            None
        }
    };
    let snils = Snils::parse(&req.snils).map_err(|e| errors.push(e.field_error("snils"))).ok();
    let inn = match req.inn.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Inn::parse(raw).map_err(|e| errors.push(e.field_error("inn"))).ok(),
        None => None,
    };
    let passport = Passport::parse_as_of(&req.passport, today).map_err(|e| errors.extend(shared::domain::PassportError::field_errors(&e))).ok();
    if let (Some(birth), Some(p)) = (birth_date, &passport)
        && p.issued_at() < birth
    {
        errors.push(FieldError::new("passport.issued_at", "before_birth", "Паспорт не может быть выдан раньше даты рождения"));
    }
    match (last_name, first_name, birth_date, gender, snils, passport) {
        (Some(last_name), Some(first_name), Some(birth_date), Some(gender), Some(snils), Some(passport)) if errors.is_empty() => Ok(Profile {
            last_name,
            first_name,
            middle_name,
            birth_date,
            gender,
            snils,
            inn,
            passport,
            verification: Verification::requested(String::new()),
            updated_at: now,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

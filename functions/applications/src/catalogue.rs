//! The service catalogue (SPEC §4.1): what a citizen can apply for, which agency handles it,
//! the account level and documents it needs, and the JSON Schema (draft 2020-12) its form
//! must satisfy. Loaded once at start-up and checked whole: a service naming an unknown
//! agency, a schema that does not compile or an example that fails its own schema stops the
//! function from starting rather than failing citizens later.
//!
//! Source: `SERVICES_JSON` (the document), else the file named by `SERVICES_FILE`, else the
//! seed `infra/local/seed/services.json` compiled in (it holds no secrets, so Lambda may use it).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use shared::agencies::{Capability, Registry};
use shared::domain::FieldError;
use shared::identity::Level;

const SEED: &str = include_str!("../../../infra/local/seed/services.json");

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Document types a service may require (SPEC §5), with the names citizens see.
/// `result` is issued by agencies and is never required from a citizen.
pub const DOCUMENT_TYPES: &[(&str, &str)] = &[
    ("passport", "Паспорт гражданина РФ"),
    ("snils", "СНИЛС"),
    ("inn", "ИНН"),
    ("driver_license", "Водительское удостоверение"),
    ("oms_policy", "Полис ОМС"),
    ("birth_certificate", "Свидетельство о рождении"),
    ("marriage_certificate", "Свидетельство о браке"),
    ("power_of_attorney", "Доверенность"),
    ("photo", "Фотография"),
    ("other", "Иной документ"),
];

pub fn document_type_title(doc_type: &str) -> &str {
    DOCUMENT_TYPES.iter().find(|(t, _)| *t == doc_type).map_or(doc_type, |(_, title)| title)
}

/// A service of the catalogue (SPEC §4.1).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Stable code, 1–64 of `[a-z0-9-]`.
    #[schema(pattern = "^[a-z0-9-]{1,64}$", example = "passport-replacement")]
    pub code: String,
    pub title: String,
    pub description: String,
    pub category: String,
    /// The agency that handles applications for it.
    pub agency_id: String,
    /// The account level a citizen needs to submit.
    pub required_level: Level,
    /// Document types (SPEC §5) an application must have attached.
    pub required_documents: Vec<String>,
    /// Working time the agency promises, in days from submission.
    pub processing_days: u32,
    /// State fee in kopecks (0: free).
    pub fee_kopecks: u64,
    /// JSON Schema (draft 2020-12) the application form must satisfy.
    #[schema(value_type = Object)]
    pub form_schema: Value,
    /// A form that passes `form_schema`, for frontends and docs.
    #[schema(value_type = Object)]
    pub form_example: Value,
}

/// A service in lists: everything but the form schema and example (SPEC §4.1 allows it).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceSummary<'a> {
    #[schema(value_type = String, pattern = "^[a-z0-9-]{1,64}$")]
    code: &'a str,
    #[schema(value_type = String)]
    title: &'a str,
    #[schema(value_type = String)]
    description: &'a str,
    #[schema(value_type = String)]
    category: &'a str,
    #[schema(value_type = String)]
    agency_id: &'a str,
    required_level: Level,
    #[schema(value_type = Vec<String>)]
    required_documents: &'a [String],
    processing_days: u32,
    fee_kopecks: u64,
}

impl Service {
    pub fn summary(&self) -> ServiceSummary<'_> {
        ServiceSummary {
            code: &self.code,
            title: &self.title,
            description: &self.description,
            category: &self.category,
            agency_id: &self.agency_id,
            required_level: self.required_level,
            required_documents: &self.required_documents,
            processing_days: self.processing_days,
            fee_kopecks: self.fee_kopecks,
        }
    }

    /// Case-insensitive substring search on title and description; `ё` matches `е`.
    pub fn matches_text(&self, needle: &str) -> bool {
        let needle = fold(needle);
        fold(&self.title).contains(&needle) || fold(&self.description).contains(&needle)
    }
}

/// Lower case with `ё` folded into `е`, as Russian readers treat them.
fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).map(|c| if c == 'ё' { 'е' } else { c }).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("service catalogue: {0}")]
    Invalid(String),
    #[error("service catalogue file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

pub struct Catalogue {
    services: Vec<Service>,
    /// Compiled once here; validating a form never recompiles its schema.
    validators: HashMap<String, jsonschema::Validator>,
}

#[derive(Deserialize)]
struct CatalogueDocument {
    services: Vec<Service>,
}

impl Catalogue {
    pub fn load(agencies: &Registry) -> Result<Self, CatalogueError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(json) = var("SERVICES_JSON") {
            return Self::from_json(&json, agencies);
        }
        if let Some(path) = var("SERVICES_FILE") {
            let json = std::fs::read_to_string(&path).map_err(|source| CatalogueError::Io { path, source })?;
            return Self::from_json(&json, agencies);
        }
        Self::seed(agencies)
    }

    pub fn seed(agencies: &Registry) -> Result<Self, CatalogueError> {
        Self::from_json(SEED, agencies)
    }

    pub fn from_json(json: &str, agencies: &Registry) -> Result<Self, CatalogueError> {
        let document: CatalogueDocument = serde_json::from_str(json).map_err(|e| CatalogueError::Invalid(e.to_string()))?;
        let mut codes = HashSet::new();
        let mut validators = HashMap::new();
        for service in &document.services {
            let invalid = |what: String| CatalogueError::Invalid(format!("service {}: {what}", service.code));
            let code_ok =
                !service.code.is_empty() && service.code.len() <= 64 && service.code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !code_ok {
                return Err(invalid("code must be 1-64 of [a-z0-9-]".into()));
            }
            if !codes.insert(service.code.clone()) {
                return Err(invalid("listed twice".into()));
            }
            if service.title.trim().is_empty() || service.category.trim().is_empty() {
                return Err(invalid("title and category are required".into()));
            }
            match agencies.get(&service.agency_id) {
                Some(agency) if agency.can(Capability::Applications) => {}
                Some(_) => return Err(invalid(format!("agency {} does not accept applications", service.agency_id))),
                None => return Err(invalid(format!("unknown agency {}", service.agency_id))),
            }
            if let Some(doc_type) = service.required_documents.iter().find(|t| !DOCUMENT_TYPES.iter().any(|(known, _)| known == t)) {
                return Err(invalid(format!("unknown required document type {doc_type}")));
            }
            if service.form_schema.get("$schema").and_then(Value::as_str) != Some(DRAFT_2020_12) {
                return Err(invalid(format!("form_schema must declare \"$schema\": \"{DRAFT_2020_12}\"")));
            }
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&service.form_schema)
                .map_err(|e| invalid(format!("form_schema does not compile: {e}")))?;
            if let Some(error) = validator.iter_errors(&service.form_example).next() {
                return Err(invalid(format!("form_example fails form_schema at {:?}: {error}", error.instance_path().as_str())));
            }
            validators.insert(service.code.clone(), validator);
        }
        Ok(Self { services: document.services, validators })
    }

    pub fn get(&self, code: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.code == code)
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Every way `form` breaks the service's schema, each named by a JSON pointer into the
    /// application body (`/form/...`) and explained in Russian.
    pub fn check_form(&self, service: &Service, form: &Value) -> Vec<FieldError> {
        let Some(validator) = self.validators.get(&service.code) else {
            return vec![FieldError::new("/form", "schema_unavailable", "Форма услуги недоступна")];
        };
        let mut errors = Vec::new();
        for error in validator.iter_errors(form) {
            let at = format!("/form{}", error.instance_path().as_str());
            use jsonschema::error::ValidationErrorKind as Kind;
            match error.kind() {
                Kind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    errors.push(FieldError::new(format!("{at}/{}", escape_pointer(name)), "required", "Обязательное поле не заполнено"));
                }
                Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected } => {
                    for name in unexpected {
                        errors.push(FieldError::new(format!("{at}/{}", escape_pointer(name)), "unexpected_field", "Такого поля нет в форме услуги"));
                    }
                }
                kind => errors.push(FieldError::new(at, snake_case(kind.keyword()), message(kind))),
            }
        }
        errors
    }
}

/// RFC 6901 escaping of one pointer segment.
fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn snake_case(keyword: &str) -> String {
    let mut out = String::with_capacity(keyword.len() + 4);
    for c in keyword.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A Russian explanation that names the expectation, never the submitted value.
fn message(kind: &jsonschema::error::ValidationErrorKind) -> String {
    use jsonschema::error::ValidationErrorKind as Kind;
    match kind {
        Kind::Type { .. } => "Неверный тип значения".into(),
        Kind::MinLength { limit } => format!("Значение должно быть не короче {limit} символов"),
        Kind::MaxLength { limit } => format!("Значение должно быть не длиннее {limit} символов"),
        Kind::Pattern { .. } => "Значение не соответствует формату поля".into(),
        Kind::Enum { options } => {
            let values: Vec<String> =
                options.as_array().map(|a| a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect()).unwrap_or_default();
            format!("Выберите одно из значений: {}", values.join(", "))
        }
        Kind::Constant { .. } => "Недопустимое значение".into(),
        Kind::Format { format } => match format.as_str() {
            "date" => "Укажите дату в формате ГГГГ-ММ-ДД".into(),
            "date-time" => "Укажите дату и время в формате RFC 3339".into(),
            "email" => "Неверный адрес электронной почты".into(),
            _ => "Значение не соответствует формату поля".into(),
        },
        Kind::Minimum { limit } => format!("Значение должно быть не меньше {limit}"),
        Kind::Maximum { limit } => format!("Значение должно быть не больше {limit}"),
        Kind::ExclusiveMinimum { limit } => format!("Значение должно быть больше {limit}"),
        Kind::ExclusiveMaximum { limit } => format!("Значение должно быть меньше {limit}"),
        Kind::MinItems { limit } => format!("Нужно указать не меньше {limit} элементов"),
        Kind::MaxItems { limit } => format!("Можно указать не больше {limit} элементов"),
        Kind::UniqueItems => "Значения не должны повторяться".into(),
        _ => "Значение не соответствует требованиям формы".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed() -> (Registry, Catalogue) {
        let agencies = Registry::dev_seed().expect("agency seed");
        let catalogue = Catalogue::seed(&agencies).expect("service seed loads");
        (agencies, catalogue)
    }

    #[test]
    fn seed_catalogue_covers_the_spec_minimum() {
        let (_, catalogue) = seed();
        let services = catalogue.services();
        assert!(services.len() >= 12, "{} services", services.len());
        let agencies: HashSet<_> = services.iter().map(|s| s.agency_id.as_str()).collect();
        assert!(agencies.len() >= 4, "{agencies:?}");
        for level in [Level::Simplified, Level::Standard, Level::Confirmed] {
            assert!(services.iter().any(|s| s.required_level == level), "{level:?}");
        }
        assert!(
            services.iter().any(|s| s.required_level == Level::Simplified && s.required_documents.is_empty()),
            "a service anyone can apply for without documents"
        );
        assert!(services.iter().any(|s| s.fee_kopecks > 0));
    }

    #[test]
    fn every_seed_example_passes_its_schema_and_every_agency_accepts_applications() {
        let (agencies, catalogue) = seed();
        for service in catalogue.services() {
            let errors = catalogue.check_form(service, &service.form_example);
            assert!(errors.is_empty(), "{}: {errors:?}", service.code);
            let agency = agencies.get(&service.agency_id).unwrap_or_else(|| panic!("{}: unknown agency", service.code));
            assert!(agency.can(Capability::Applications), "{}: {} takes no applications", service.code, agency.id);
            assert_eq!(service.form_schema["$schema"], DRAFT_2020_12, "{}", service.code);
            assert!(service.title.chars().any(|c| ('а'..='я').contains(&c) || ('А'..='Я').contains(&c)), "{}: Russian title", service.code);
        }
    }

    #[test]
    fn schema_errors_are_reported_one_per_problem_with_json_pointers() {
        let (_, catalogue) = seed();
        let service = catalogue.get("unified-allowance").expect("service");
        let form = json!({
            "children": [{"last_name": "Соколова", "birth_date": "12.04.2019"}],
            "family_members_count": 1,
            "income_last_12_months_kopecks": "много",
            "bank_account": "4081",
            "pet": "кот"
        });
        let errors = catalogue.check_form(service, &form);
        let found: HashSet<(String, String)> = errors.iter().map(|e| (e.field.clone(), e.code.clone())).collect();
        for expected in [
            ("/form/children/0/first_name", "required"),
            ("/form/children/0/birth_date", "format"),
            ("/form/family_members_count", "minimum"),
            ("/form/income_last_12_months_kopecks", "type"),
            ("/form/bank_account", "pattern"),
            ("/form/bank_bic", "required"),
            ("/form/pet", "unexpected_field"),
        ] {
            assert!(found.contains(&(expected.0.to_owned(), expected.1.to_owned())), "missing {expected:?} in {errors:?}");
        }
        assert!(errors.iter().all(|e| !e.message.contains("кот") && !e.message.contains("много")), "messages never echo input");
    }

    #[test]
    fn a_service_with_an_unknown_agency_or_failing_example_is_refused() {
        let (agencies, catalogue) = seed();
        let mut service = serde_json::to_value(catalogue.get("mfc-appointment").expect("service")).expect("json");
        let document = |s: &Value| json!({"services": [s]}).to_string();
        assert!(Catalogue::from_json(&document(&service), &agencies).is_ok());

        service["agency_id"] = json!("pochta");
        assert!(Catalogue::from_json(&document(&service), &agencies).is_err(), "pochta takes no applications");
        service["agency_id"] = json!("nasa");
        assert!(Catalogue::from_json(&document(&service), &agencies).is_err());
        service["agency_id"] = json!("mfc");
        service["form_example"]["topic"] = json!("weather");
        assert!(Catalogue::from_json(&document(&service), &agencies).is_err());
        service["form_example"]["topic"] = json!("passport");
        service["required_documents"] = json!(["result"]);
        assert!(Catalogue::from_json(&document(&service), &agencies).is_err());
    }

    #[test]
    fn text_search_ignores_case_and_yo() {
        let (_, catalogue) = seed();
        let found = |q: &str| catalogue.services().iter().filter(|s| s.matches_text(q)).map(|s| s.code.clone()).collect::<Vec<_>>();
        assert!(found("ПАСПОРТ").contains(&"passport-replacement".to_owned()));
        assert!(found("счет").contains(&"pension-statement".to_owned()), "счёт is found as счет");
        assert!(found("несуществующая услуга").is_empty());
    }
}

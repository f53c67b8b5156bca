//! The decisions of SPEC §4 over an [`Application`] and an account, apart from HTTP and storage:
//! each takes what was read (the application, the account, the attached documents, the
//! catalogue) and the time, changes the value in memory and says which event it causes, or
//! refuses with one error enum per boundary ([`SubmitError`], [`ChangeError`], [`LevelError`]),
//! mapped once to problem+json in `crate::errors`. The handlers read, call these, write, answer.
//! Who may move an application where is the SPEC table in `shared::domain::application`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use shared::domain::FieldError;
use shared::domain::application::can_transition;
use shared::events::EventPayload;
use shared::identity::{Account, Verdict, VerdictError};
use shared::records::DocumentRef;
use shared::vocabulary::{ActorKind, ApplicationStatus, DocumentStatus, Level, LevelChangeReason};

use crate::catalogue::{Catalogue, Service, document_type_title};

/// Documents one application may carry (attached by the citizen, or issued as results).
pub const MAX_DOCUMENTS: usize = 50;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub application_id: String,
    pub user_id: String,
    pub service_code: String,
    pub agency_id: String,
    pub status: ApplicationStatus,
    pub number: Option<String>,
    pub form: Value,
    pub document_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub expected_completion_date: Option<NaiveDate>,
    pub rejection: Option<Rejection>,
    pub result_document_ids: Vec<String>,
    pub history: Vec<HistoryEntry>,
    /// The store version of the record after the write that produced this state.
    pub version: u64,
}

/// An agency's refusal (SPEC §4.2: `rejected` requires a reason).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationRejection)]
pub struct Rejection {
    pub reason: String,
    /// What the citizen can do about it.
    #[schema(required = true)]
    pub recommendations: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: ApplicationStatus,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Who did something to an application: the citizen, an agency (with its employee's name and
/// position when given) or the system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationActor)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: ActorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

impl Actor {
    pub fn citizen() -> Self {
        Self { kind: ActorKind::Citizen, name: None, position: None }
    }
}

/// A message of the thread between the citizen and the agency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ApplicationMessage)]
pub struct Message {
    pub message_id: String,
    pub author: Actor,
    /// 1–4,000 characters.
    #[schema(max_length = 4000)]
    pub text: String,
    pub at: DateTime<Utc>,
}

/// Why a submission is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Transition(#[from] Transition),
    #[error("the service is no longer offered")]
    ServiceUnavailable,
    #[error("the service needs a {0:?} account")]
    LevelInsufficient(Level),
    /// The form breaks the schema, or documents are unusable or missing.
    #[error("the application is incomplete")]
    Incomplete(Vec<FieldError>),
}

/// Why a change to a submitted application (or a draft's edit, or a message) is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Transition(#[from] Transition),
    #[error("only a draft can be edited; this one is {0:?}")]
    NotADraft(ApplicationStatus),
    #[error("a draft has no thread with the agency")]
    NoThread,
    #[error("the change names unusable documents")]
    Unprocessable(Vec<FieldError>),
}

/// Why an account's level cannot change as an agency says.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum LevelError {
    #[error("the citizen has no profile to verify")]
    NoProfile,
    #[error("the verdict answers an outdated request")]
    Outdated,
    #[error("level {from:?} cannot become {to:?}")]
    Conflict { from: Level, to: Level },
}

/// A move the SPEC §4.2 table does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{from:?} cannot become {to:?}")]
pub struct Transition {
    pub from: ApplicationStatus,
    pub to: ApplicationStatus,
}

/// A submission that passed every check: all the number draw needs to wait for.
#[derive(Debug)]
pub struct Submission<'a> {
    service: &'a Service,
}

/// What an agency's `application.status_changed` asks for, its input already checked.
#[derive(Debug)]
pub struct AgencyUpdate {
    pub to: ApplicationStatus,
    pub actor: Actor,
    pub comment: Option<String>,
    pub rejection: Option<Rejection>,
    pub expected_completion_date: Option<NaiveDate>,
    /// Result documents named, with what was found for each at the citizen's.
    pub results: Vec<(String, Option<DocumentRef>)>,
}

impl Application {
    pub fn new_draft(application_id: String, user_id: &str, service: &Service, form: Value, document_ids: Vec<String>, now: DateTime<Utc>) -> Self {
        Self {
            application_id,
            user_id: user_id.to_owned(),
            service_code: service.code.clone(),
            agency_id: service.agency_id.clone(),
            status: ApplicationStatus::Draft,
            number: None,
            form,
            document_ids,
            created_at: now,
            submitted_at: None,
            updated_at: now,
            expected_completion_date: None,
            rejection: None,
            result_document_ids: Vec::new(),
            history: vec![HistoryEntry { status: ApplicationStatus::Draft, at: now, actor: Actor::citizen(), comment: None }],
            version: 0,
        }
    }

    /// `PATCH`: replaces the draft's form and/or documents. `false` when that changes nothing.
    pub fn revise(&mut self, form: Option<Value>, document_ids: Option<Vec<String>>, now: DateTime<Utc>) -> Result<bool, ChangeError> {
        if self.status != ApplicationStatus::Draft {
            return Err(ChangeError::NotADraft(self.status));
        }
        let form = form.filter(|f| *f != self.form);
        let document_ids = document_ids.filter(|ids| *ids != self.document_ids);
        if form.is_none() && document_ids.is_none() {
            return Ok(false);
        }
        if let Some(form) = form {
            self.form = form;
        }
        if let Some(ids) = document_ids {
            self.document_ids = ids;
        }
        self.updated_at = now;
        Ok(true)
    }

    /// Checks a submission against the SPEC table, the catalogue, the account's current level
    /// (not the token's), the form schema and the attached documents (as found, in order).
    /// Passing spends nothing: the number is drawn only for a submission that will be written.
    pub fn check_submission<'a>(&self, catalogue: &'a Catalogue, level: Level, documents: &[Option<DocumentRef>]) -> Result<Submission<'a>, SubmitError> {
        self.may_become(ApplicationStatus::Submitted, ActorKind::Citizen)?;
        let service = catalogue.get(&self.service_code).ok_or(SubmitError::ServiceUnavailable)?;
        if rank(level) < rank(service.required_level) {
            return Err(SubmitError::LevelInsufficient(service.required_level));
        }
        let mut problems = catalogue.check_form(service, &self.form);
        let (unusable, types) = check_documents("/document_ids", documents);
        problems.extend(unusable);
        for required in &service.required_documents {
            if !types.contains(&required.as_str()) {
                problems.push(FieldError::new("/document_ids", "missing_document", format!("Приложите документ: {}", document_type_title(required))));
            }
        }
        if problems.is_empty() { Ok(Submission { service }) } else { Err(SubmitError::Incomplete(problems)) }
    }

    /// Submits with its `number`: the expected completion date follows from the service's
    /// processing days.
    pub fn submit(&mut self, submission: Submission<'_>, number: String, now: DateTime<Utc>) -> EventPayload {
        let service = submission.service;
        self.number = Some(number);
        self.submitted_at = Some(now);
        self.expected_completion_date = Some(now.date_naive() + chrono::Days::new(u64::from(service.processing_days)));
        self.move_to(ApplicationStatus::Submitted, Actor::citizen(), None, now);
        self.status_changed(&service.title, None)
    }

    /// The citizen withdraws, saying why or not.
    pub fn withdraw(&mut self, reason: Option<String>, service_title: &str, now: DateTime<Utc>) -> Result<EventPayload, ChangeError> {
        self.may_become(ApplicationStatus::Withdrawn, ActorKind::Citizen)?;
        self.move_to(ApplicationStatus::Withdrawn, Actor::citizen(), reason.clone(), now);
        Ok(self.status_changed(service_title, reason))
    }

    /// The citizen answers an information request: the documents (as found, in the order of
    /// `document_ids`) join the application, and it goes back `in_progress`.
    pub fn supplement(
        &mut self,
        document_ids: Vec<String>,
        documents: &[Option<DocumentRef>],
        comment: Option<String>,
        service_title: &str,
        now: DateTime<Utc>,
    ) -> Result<EventPayload, ChangeError> {
        self.may_become(ApplicationStatus::InProgress, ActorKind::Citizen)?;
        let (problems, _) = check_documents("/document_ids", documents);
        if !problems.is_empty() {
            return Err(ChangeError::Unprocessable(problems));
        }
        merge(&mut self.document_ids, document_ids);
        if self.document_ids.len() > MAX_DOCUMENTS {
            return Err(too_many_documents());
        }
        self.move_to(ApplicationStatus::InProgress, Actor::citizen(), comment.clone(), now);
        Ok(self.status_changed(service_title, comment))
    }

    /// An agency moves the application on (SPEC §4.4). Result documents must be agency-issued
    /// (`result`) documents of the application's citizen that were not rejected or deleted.
    pub fn agency_update(&mut self, update: AgencyUpdate, service_title: &str, now: DateTime<Utc>) -> Result<EventPayload, ChangeError> {
        let AgencyUpdate { to, actor, comment, rejection, expected_completion_date, results } = update;
        self.may_become(to, ActorKind::Agency)?;
        let problems: Vec<FieldError> = results
            .iter()
            .enumerate()
            .filter_map(|(index, (_, document))| result_problem(format!("/data/result_document_ids/{index}"), document.as_ref()))
            .collect();
        if !problems.is_empty() {
            return Err(ChangeError::Unprocessable(problems));
        }
        self.move_to(to, actor, comment.clone(), now);
        if rejection.is_some() {
            self.rejection = rejection;
        }
        if expected_completion_date.is_some() {
            self.expected_completion_date = expected_completion_date;
        }
        merge(&mut self.result_document_ids, results.into_iter().map(|(id, _)| id).collect());
        // A rejection's reason is what the citizen most needs to read in the notification.
        let note = comment.or_else(|| self.rejection.as_ref().filter(|_| to == ApplicationStatus::Rejected).map(|r| r.reason.clone()));
        Ok(self.status_changed(service_title, note))
    }

    /// A message in the thread, from the citizen or the agency; a draft has none.
    pub fn message(&self, message: &Message, service_title: &str) -> Result<EventPayload, ChangeError> {
        if !self.status.visible_to_agency() {
            return Err(ChangeError::NoThread);
        }
        const PREVIEW_CHARS: usize = 100;
        let mut preview: String = message.text.chars().take(PREVIEW_CHARS).collect();
        if message.text.chars().count() > PREVIEW_CHARS {
            preview.push('…');
        }
        Ok(EventPayload::ApplicationMessage {
            application_id: self.application_id.clone(),
            number: self.number.clone(),
            service_title: service_title.to_owned(),
            from_agency: message.author.kind == ActorKind::Agency,
            preview,
        })
    }

    fn may_become(&self, to: ApplicationStatus, actor: ActorKind) -> Result<(), Transition> {
        if can_transition(self.status, to, actor) { Ok(()) } else { Err(Transition { from: self.status, to }) }
    }

    /// Moves to `status`, recording who did it and why.
    fn move_to(&mut self, status: ApplicationStatus, actor: Actor, comment: Option<String>, now: DateTime<Utc>) {
        self.status = status;
        self.updated_at = now;
        self.history.push(HistoryEntry { status, at: now, actor, comment });
    }

    fn status_changed(&self, service_title: &str, comment: Option<String>) -> EventPayload {
        EventPayload::ApplicationStatusChanged {
            application_id: self.application_id.clone(),
            number: self.number.clone(),
            service_code: self.service_code.clone(),
            service_title: service_title.to_owned(),
            status: self.status,
            status_title: self.status.title().to_owned(),
            comment,
        }
    }
}

/// The registry agency's verdict on the citizen's pending verification request (SPEC §3.8):
/// `verified` raises `simplified` to `standard`; `rejected` leaves the level, but the citizen
/// hears of both through `identity.level_changed`.
pub fn registry_verdict(account: &mut Account, request_id: &str, verdict: Verdict) -> Result<EventPayload, LevelError> {
    let reason = if verdict == Verdict::Verified { LevelChangeReason::RegistryVerified } else { LevelChangeReason::RegistryRejected };
    let (previous_level, level) = account.apply_verdict(request_id, verdict).map_err(|error| match error {
        VerdictError::NoProfile => LevelError::NoProfile,
        VerdictError::Outdated => LevelError::Outdated,
        VerdictError::LevelConflict(from) => LevelError::Conflict { from, to: Level::Standard },
    })?;
    Ok(EventPayload::IdentityLevelChanged { level, previous_level, reason })
}

/// Identity confirmed in person or by a trusted channel: `standard` → `confirmed`.
pub fn confirm_identity(account: &mut Account) -> Result<EventPayload, LevelError> {
    if account.level != Level::Standard {
        return Err(LevelError::Conflict { from: account.level, to: Level::Confirmed });
    }
    account.level = Level::Confirmed;
    Ok(EventPayload::IdentityLevelChanged { level: Level::Confirmed, previous_level: Level::Standard, reason: LevelChangeReason::IdentityConfirmed })
}

/// Each document that is missing, someone else's or not `available`, as a field error at
/// `{pointer}/{index}`; also the types of the usable ones.
fn check_documents<'a>(pointer: &str, documents: &'a [Option<DocumentRef>]) -> (Vec<FieldError>, Vec<&'a str>) {
    let mut problems = Vec::new();
    let mut types = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        let field = format!("{pointer}/{index}");
        match document {
            None => problems.push(FieldError::new(field, "document_not_found", "Документ не найден")),
            Some(d) if d.status != DocumentStatus::Available => {
                problems.push(FieldError::new(field, "document_not_available", "Документ ещё не проверен или недоступен"))
            }
            Some(d) => types.push(d.doc_type.as_str()),
        }
    }
    (problems, types)
}

fn result_problem(field: String, document: Option<&DocumentRef>) -> Option<FieldError> {
    match document {
        None => Some(FieldError::new(field, "document_not_found", "Документ не найден у заявителя")),
        Some(d) if d.doc_type != "result" => Some(FieldError::new(field, "not_a_result", "Документ не является результатом услуги")),
        Some(d) if matches!(d.status, DocumentStatus::Rejected | DocumentStatus::Deleted) => {
            Some(FieldError::new(field, "document_not_available", "Документ отклонён проверкой или удалён"))
        }
        Some(_) => None,
    }
}

fn too_many_documents() -> ChangeError {
    ChangeError::Unprocessable(vec![FieldError::new("/document_ids", "too_many", "К заявлению приложено слишком много документов")])
}

/// Appends the ids not yet in `list`, in order.
fn merge(list: &mut Vec<String>, ids: Vec<String>) {
    for id in ids {
        if !list.contains(&id) {
            list.push(id);
        }
    }
}

fn rank(level: Level) -> u8 {
    match level {
        Level::Simplified => 0,
        Level::Standard => 1,
        Level::Confirmed => 2,
    }
}

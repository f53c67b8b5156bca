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
    /// The `updated_at` its agency's index lists it under (`store::save_ops` moves the entry on
    /// every write); `None` while a draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<DateTime<Utc>>,
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
            listed_at: None,
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

    /// An agency moves the application on (SPEC §4.4). `results` are the result documents
    /// named, each with what was found at the citizen's: they must be agency-issued (`result`)
    /// documents of the application's citizen that were not rejected or deleted.
    pub fn agency_update(
        &mut self,
        update: AgencyUpdate,
        results: Vec<(String, Option<DocumentRef>)>,
        service_title: &str,
        now: DateTime<Utc>,
    ) -> Result<EventPayload, ChangeError> {
        let AgencyUpdate { to, actor, comment, rejection, expected_completion_date } = update;
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;
    use shared::agencies::Registry;
    use shared::identity::{Profile, VerificationStatus};
    use shared::ports::Ticker;

    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::seed(&Registry::dev_seed().expect("agency seed")).expect("catalogue seed")
    }

    fn ticker() -> Ticker {
        Ticker::fixed(Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()).0
    }

    fn draft(catalogue: &Catalogue, code: &str, ticker: &Ticker) -> Application {
        let service = catalogue.get(code).expect("service");
        Application::new_draft(ticker.id(), "01JUSER0000000000000000000", service, service.form_example.clone(), Vec::new(), ticker.now())
    }

    fn document(doc_type: &str, status: DocumentStatus) -> Option<DocumentRef> {
        Some(DocumentRef {
            document_id: "D1".into(),
            owner_user_id: "U".into(),
            doc_type: doc_type.into(),
            status,
            file_name: None,
            content_type: None,
            size_bytes: None,
            sha256: None,
        })
    }

    fn submitted(catalogue: &Catalogue, ticker: &Ticker) -> Application {
        let mut app = draft(catalogue, "mfc-appointment", ticker);
        let submission = app.check_submission(catalogue, Level::Simplified, &[]).expect("complete");
        app.submit(submission, "2026-0000001".into(), ticker.now());
        app
    }

    fn account(level: Level) -> Account {
        let account = json!({
            "user_id": "01JUSER0000000000000000000", "phone": null, "email": null, "phone_confirmed": false, "email_confirmed": false,
            "level": level, "password_hash": "x", "failed_attempts": 0, "locked": false, "mfa": {"sms": false},
            "profile": Profile::example(), "created_at": "2026-01-01T00:00:00Z",
        });
        serde_json::from_value(account).expect("an account")
    }

    #[test]
    fn a_complete_draft_is_submitted_with_its_number_and_completion_date() {
        let (catalogue, ticker) = (catalogue(), ticker());
        let app = submitted(&catalogue, &ticker);
        assert_eq!((app.status, app.number.as_deref(), app.submitted_at), (ApplicationStatus::Submitted, Some("2026-0000001"), Some(ticker.now())));
        let days = catalogue.get("mfc-appointment").unwrap().processing_days;
        assert_eq!(app.expected_completion_date, Some(ticker.now().date_naive() + chrono::Days::new(u64::from(days))));
        assert_eq!(app.history.last().map(|h| (h.status, h.actor.kind)), Some((ApplicationStatus::Submitted, ActorKind::Citizen)));
        let again = app.check_submission(&catalogue, Level::Simplified, &[]).unwrap_err();
        assert_eq!(again, SubmitError::Transition(Transition { from: ApplicationStatus::Submitted, to: ApplicationStatus::Submitted }));
    }

    #[test]
    fn submission_checks_the_level_before_the_form_and_names_each_missing_document() {
        let (catalogue, ticker) = (catalogue(), ticker());
        let app = draft(&catalogue, "passport-replacement", &ticker);
        assert_eq!(app.check_submission(&catalogue, Level::Simplified, &[]).unwrap_err(), SubmitError::LevelInsufficient(Level::Standard));
        let Err(SubmitError::Incomplete(problems)) = app.check_submission(&catalogue, Level::Standard, &[]) else { panic!("incomplete expected") };
        assert!(problems.iter().all(|p| p.code == "missing_document") && !problems.is_empty(), "{problems:?}");
        let pending = [document("passport", DocumentStatus::PendingUpload), None];
        let Err(SubmitError::Incomplete(problems)) = app.check_submission(&catalogue, Level::Standard, &pending) else { panic!("incomplete expected") };
        let codes: Vec<(&str, &str)> = problems.iter().map(|p| (p.field.as_str(), p.code.as_str())).collect();
        assert_eq!(codes[..2], [("/document_ids/0", "document_not_available"), ("/document_ids/1", "document_not_found")]);
    }

    #[test]
    fn a_draft_is_revised_only_when_something_changes_and_is_not_withdrawn() {
        let (catalogue, ticker) = (catalogue(), ticker());
        let mut app = draft(&catalogue, "mfc-appointment", &ticker);
        assert_eq!(app.revise(Some(app.form.clone()), Some(Vec::new()), ticker.now()), Ok(false));
        assert_eq!(app.revise(None, Some(vec!["D1".into()]), ticker.now()), Ok(true));
        assert_eq!(app.document_ids, ["D1"]);
        assert!(matches!(app.withdraw(None, "МФЦ", ticker.now()), Err(ChangeError::Transition(_))));
        let mut app = submitted(&catalogue, &ticker);
        assert_eq!(app.revise(None, None, ticker.now()), Err(ChangeError::NotADraft(ApplicationStatus::Submitted)));
    }

    #[test]
    fn withdrawal_records_the_reason_and_says_so_in_the_event() {
        let (catalogue, ticker) = (catalogue(), ticker());
        let mut app = submitted(&catalogue, &ticker);
        let event = app.withdraw(Some("Передумал".into()), "Запись в МФЦ", ticker.now()).expect("withdrawn");
        let EventPayload::ApplicationStatusChanged { status, status_title, comment, number, .. } = event else { panic!("a status change") };
        assert_eq!(
            (status, status_title.as_str(), comment.as_deref(), number.as_deref()),
            (ApplicationStatus::Withdrawn, "Отозвано", Some("Передумал"), Some("2026-0000001"))
        );
        assert!(app.withdraw(None, "Запись в МФЦ", ticker.now()).is_err(), "withdrawal is final");
    }

    #[test]
    fn an_agency_moves_the_application_and_a_supplement_brings_it_back_in_progress() {
        let (catalogue, ticker) = (catalogue(), ticker());
        let mut app = submitted(&catalogue, &ticker);
        let agency = Actor { kind: ActorKind::Agency, name: Some("МФЦ".into()), position: None };
        let update = |to| AgencyUpdate { to, actor: agency.clone(), comment: None, rejection: None, expected_completion_date: None };
        assert!(matches!(app.agency_update(update(ApplicationStatus::Approved), Vec::new(), "t", ticker.now()), Err(ChangeError::Transition(_))));
        for to in [ApplicationStatus::Accepted, ApplicationStatus::InProgress, ApplicationStatus::InfoRequested] {
            app.agency_update(update(to), Vec::new(), "t", ticker.now()).expect("allowed");
        }
        let unusable = [document("passport", DocumentStatus::PendingUpload)];
        assert!(matches!(app.supplement(vec!["D1".into()], &unusable, None, "t", ticker.now()), Err(ChangeError::Unprocessable(_))));
        let usable = [document("passport", DocumentStatus::Available), document("passport", DocumentStatus::Available)];
        app.supplement(vec!["D1".into(), "D1".into()], &usable, Some("Вот".into()), "t", ticker.now()).expect("supplemented");
        assert_eq!((app.status, app.document_ids.as_slice()), (ApplicationStatus::InProgress, ["D1".to_owned()].as_slice()));

        let not_a_result = vec![("D2".to_owned(), document("passport", DocumentStatus::Available))];
        let Err(ChangeError::Unprocessable(problems)) = app.agency_update(update(ApplicationStatus::Approved), not_a_result, "t", ticker.now()) else {
            panic!("refused")
        };
        assert_eq!((problems[0].field.as_str(), problems[0].code.as_str()), ("/data/result_document_ids/0", "not_a_result"));
        let rejection = Some(Rejection { reason: "Нет окон".into(), recommendations: None });
        let event = app.agency_update(AgencyUpdate { rejection, ..update(ApplicationStatus::Rejected) }, Vec::new(), "t", ticker.now()).expect("rejected");
        assert!(matches!(event, EventPayload::ApplicationStatusChanged { comment: Some(ref c), .. } if c == "Нет окон"), "the reason is the note");
    }

    #[test]
    fn a_draft_has_no_thread_and_a_message_event_previews_the_text() {
        let (catalogue, ticker) = (catalogue(), ticker());
        let message = Message { message_id: ticker.id(), author: Actor::citizen(), text: "ы".repeat(150), at: ticker.now() };
        assert_eq!(draft(&catalogue, "mfc-appointment", &ticker).message(&message, "t"), Err(ChangeError::NoThread));
        let EventPayload::ApplicationMessage { preview, from_agency, .. } = submitted(&catalogue, &ticker).message(&message, "t").unwrap() else { panic!() };
        assert_eq!((preview.chars().count(), from_agency), (101, false));
    }

    #[test]
    fn registry_verdicts_and_confirmation_change_levels_with_typed_events() {
        let mut anna = account(Level::Simplified);
        assert_eq!(registry_verdict(&mut anna, "another", Verdict::Verified), Err(LevelError::Outdated));
        assert_eq!(confirm_identity(&mut anna), Err(LevelError::Conflict { from: Level::Simplified, to: Level::Confirmed }));
        let request = Profile::example().verification.request_id;
        let event = registry_verdict(&mut anna, &request, Verdict::Verified).expect("verified");
        assert_eq!(
            event,
            EventPayload::IdentityLevelChanged { level: Level::Standard, previous_level: Level::Simplified, reason: LevelChangeReason::RegistryVerified }
        );
        assert_eq!(anna.profile.as_ref().map(|p| p.verification.status), Some(VerificationStatus::Verified));
        let event = confirm_identity(&mut anna).expect("confirmed");
        assert_eq!(
            event,
            EventPayload::IdentityLevelChanged { level: Level::Confirmed, previous_level: Level::Standard, reason: LevelChangeReason::IdentityConfirmed }
        );

        let mut boris = account(Level::Simplified);
        let event = registry_verdict(&mut boris, &request, Verdict::Rejected { reason: None }).expect("recorded");
        assert_eq!(
            event,
            EventPayload::IdentityLevelChanged { level: Level::Simplified, previous_level: Level::Simplified, reason: LevelChangeReason::RegistryRejected }
        );
    }
}

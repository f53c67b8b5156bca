//! What an agency is told of its applications (SPEC §4.5 deliveries) and shown of them (§4.6
//! agency API): plain functions over the application as saved, the citizen's account and the
//! attached documents as read. The handlers stage the deliveries in the change's transaction
//! (`shared::deliveries::stage`) and answer the agency API with [`AgencyApplication`].

use serde::Serialize;
use serde_json::{Value, json};

use shared::identity::{Account, Profile};
use shared::records::DocumentRef;
use shared::vocabulary::{DeliveryType, Level};

use crate::body::ApplicationBody;
use crate::domain::{Application, Message};

/// An application as its agency sees it: the citizen's body of SPEC §4.3 (with `history`), the
/// applicant and the attached documents' metadata. `application.submitted` carries the same
/// without `history`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AgencyApplication {
    #[serde(flatten)]
    pub application: ApplicationBody,
    /// The citizen; `null` only once the account no longer exists.
    #[schema(required = true)]
    pub applicant: Option<Applicant>,
    /// The documents the citizen attached (`document_ids`), as far as they still exist.
    pub documents: Vec<AttachedDocument>,
}

/// The citizen behind an application, with confirmed contacts only.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Applicant {
    pub user_id: String,
    pub level: Level,
    /// The personal data of SPEC §3.8 with its verification, or `null` when none was given.
    #[schema(required = true)]
    pub profile: Option<Profile>,
    /// The phone (E.164) when confirmed, else `null`.
    #[schema(required = true, example = "+79161234567")]
    pub phone: Option<String>,
    /// The email when confirmed, else `null`.
    #[schema(required = true)]
    pub email: Option<String>,
}

impl Applicant {
    pub fn of(account: &Account) -> Self {
        Self {
            user_id: account.user_id.clone(),
            level: account.level,
            profile: account.profile.clone(),
            phone: account.phone.clone().filter(|_| account.phone_confirmed).map(String::from),
            email: account.email.clone().filter(|_| account.email_confirmed).map(String::from),
        }
    }
}

/// An attached document's metadata; the file itself is `GET …/documents/{document_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = AgencyAttachedDocument)]
pub struct AttachedDocument {
    pub document_id: String,
    /// `passport`, `snils`, … (SPEC §5).
    #[serde(rename = "type")]
    pub doc_type: String,
    #[schema(required = true)]
    pub file_name: Option<String>,
    #[schema(required = true)]
    pub content_type: Option<String>,
    #[schema(required = true)]
    pub size_bytes: Option<u64>,
    /// Hex SHA-256 of the verified content.
    #[schema(required = true, pattern = "^[0-9a-f]{64}$")]
    pub sha256: Option<String>,
}

impl From<&DocumentRef> for AttachedDocument {
    fn from(doc: &DocumentRef) -> Self {
        Self {
            document_id: doc.document_id.clone(),
            doc_type: doc.doc_type.clone(),
            file_name: doc.file_name.clone(),
            content_type: doc.content_type.clone(),
            size_bytes: doc.size_bytes,
            sha256: doc.sha256.clone(),
        }
    }
}

/// The documents found for an application's `document_ids` (in that order), skipping any that
/// no longer exist.
pub fn attached(found: &[Option<DocumentRef>]) -> Vec<AttachedDocument> {
    found.iter().flatten().map(AttachedDocument::from).collect()
}

/// The agency's view of `app` (SPEC §4.6 items).
pub fn agency_view(app: &Application, applicant: Option<Applicant>, documents: Vec<AttachedDocument>) -> AgencyApplication {
    AgencyApplication { application: ApplicationBody::from(app), applicant, documents }
}

/// A change the application's agency must hear of (SPEC §4.5), with what only the change knows;
/// the rest comes from the application as saved, so `data.version` is the version written.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    Submitted {
        applicant: Box<Applicant>,
        documents: Vec<AttachedDocument>,
    },
    Withdrawn {
        reason: Option<String>,
    },
    /// The documents this supplement added (as the citizen named them) and the comment.
    Supplemented {
        document_ids: Vec<String>,
        comment: Option<String>,
    },
    /// A citizen's message in the thread.
    Message(Message),
}

impl Notice {
    pub fn delivery_type(&self) -> DeliveryType {
        match self {
            Self::Submitted { .. } => DeliveryType::ApplicationSubmitted,
            Self::Withdrawn { .. } => DeliveryType::ApplicationWithdrawn,
            Self::Supplemented { .. } => DeliveryType::ApplicationSupplemented,
            Self::Message(_) => DeliveryType::ApplicationMessage,
        }
    }

    /// The delivery's `data` about `app` as saved.
    pub fn data(&self, app: &Application) -> Value {
        let mut data = match self {
            Self::Submitted { applicant, documents } => {
                let mut view = serde_json::to_value(agency_view(app, Some(Applicant::clone(applicant)), documents.clone())).unwrap_or(Value::Null);
                if let Some(fields) = view.as_object_mut() {
                    fields.remove("history");
                }
                view
            }
            Self::Withdrawn { reason } => json!({"application_id": app.application_id, "number": app.number, "reason": reason}),
            Self::Supplemented { document_ids, comment } => {
                json!({"application_id": app.application_id, "number": app.number, "document_ids": document_ids, "comment": comment})
            }
            Self::Message(message) => json!({
                "application_id": app.application_id, "number": app.number, "message_id": message.message_id,
                "text": message.text, "at": message.at,
            }),
        };
        if let Some(fields) = data.as_object_mut() {
            fields.insert("version".into(), json!(app.version));
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use shared::agencies::Registry;
    use shared::ports::Ticker;
    use shared::vocabulary::DocumentStatus;

    use super::*;
    use crate::catalogue::Catalogue;
    use crate::domain::Actor;

    fn ticker() -> Ticker {
        Ticker::fixed(Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()).0
    }

    fn submitted(ticker: &Ticker) -> Application {
        let catalogue = Catalogue::seed(&Registry::dev_seed().expect("agency seed")).expect("catalogue seed");
        let service = catalogue.get("mfc-appointment").expect("service");
        let form = service.form_example.clone();
        let mut app = Application::new_draft(ticker.id(), "01JUSER0000000000000000000", service, form, vec!["D1".into(), "D2".into()], ticker.now());
        let submission = app.check_submission(&catalogue, Level::Simplified, &[]).expect("complete");
        app.submit(submission, "2026-0000001".into(), ticker.now());
        app.version = 2;
        app
    }

    fn account(phone_confirmed: bool, email_confirmed: bool) -> Account {
        serde_json::from_value(json!({
            "user_id": "01JUSER0000000000000000000", "phone": "+79161234567", "email": "anna@example.ru",
            "phone_confirmed": phone_confirmed, "email_confirmed": email_confirmed, "level": "standard", "password_hash": "x",
            "failed_attempts": 0, "locked": false, "mfa": {"sms": false}, "profile": Profile::example(), "created_at": "2026-01-01T00:00:00Z",
        }))
        .expect("an account")
    }

    fn document(id: &str) -> DocumentRef {
        DocumentRef {
            document_id: id.into(),
            owner_user_id: "01JUSER0000000000000000000".into(),
            doc_type: "passport".into(),
            status: DocumentStatus::Available,
            file_name: Some("паспорт.pdf".into()),
            content_type: Some("application/pdf".into()),
            size_bytes: Some(1234),
            sha256: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn applicants_show_only_confirmed_contacts() {
        let both = Applicant::of(&account(true, true));
        assert_eq!((both.phone.as_deref(), both.email.as_deref(), both.level), (Some("+79161234567"), Some("anna@example.ru"), Level::Standard));
        let neither = Applicant::of(&account(false, false));
        assert_eq!((neither.phone, neither.email), (None, None));
        assert_eq!(neither.profile, Some(Profile::example()));
    }

    #[test]
    fn submitted_is_the_application_without_history_plus_applicant_and_documents() {
        let ticker = ticker();
        let app = submitted(&ticker);
        let notice = Notice::Submitted { applicant: Box::new(Applicant::of(&account(false, true))), documents: attached(&[Some(document("D1")), None]) };
        assert_eq!(notice.delivery_type(), DeliveryType::ApplicationSubmitted);
        let data = notice.data(&app);
        let citizen_view = serde_json::to_value(ApplicationBody::from(&app)).unwrap();
        for (field, value) in citizen_view.as_object().unwrap() {
            if field == "history" {
                assert!(data.get("history").is_none(), "no history in the delivery");
            } else {
                assert_eq!(&data[field], value, "{field} as the citizen sees it");
            }
        }
        assert_eq!((data["status"].as_str(), data["version"].as_u64(), data["number"].as_str()), (Some("submitted"), Some(2), Some("2026-0000001")));
        assert_eq!(data["applicant"]["user_id"], "01JUSER0000000000000000000");
        assert_eq!((data["applicant"]["phone"].clone(), data["applicant"]["email"].clone()), (Value::Null, json!("anna@example.ru")));
        assert_eq!(data["applicant"]["profile"]["snils"], serde_json::to_value(Profile::example().snils).unwrap());
        assert_eq!(
            data["documents"],
            json!([{"document_id": "D1", "type": "passport", "file_name": "паспорт.pdf", "content_type": "application/pdf", "size_bytes": 1234, "sha256": "ab".repeat(32)}]),
            "documents that no longer exist are left out"
        );
        let listed = serde_json::to_value(agency_view(&app, None, Vec::new())).unwrap();
        assert_eq!(listed["history"].as_array().map(Vec::len), Some(2), "the agency API keeps the history");
    }

    #[test]
    fn withdrawn_supplemented_and_message_carry_exactly_their_fields_and_the_version() {
        let ticker = ticker();
        let app = submitted(&ticker);
        let withdrawn = Notice::Withdrawn { reason: Some("Передумал".into()) };
        assert_eq!(withdrawn.delivery_type(), DeliveryType::ApplicationWithdrawn);
        assert_eq!(withdrawn.data(&app), json!({"application_id": app.application_id, "number": "2026-0000001", "reason": "Передумал", "version": 2}));
        assert_eq!(Notice::Withdrawn { reason: None }.data(&app)["reason"], Value::Null);

        let supplemented = Notice::Supplemented { document_ids: vec!["D3".into()], comment: None };
        assert_eq!(supplemented.delivery_type(), DeliveryType::ApplicationSupplemented);
        assert_eq!(
            supplemented.data(&app),
            json!({"application_id": app.application_id, "number": "2026-0000001", "document_ids": ["D3"], "comment": null, "version": 2})
        );

        let message = Message { message_id: ticker.id(), author: Actor::citizen(), text: "Когда будет готово?".into(), at: ticker.now() };
        let notice = Notice::Message(message.clone());
        assert_eq!(notice.delivery_type(), DeliveryType::ApplicationMessage);
        assert_eq!(
            notice.data(&app),
            json!({"application_id": app.application_id, "number": "2026-0000001", "message_id": message.message_id,
                "text": "Когда будет готово?", "at": "2026-03-01T10:00:00Z", "version": 2})
        );
    }
}

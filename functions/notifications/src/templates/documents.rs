//! Document events: the verdict of verification on an uploaded file (SPEC §5).

use shared::vocabulary::{DocumentStatus, RejectionReason};

use super::{Context, MAX_EMAIL_TITLE_UNITS, MAX_INBOX_NAME_UNITS, Messages, clean, entry, fit_sms, letter, safe_id};

const SECTION: &str = "«Документы»";

/// Only `available` and `rejected` are verdicts; other statuses tell the citizen nothing.
pub(super) fn verdict(context: &Context, document_id: &str, file_name: &str, status: DocumentStatus, reason: Option<RejectionReason>) -> Messages {
    let (email_file, inbox_file) = (clean(file_name, MAX_EMAIL_TITLE_UNITS), clean(file_name, MAX_INBOX_NAME_UNITS));
    let (when, cabinet) = (context.when(), context.open_in_cabinet(link(document_id), SECTION));
    match status {
        DocumentStatus::Available => Messages {
            sms: Some(fit_sms(file_name, 1, |file| format!("Госуслуги: документ «{file}» проверен и доступен в личном кабинете."))),
            email: letter("Документ проверен", &format!("{when} документ «{email_file}» прошёл проверку и доступен в личном кабинете.\n\n{cabinet}")),
            inbox: entry(format!("Документ «{inbox_file}» проверен"), "Документ прошёл проверку и доступен в личном кабинете.", link(document_id)),
        },
        DocumentStatus::Rejected => {
            // A verdict without a reason still says the file failed.
            let reason = reason.map_or("файл не прошёл проверку", RejectionReason::title);
            Messages {
                sms: Some(fit_sms(file_name, 1, |file| format!("Госуслуги: документ «{file}» отклонён — {reason}. Загрузите его заново."))),
                email: letter(
                    "Документ отклонён",
                    &format!("{when} документ «{email_file}» не прошёл проверку: {reason}.\n\nЗагрузите файл заново.\n\n{cabinet}"),
                ),
                inbox: entry(
                    format!("Документ «{inbox_file}» отклонён"),
                    format!("Документ не прошёл проверку: {reason}. Загрузите файл заново."),
                    link(document_id),
                ),
            }
        }
        DocumentStatus::PendingUpload | DocumentStatus::Deleted => Messages::default(),
    }
}

fn link(document_id: &str) -> Option<String> {
    safe_id(document_id).map(|id| format!("/documents/{id}"))
}

#[cfg(test)]
pub(super) mod tests {
    use shared::events::{Event, EventPayload};

    use super::super::render;
    use super::super::testing::{event, inbox, mail, sms};
    use super::*;

    pub fn verdict(file_name: &str, status: DocumentStatus, rejection_reason: Option<RejectionReason>) -> EventPayload {
        EventPayload::DocumentVerdict { document_id: "01JDOC0000000000000000000D".to_owned(), file_name: file_name.to_owned(), status, rejection_reason }
    }

    fn rejected(file_name: &str, reason: RejectionReason) -> Event {
        event(verdict(file_name, DocumentStatus::Rejected, Some(reason)))
    }

    #[test]
    fn a_rejected_document_explains_why_in_russian() {
        let rejected_pdf = rejected("паспорт.pdf", RejectionReason::ContentMismatch);
        assert_eq!(sms(&rejected_pdf), "Госуслуги: документ «паспорт.pdf» отклонён — формат файла не соответствует заявленному. Загрузите его заново.");
        assert_eq!(inbox(&rejected_pdf).title, "Документ «паспорт.pdf» отклонён");
        assert!(mail(&rejected_pdf).body.contains("не прошёл проверку: формат файла не соответствует заявленному."));
        assert!(sms(&rejected("a.pdf", RejectionReason::TooLarge)).contains("файл слишком большой"));
        assert!(sms(&rejected("a.pdf", RejectionReason::Empty)).contains("файл пустой"));
        assert!(sms(&event(verdict("a.pdf", DocumentStatus::Rejected, None))).contains("файл не прошёл проверку"));
    }

    #[test]
    fn an_accepted_document_links_to_it_and_other_statuses_say_nothing() {
        let accepted = event(verdict("снилс.jpg", DocumentStatus::Available, None));
        assert_eq!(inbox(&accepted).link.as_deref(), Some("/documents/01JDOC0000000000000000000D"));
        assert_eq!(render(&event(verdict("a.pdf", DocumentStatus::PendingUpload, None)), None), Messages::default());
    }
}

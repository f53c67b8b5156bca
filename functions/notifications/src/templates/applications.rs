//! Application events: a status change (SPEC §4.2 titles) and a message from the agency.

use shared::vocabulary::ApplicationStatus;

use super::{
    Context, MAX_EMAIL_TEXT_UNITS, MAX_EMAIL_TITLE_UNITS, MAX_NUMBER_UNITS, MIN_SMS_TAIL, Messages, clean, entry, fit_sms, letter, safe_id, with_tail,
};

const SECTION: &str = "«Заявления»";

pub(super) fn status_changed(
    context: &Context,
    application_id: &str,
    number: Option<&str>,
    service_title: &str,
    status: ApplicationStatus,
    comment: Option<&str>,
) -> Messages {
    let heading = status_heading(number, status);
    let service = clean(service_title, MAX_EMAIL_TITLE_UNITS);
    let comment = comment.map(|c| clean(c, MAX_EMAIL_TEXT_UNITS)).filter(|c| !c.is_empty());

    let mut lines = vec![format!("Услуга: {service}")];
    let number = clean(number.unwrap_or_default(), MAX_NUMBER_UNITS);
    if !number.is_empty() {
        lines.push(format!("Номер заявления: {number}"));
    }
    lines.push(format!("Новый статус: {}", status.title()));
    if let Some(comment) = &comment {
        lines.push(format!("Комментарий: {comment}"));
    }
    let email_text =
        format!("{} изменился статус вашего заявления.\n\n{}\n\n{}", context.when(), lines.join("\n"), context.open_in_cabinet(link(application_id), SECTION));

    let mut inbox_body =
        if service.is_empty() { "Статус заявления изменился.".to_owned() } else { format!("Услуга: {service}.") };
    if let Some(comment) = &comment {
        inbox_body.push_str(&format!(" Комментарий: {comment}"));
    }
    Messages {
        sms: Some(fit_sms(service_title, MIN_SMS_TAIL, |service| with_tail(&heading, service))),
        email: letter(heading.clone(), &email_text),
        inbox: entry(heading, inbox_body, link(application_id)),
    }
}

/// Only the agency's messages are announced: the citizen knows what they wrote themselves.
pub(super) fn message(context: &Context, application_id: &str, number: Option<&str>, service_title: &str, from_agency: bool, preview: &str) -> Messages {
    if !from_agency {
        return Messages::default();
    }
    let (service, preview) = (clean(service_title, MAX_EMAIL_TITLE_UNITS), clean(preview, MAX_EMAIL_TEXT_UNITS));
    let sms = match clean(number.unwrap_or_default(), MAX_NUMBER_UNITS) {
        n if n.is_empty() => "Госуслуги: новое сообщение от ведомства по вашему заявлению. Прочитайте его в личном кабинете.".to_owned(),
        n => format!("Госуслуги: новое сообщение от ведомства по заявлению № {n}. Прочитайте его в личном кабинете."),
    };
    let email_text = format!(
        "{} ведомство прислало сообщение по вашему заявлению.\n\nУслуга: {service}\nСообщение: «{preview}»\n\n{}",
        context.when(),
        context.open_in_cabinet(link(application_id), SECTION),
    );
    let heading = message_heading(number);
    Messages { sms: Some(sms), email: letter(heading.clone(), &email_text), inbox: entry(heading, format!("{service}: «{preview}»"), link(application_id)) }
}

/// `Заявление № {number}: статус «{title}»` (SPEC §6), or without the number before one is assigned.
fn status_heading(number: Option<&str>, status: ApplicationStatus) -> String {
    let title = status.title();
    match clean(number.unwrap_or_default(), MAX_NUMBER_UNITS) {
        number if number.is_empty() => format!("Ваше заявление: статус «{title}»"),
        number => format!("Заявление № {number}: статус «{title}»"),
    }
}

fn message_heading(number: Option<&str>) -> String {
    match clean(number.unwrap_or_default(), MAX_NUMBER_UNITS) {
        number if number.is_empty() => "Новое сообщение по вашему заявлению".to_owned(),
        number => format!("Новое сообщение по заявлению № {number}"),
    }
}

fn link(application_id: &str) -> Option<String> {
    safe_id(application_id).map(|id| format!("/applications/{id}"))
}

#[cfg(test)]
pub(super) mod tests {
    use shared::events::{Event, EventPayload};

    use super::super::testing::{event, inbox, mail, sms};
    use super::super::{MAX_SMS_SEGMENTS, render, sms_segments};
    use super::*;

    pub fn status_changed(number: Option<&str>, service_title: &str, status: ApplicationStatus, comment: Option<&str>) -> EventPayload {
        EventPayload::ApplicationStatusChanged {
            application_id: "01JAPP0000000000000000000A".to_owned(),
            number: number.map(str::to_owned),
            service_code: "passport_replacement".to_owned(),
            service_title: service_title.to_owned(),
            status,
            status_title: status.title().to_owned(),
            comment: comment.map(str::to_owned),
        }
    }

    pub fn message(number: Option<&str>, service_title: &str, from_agency: bool, preview: &str) -> EventPayload {
        EventPayload::ApplicationMessage {
            application_id: "01JAPP".to_owned(),
            number: number.map(str::to_owned),
            service_title: service_title.to_owned(),
            from_agency,
            preview: preview.to_owned(),
        }
    }

    fn changed(number: Option<&str>, service_title: &str, status: ApplicationStatus) -> Event {
        event(status_changed(number, service_title, status, None))
    }

    #[test]
    fn status_change_sms_follows_the_spec_and_adds_the_service_when_it_fits() {
        assert_eq!(
            sms(&changed(Some("0042-2025"), "Справка о доходах 2-НДФЛ", ApplicationStatus::Approved)),
            "Заявление № 0042-2025: статус «Одобрено». Справка о доходах 2-НДФЛ"
        );
    }

    #[test]
    fn a_long_service_title_is_shortened_on_a_character_boundary() {
        let title = "Замена паспорта гражданина Российской Федерации по достижении 20 и 45 лет, при изменении фамилии, имени, отчества или обнаружении ошибки";
        let text = sms(&changed(Some("0042-2025"), title, ApplicationStatus::InProgress));
        assert!(text.starts_with("Заявление № 0042-2025: статус «В работе». Замена паспорта"), "{text}");
        assert!(text.ends_with('…'), "{text}");
        assert_eq!(sms_segments(&text), 2);
    }

    #[test]
    fn a_status_sms_without_room_for_a_stub_of_the_title_leaves_it_out() {
        let text = sms(&changed(Some(&"9".repeat(200)), &"Ж".repeat(1000), ApplicationStatus::InfoRequested));
        assert!(text.starts_with("Заявление № 9999"), "{text}");
        assert!(text.contains("статус «Ожидание дополнений»"), "{text}");
        assert!(sms_segments(&text) <= MAX_SMS_SEGMENTS);
    }

    #[test]
    fn status_titles_come_from_the_spec_whatever_the_producer_sent() {
        let mut event = changed(Some("1"), "Услуга", ApplicationStatus::Rejected);
        if let EventPayload::ApplicationStatusChanged { status_title, .. } = &mut event.payload {
            *status_title = "Rejected".to_owned();
        }
        assert!(sms(&event).contains("статус «Отклонено»"));
    }

    #[test]
    fn status_change_email_and_inbox_carry_the_comment_and_the_link() {
        let rejected = event(status_changed(Some("0042-2025"), "Регистрация транспортного средства", ApplicationStatus::Rejected, Some("Не приложен ПТС")));
        let message = render(&rejected, Some("https://portal.example/")).email.unwrap();
        assert_eq!(message.subject, "Заявление № 0042-2025: статус «Отклонено»");
        assert!(message.body.contains("Новый статус: Отклонено\nКомментарий: Не приложен ПТС"), "{}", message.body);
        assert!(message.body.contains("Подробнее: https://portal.example/applications/01JAPP0000000000000000000A"), "{}", message.body);
        assert!(mail(&rejected).body.contains("раздел «Заявления»"));
        let entry = inbox(&rejected);
        assert_eq!(entry.title, "Заявление № 0042-2025: статус «Отклонено»");
        assert_eq!(entry.body, "Услуга: Регистрация транспортного средства. Комментарий: Не приложен ПТС");
        assert_eq!(entry.link.as_deref(), Some("/applications/01JAPP0000000000000000000A"));
    }

    #[test]
    fn a_draft_without_a_number_is_named_without_one() {
        assert_eq!(sms(&changed(None, "Услуга", ApplicationStatus::Submitted)), "Ваше заявление: статус «Отправлено». Услуга");
    }

    #[test]
    fn a_message_from_the_agency_is_announced_and_the_citizens_own_is_not() {
        let message = |from_agency| event(message(Some("77"), "Оформление полиса ОМС", from_agency, "Приложите, пожалуйста, скан СНИЛС"));
        assert_eq!(sms(&message(true)), "Госуслуги: новое сообщение от ведомства по заявлению № 77. Прочитайте его в личном кабинете.");
        let entry = inbox(&message(true));
        assert_eq!(entry.title, "Новое сообщение по заявлению № 77");
        assert_eq!(entry.body, "Оформление полиса ОМС: «Приложите, пожалуйста, скан СНИЛС»");
        assert_eq!(render(&message(false), None), Messages::default());
    }

    #[test]
    fn an_id_that_is_not_a_plain_token_gets_no_link() {
        let mut event = changed(Some("1"), "Услуга", ApplicationStatus::Approved);
        if let EventPayload::ApplicationStatusChanged { application_id, .. } = &mut event.payload {
            *application_id = "../../admin".to_owned();
        }
        assert_eq!(inbox(&event).link, None);
        assert!(render(&event, Some("https://portal.example")).email.unwrap().body.contains("раздел «Заявления»"));
    }
}

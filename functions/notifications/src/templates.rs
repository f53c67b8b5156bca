//! Russian texts of every message: per event, its SMS, its email and its inbox entry, each
//! `None` when the event does not speak through that channel (a one-time code has no inbox
//! entry; a "sent for verification" note is inbox only).
//!
//! Every SMS must fit in `MAX_SMS_SEGMENTS` (Cyrillic makes it UCS-2: at most 134 characters):
//! values from events are cleaned and clipped on character boundaries, and an optional tail
//! (a service title, a reason) is shortened or left out until the text fits. A test renders
//! each template with its longest possible values. Email bodies are plain text. Texts carry no
//! number other than the values shown, so a one-time code is the only six-digit number in its
//! message.

use std::net::IpAddr;

use chrono::{DateTime, FixedOffset, Utc};
use shared::events::{Event, EventPayload, OtpPurpose};

use crate::sms::{MAX_SMS_SEGMENTS, sms_segments};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailMessage {
    pub subject: String,
    pub body: String,
}

/// An entry of the citizen's inbox (`GET /v1/me/notifications`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxMessage {
    pub title: String,
    pub body: String,
    /// A path of the citizen's cabinet, e.g. `/applications/{id}`.
    pub link: Option<String>,
}

/// The SMS text of `event`, if it has one.
pub fn sms_text(event: &Event) -> Option<String> {
    Some(match &event.payload {
        EventPayload::OtpIssued { code, purpose, expires_at, .. } => {
            let validity = validity(event.at, *expires_at);
            match purpose {
                OtpPurpose::Registration => format!("Код подтверждения для регистрации на Госуслугах: {code}. Никому не сообщайте его. Действует {validity}."),
                OtpPurpose::Login => format!("Код для входа на Госуслуги: {code}. Никому не сообщайте его, даже сотрудникам Госуслуг. Действует {validity}."),
                OtpPurpose::Recovery => format!("Код для восстановления доступа к Госуслугам: {code}. Никому не сообщайте его. Действует {validity}."),
            }
        }
        EventPayload::RegistrationAttempted { .. } => {
            "Кто-то пытается зарегистрировать учётную запись на ваш номер. Если это вы — восстановите доступ. Если нет — проигнорируйте сообщение.".to_owned()
        }
        EventPayload::AccountLocked { .. } => {
            "Госуслуги: вход в учётную запись заблокирован из-за неверных попыток входа. Чтобы разблокировать, восстановите доступ.".to_owned()
        }
        EventPayload::PasswordChanged { .. } => {
            "Госуслуги: пароль изменён, остальные сеансы завершены. Если это были не вы, срочно восстановите доступ.".to_owned()
        }
        EventPayload::NewLogin { device_type, ip, .. } => format!(
            "Госуслуги: вход в {} МСК ({}, IP {}). Если это не вы, срочно смените пароль.",
            moscow(event.at).format("%H:%M"),
            device_name(device_type),
            display_ip(ip),
        ),
        EventPayload::MfaChanged { method, enabled, .. } => {
            format!("Госуслуги: {}. Если это были не вы, срочно восстановите доступ.", mfa_change(method, *enabled))
        }
        EventPayload::ApplicationStatusChanged { number, status, status_title, service_title, .. } => {
            let heading = status_heading(number.as_deref(), status, status_title);
            fit_sms(service_title, MIN_SMS_TAIL, |service| with_tail(&heading, service))
        }
        EventPayload::ApplicationMessage { number, from_agency, .. } => {
            if !from_agency {
                return None;
            }
            match clean(number.as_deref().unwrap_or_default(), MAX_NUMBER_UNITS) {
                n if n.is_empty() => "Госуслуги: новое сообщение от ведомства по вашему заявлению. Прочитайте его в личном кабинете.".to_owned(),
                n => format!("Госуслуги: новое сообщение от ведомства по заявлению № {n}. Прочитайте его в личном кабинете."),
            }
        }
        EventPayload::IdentityVerificationRequested { .. } | EventPayload::RecoveryUnmatched { .. } => return None,
        EventPayload::IdentityLevelChanged { level, reason, .. } => {
            let heading = format!("Госуслуги. {}", level_heading(level));
            fit_sms(level_reason(reason).unwrap_or_default(), MIN_SMS_TAIL, |reason| with_tail(&heading, reason))
        }
        EventPayload::DocumentVerdict { file_name, status, rejection_reason, .. } => match verdict(status)? {
            Verdict::Available => fit_sms(file_name, 1, |file| format!("Госуслуги: документ «{file}» проверен и доступен в личном кабинете.")),
            Verdict::Rejected => {
                let reason = rejection_text(rejection_reason.as_deref());
                fit_sms(file_name, 1, |file| format!("Госуслуги: документ «{file}» отклонён — {reason}. Загрузите его заново."))
            }
        },
    })
}

/// The email (subject and plain-text body) of `event`, if it has one. `portal` is the public
/// address of the citizen's cabinet; without it the email names the section instead of a link.
pub fn email(event: &Event, portal: Option<&str>) -> Option<EmailMessage> {
    let when = moscow(event.at).format("%d.%m.%Y в %H:%M (МСК)");
    let (subject, text) = match &event.payload {
        EventPayload::OtpIssued { code, purpose, expires_at, .. } => {
            let validity = validity(event.at, *expires_at);
            let (subject, lead, if_not_you) = match purpose {
                OtpPurpose::Registration => (
                    "Код подтверждения регистрации на Госуслугах",
                    "Код подтверждения для регистрации на Госуслугах",
                    "Если вы не регистрировались, просто проигнорируйте это письмо.",
                ),
                OtpPurpose::Login => {
                    ("Код для входа на Госуслуги", "Код для входа на Госуслуги", "Если вы не входили на портал, значит, кто-то знает ваш пароль: смените его.")
                }
                OtpPurpose::Recovery => (
                    "Код для восстановления доступа к Госуслугам",
                    "Код для восстановления доступа к Госуслугам",
                    "Если вы не восстанавливали доступ, проигнорируйте это письмо: пароль останется прежним.",
                ),
            };
            (
                subject.to_owned(),
                format!("{lead}: {code}\n\nКод действует {validity}. Никому не сообщайте его — сотрудники Госуслуг никогда его не спрашивают.\n\n{if_not_you}"),
            )
        }
        EventPayload::RegistrationAttempted { .. } => (
            "Попытка регистрации с вашим адресом почты".to_owned(),
            format!(
                "{when} кто-то пытался зарегистрировать на Госуслугах новую учётную запись с этим адресом электронной почты, \
                 но он уже привязан к вашей учётной записи.\n\nЕсли это были вы и вы не помните пароль — восстановите доступ на странице входа. \
                 Если нет — просто проигнорируйте это письмо."
            ),
        ),
        EventPayload::AccountLocked { .. } => (
            "Учётная запись заблокирована".to_owned(),
            format!(
                "{when} вход в вашу учётную запись на Госуслугах заблокирован из-за нескольких неверных попыток входа подряд.\n\n\
                 Чтобы разблокировать учётную запись, восстановите доступ на странице входа и задайте новый пароль. \
                 Если пароль вводили не вы, это обязательно: кто-то пытается подобрать его."
            ),
        ),
        EventPayload::PasswordChanged { .. } => (
            "Пароль изменён".to_owned(),
            format!(
                "{when} пароль от вашей учётной записи на Госуслугах изменён, а все остальные сеансы завершены.\n\n\
                 Если это были не вы, срочно восстановите доступ на странице входа."
            ),
        ),
        EventPayload::NewLogin { device_type, ip, .. } => (
            "Вход в учётную запись".to_owned(),
            format!(
                "{when} выполнен вход в вашу учётную запись на Госуслугах.\n\nУстройство: {}\nIP-адрес: {}\n\n\
                 Если это были не вы, срочно смените пароль и завершите чужие сеансы в настройках безопасности.",
                device_name(device_type),
                display_ip(ip),
            ),
        ),
        EventPayload::MfaChanged { method, enabled, .. } => (
            "Изменены настройки подтверждения входа".to_owned(),
            format!(
                "{when} в вашей учётной записи на Госуслугах {}.\n\nЕсли это были не вы, срочно восстановите доступ на странице входа.",
                mfa_change(method, *enabled),
            ),
        ),
        EventPayload::ApplicationStatusChanged { application_id, number, service_title, status, status_title, comment, .. } => {
            let number = clean(number.as_deref().unwrap_or_default(), MAX_NUMBER_UNITS);
            let mut lines = vec![format!("Услуга: {}", clean(service_title, MAX_EMAIL_TITLE_UNITS))];
            if !number.is_empty() {
                lines.push(format!("Номер заявления: {number}"));
            }
            lines.push(format!("Новый статус: {}", status_name(status, status_title)));
            if let Some(comment) = comment.as_deref().map(|c| clean(c, MAX_EMAIL_TEXT_UNITS)).filter(|c| !c.is_empty()) {
                lines.push(format!("Комментарий: {comment}"));
            }
            (
                status_heading(Some(&number), status, status_title),
                format!(
                    "{when} изменился статус вашего заявления.\n\n{}\n\n{}",
                    lines.join("\n"),
                    open_in_cabinet(portal, application_link(application_id), "«Заявления»")
                ),
            )
        }
        EventPayload::ApplicationMessage { application_id, number, service_title, from_agency, preview } => {
            if !from_agency {
                return None;
            }
            (
                message_heading(number.as_deref()),
                format!(
                    "{when} ведомство прислало сообщение по вашему заявлению.\n\nУслуга: {}\nСообщение: «{}»\n\n{}",
                    clean(service_title, MAX_EMAIL_TITLE_UNITS),
                    clean(preview, MAX_EMAIL_TEXT_UNITS),
                    open_in_cabinet(portal, application_link(application_id), "«Заявления»"),
                ),
            )
        }
        EventPayload::IdentityVerificationRequested { .. } | EventPayload::RecoveryUnmatched { .. } => return None,
        EventPayload::IdentityLevelChanged { level, previous_level, reason } => {
            let mut text = match (level_title(previous_level), level_title(level)) {
                (Some(before), Some(after)) => format!("{when} изменился уровень вашей учётной записи на Госуслугах: был «{before}», теперь «{after}»."),
                _ => format!("{when} изменился уровень вашей учётной записи на Госуслугах."),
            };
            if let Some(reason) = level_reason(reason) {
                text.push_str("\n\n");
                text.push_str(reason);
            }
            text.push_str("\n\n");
            text.push_str(&open_in_cabinet(portal, Some(PROFILE_LINK.to_owned()), "«Профиль»"));
            (level_heading(level), text)
        }
        EventPayload::DocumentVerdict { document_id, file_name, status, rejection_reason } => {
            let file = clean(file_name, MAX_EMAIL_TITLE_UNITS);
            let link = document_link(document_id);
            match verdict(status)? {
                Verdict::Available => (
                    "Документ проверен".to_owned(),
                    format!("{when} документ «{file}» прошёл проверку и доступен в личном кабинете.\n\n{}", open_in_cabinet(portal, link, "«Документы»")),
                ),
                Verdict::Rejected => (
                    "Документ отклонён".to_owned(),
                    format!(
                        "{when} документ «{file}» не прошёл проверку: {}.\n\nЗагрузите файл заново.\n\n{}",
                        rejection_text(rejection_reason.as_deref()),
                        open_in_cabinet(portal, link, "«Документы»"),
                    ),
                ),
            }
        }
    };
    Some(EmailMessage { subject, body: format!("Здравствуйте!\n\n{text}\n\n{FOOTER}") })
}

/// The inbox entry of `event`, if it has one (codes and messages to a bare contact have none).
pub fn inbox(event: &Event) -> Option<InboxMessage> {
    let entry = |title: String, body: String, link: Option<String>| Some(InboxMessage { title, body, link });
    match &event.payload {
        EventPayload::OtpIssued { .. } | EventPayload::RegistrationAttempted { .. } | EventPayload::RecoveryUnmatched { .. } => None,
        EventPayload::AccountLocked { .. } => entry(
            "Учётная запись заблокирована".to_owned(),
            "Вход заблокирован из-за нескольких неверных попыток входа подряд. Чтобы разблокировать учётную запись, восстановите доступ и задайте новый пароль.".to_owned(),
            Some(SECURITY_LINK.to_owned()),
        ),
        EventPayload::PasswordChanged { .. } => entry(
            "Пароль изменён".to_owned(),
            "Пароль от учётной записи изменён, остальные сеансы завершены. Если это были не вы, срочно восстановите доступ.".to_owned(),
            Some(SECURITY_LINK.to_owned()),
        ),
        EventPayload::NewLogin { device_type, ip, .. } => entry(
            "Вход в учётную запись".to_owned(),
            format!(
                "Выполнен вход: {}, IP-адрес {}. Если это были не вы, смените пароль и завершите чужие сеансы.",
                device_name(device_type),
                display_ip(ip)
            ),
            Some(SECURITY_LINK.to_owned()),
        ),
        EventPayload::MfaChanged { method, enabled, .. } => entry(
            "Изменены настройки подтверждения входа".to_owned(),
            format!("В учётной записи {}. Если это были не вы, срочно восстановите доступ.", mfa_change(method, *enabled)),
            Some(SECURITY_LINK.to_owned()),
        ),
        EventPayload::ApplicationStatusChanged { application_id, number, service_title, status, status_title, comment, .. } => {
            let mut body = match clean(service_title, MAX_EMAIL_TITLE_UNITS) {
                service if service.is_empty() => "Статус заявления изменился.".to_owned(),
                service => format!("Услуга: {service}."),
            };
            if let Some(comment) = comment.as_deref().map(|c| clean(c, MAX_EMAIL_TEXT_UNITS)).filter(|c| !c.is_empty()) {
                body.push_str(&format!(" Комментарий: {comment}"));
            }
            entry(status_heading(number.as_deref(), status, status_title), body, application_link(application_id))
        }
        EventPayload::ApplicationMessage { application_id, number, service_title, from_agency, preview } => {
            if !from_agency {
                return None;
            }
            entry(
                message_heading(number.as_deref()),
                format!("{}: «{}»", clean(service_title, MAX_EMAIL_TITLE_UNITS), clean(preview, MAX_EMAIL_TEXT_UNITS)),
                application_link(application_id),
            )
        }
        EventPayload::IdentityVerificationRequested { .. } => entry(
            "Данные отправлены на проверку".to_owned(),
            "Мы отправили данные вашего профиля на проверку в ведомство. Когда проверка завершится, мы сообщим о результате.".to_owned(),
            Some(PROFILE_LINK.to_owned()),
        ),
        EventPayload::IdentityLevelChanged { level, previous_level, reason } => {
            let body = match (level_reason(reason), level_title(previous_level), level_title(level)) {
                (Some(reason), _, _) => reason.to_owned(),
                (None, Some(before), Some(after)) => format!("Был «{before}», теперь «{after}»."),
                (None, _, _) => "Уровень учётной записи изменился.".to_owned(),
            };
            entry(level_heading(level), body, Some(PROFILE_LINK.to_owned()))
        }
        EventPayload::DocumentVerdict { document_id, file_name, status, rejection_reason } => {
            let file = clean(file_name, MAX_INBOX_NAME_UNITS);
            let link = document_link(document_id);
            match verdict(status)? {
                Verdict::Available => entry(format!("Документ «{file}» проверен"), "Документ прошёл проверку и доступен в личном кабинете.".to_owned(), link),
                Verdict::Rejected => entry(
                    format!("Документ «{file}» отклонён"),
                    format!("Документ не прошёл проверку: {}. Загрузите файл заново.", rejection_text(rejection_reason.as_deref())),
                    link,
                ),
            }
        }
    }
}

/// The Russian title of an application status (SPEC §4.2), from the shared vocabulary.
pub fn status_title(status: &str) -> Option<&'static str> {
    shared::domain::application::ApplicationStatus::parse(status).map(|s| s.title())
}

/// The Russian title of an account level (SPEC §3.8), from the shared vocabulary.
pub fn level_title(level: &str) -> Option<&'static str> {
    shared::identity::Level::parse(level).map(|l| l.title())
}

const FOOTER: &str = "—\nГосуслуги. Письмо отправлено автоматически, отвечать на него не нужно.";

/// Cabinet paths the inbox links to.
const PROFILE_LINK: &str = "/profile";
const SECURITY_LINK: &str = "/profile/security";

/// Caps, in UTF-16 units, on values quoted from events.
const MAX_NUMBER_UNITS: usize = 32;
const MAX_STATUS_UNITS: usize = 40;
const MAX_INBOX_NAME_UNITS: usize = 80;
const MAX_EMAIL_TITLE_UNITS: usize = 300;
const MAX_EMAIL_TEXT_UNITS: usize = 1000;
/// An optional SMS tail shorter than this is left out rather than shown as a stub.
const MIN_SMS_TAIL: usize = 12;

/// The longest code lifetime we render; longer ones are rejected as malformed events.
pub const MAX_OTP_LIFETIME_MINUTES: i64 = 24 * 60;

/// Whole minutes a code lives (rounded up, at least one).
pub fn lifetime_minutes(issued_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> i64 {
    let seconds = (expires_at - issued_at).num_seconds();
    ((seconds + 59) / 60).max(1)
}

/// "5 минут", "1 минуту", "3 минуты".
fn validity(issued_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> String {
    let minutes = lifetime_minutes(issued_at, expires_at);
    let word = match (minutes % 10, minutes % 100) {
        (_, 11..=14) => "минут",
        (1, _) => "минуту",
        (2..=4, _) => "минуты",
        _ => "минут",
    };
    format!("{minutes} {word}")
}

/// Moscow has been UTC+3 all year round since 2014.
fn moscow(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&FixedOffset::east_opt(3 * 3600).expect("UTC+3 is a valid offset"))
}

fn device_name(device_type: &str) -> &'static str {
    match device_type {
        "desktop" => "компьютер",
        "mobile" => "телефон",
        "tablet" => "планшет",
        _ => "другое устройство",
    }
}

/// The canonical form of an IP address, so an odd value can neither bloat nor inject text.
fn display_ip(ip: &str) -> String {
    ip.trim().parse::<IpAddr>().map_or_else(|_| "неизвестен".to_owned(), |ip| ip.to_string())
}

fn mfa_change(method: &str, enabled: bool) -> &'static str {
    match (method, enabled) {
        ("sms", true) => "подтверждение входа по SMS включено",
        ("sms", false) => "подтверждение входа по SMS отключено",
        ("totp", true) => "подтверждение входа кодом из приложения включено",
        ("totp", false) => "подтверждение входа кодом из приложения отключено",
        ("backup_code", true) => "выпущены новые резервные коды",
        ("backup_code", false) => "резервные коды отключены",
        (_, true) => "включён новый способ подтверждения входа",
        (_, false) => "отключён один из способов подтверждения входа",
    }
}

/// `Заявление № {number}: статус «{status_title}»` (SPEC §6), or without the number before one is assigned.
fn status_heading(number: Option<&str>, status: &str, status_title: &str) -> String {
    let title = status_name(status, status_title);
    match clean(number.unwrap_or_default(), MAX_NUMBER_UNITS) {
        number if number.is_empty() => format!("Ваше заявление: статус «{title}»"),
        number => format!("Заявление № {number}: статус «{title}»"),
    }
}

/// SPEC's own title for a known status; the producer's title (clipped) for anything newer.
fn status_name(status: &str, producer_title: &str) -> String {
    match status_title(status) {
        Some(title) => title.to_owned(),
        None => match clean(producer_title, MAX_STATUS_UNITS) {
            title if title.is_empty() => "обновлён".to_owned(),
            title => title,
        },
    }
}

fn message_heading(number: Option<&str>) -> String {
    match clean(number.unwrap_or_default(), MAX_NUMBER_UNITS) {
        number if number.is_empty() => "Новое сообщение по вашему заявлению".to_owned(),
        number => format!("Новое сообщение по заявлению № {number}"),
    }
}

fn level_heading(level: &str) -> String {
    match level_title(level) {
        Some(title) => format!("Уровень учётной записи: {title}"),
        None => "Уровень учётной записи изменён".to_owned(),
    }
}

/// Why the level changed, for the reasons producers send; others are not explained.
fn level_reason(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "profile_changed" => "Данные профиля изменились, поэтому их нужно проверить заново.",
        "verified" | "registry_verified" | "verification_succeeded" => "Ведомство подтвердило данные профиля.",
        "verification_failed" | "verification_rejected" | "registry_rejected" => "Ведомство не подтвердило данные профиля. Проверьте их и отправьте заново.",
        "identity_confirmed" | "confirmed" | "confirmed_in_person" => "Личность подтверждена.",
        _ => return None,
    })
}

enum Verdict {
    Available,
    Rejected,
}

/// `None` for statuses that are not a verdict: nothing to tell the citizen.
fn verdict(status: &str) -> Option<Verdict> {
    match status {
        "available" => Some(Verdict::Available),
        "rejected" => Some(Verdict::Rejected),
        _ => None,
    }
}

fn rejection_text(reason: Option<&str>) -> &'static str {
    match reason {
        Some("content_mismatch") => "формат файла не соответствует заявленному",
        Some("too_large") => "файл слишком большой",
        Some("empty") => "файл пустой",
        _ => "файл не прошёл проверку",
    }
}

fn application_link(application_id: &str) -> Option<String> {
    safe_id(application_id).map(|id| format!("/applications/{id}"))
}

fn document_link(document_id: &str) -> Option<String> {
    safe_id(document_id).map(|id| format!("/documents/{id}"))
}

/// An id fit to appear in a link: what the producers generate (ULIDs, UUIDs), nothing else.
fn safe_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then_some(id)
}

/// The closing line of an email: a link into the cabinet, or where to look when none can be given.
fn open_in_cabinet(portal: Option<&str>, path: Option<String>, section: &str) -> String {
    match (portal.map(|base| base.trim_end_matches('/')).filter(|base| !base.is_empty()), path) {
        (Some(base), Some(path)) => format!("Подробнее: {base}{path}"),
        _ => format!("Подробности — в личном кабинете на Госуслугах, раздел {section}."),
    }
}

/// A value from an event as texts may quote it: control characters and runs of whitespace
/// become one space, and at most `max_units` UTF-16 units remain (cut marked with `…`).
fn clean(value: &str, max_units: usize) -> String {
    let collapsed = value.split(|c: char| c.is_whitespace() || c.is_control()).filter(|word| !word.is_empty()).collect::<Vec<_>>().join(" ");
    clip(&collapsed, max_units)
}

/// At most `max_units` UTF-16 units of `text`, cut on a character boundary; a cut ends in `…`.
fn clip(text: &str, max_units: usize) -> String {
    if text.encode_utf16().count() <= max_units {
        return text.to_owned();
    }
    if max_units == 0 {
        return String::new();
    }
    let mut kept = String::new();
    let mut units = 0;
    for c in text.chars() {
        // One unit stays free for the ellipsis.
        if units + c.len_utf16() + 1 > max_units {
            break;
        }
        units += c.len_utf16();
        kept.push(c);
    }
    format!("{}…", kept.trim_end())
}

/// `{heading}. {tail}`, or the heading alone when the tail is empty.
fn with_tail(heading: &str, tail: &str) -> String {
    if tail.is_empty() { format!("{heading}.") } else { format!("{heading}. {tail}") }
}

/// Renders an SMS around `value`, clipping the value until the text fits `MAX_SMS_SEGMENTS`;
/// a value clipped below `min_units` is dropped (rendered empty) instead.
fn fit_sms(value: &str, min_units: usize, render: impl Fn(&str) -> String) -> String {
    // Nothing longer than two GSM-7 segments can fit, so longer values need not be tried.
    let value = clean(value, 2 * 153);
    let mut budget = value.encode_utf16().count();
    loop {
        let clipped = clip(&value, budget);
        let shown = if clipped.encode_utf16().count() < min_units && clipped != value { String::new() } else { clipped };
        let text = render(&shown);
        if sms_segments(&text) <= MAX_SMS_SEGMENTS || budget == 0 {
            return text;
        }
        budget -= 1;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use shared::events::Destination;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 31, 21, 59, 0).single().expect("valid time")
    }

    fn event(payload: EventPayload) -> Event {
        Event { id: "01JTESTEVENT0000000000000".to_owned(), at: at(), user_id: Some("01JUSER".to_owned()), payload }
    }

    fn phone() -> Destination {
        Destination::Sms("+79990000000".to_owned())
    }

    fn sms(event: &Event) -> String {
        sms_text(event).unwrap_or_else(|| panic!("{} has an SMS", event.type_name()))
    }

    fn mail(event: &Event) -> EmailMessage {
        email(event, None).unwrap_or_else(|| panic!("{} has an email", event.type_name()))
    }

    fn status_changed(number: Option<&str>, service_title: &str, status: &str, comment: Option<&str>) -> Event {
        event(EventPayload::ApplicationStatusChanged {
            application_id: "01JAPP0000000000000000000A".to_owned(),
            number: number.map(str::to_owned),
            service_code: "passport_replacement".to_owned(),
            service_title: service_title.to_owned(),
            status: status.to_owned(),
            status_title: status_title(status).unwrap_or("Новый статус").to_owned(),
            comment: comment.map(str::to_owned),
        })
    }

    fn verdict_event(file_name: &str, status: &str, reason: Option<&str>) -> Event {
        event(EventPayload::DocumentVerdict {
            document_id: "01JDOC0000000000000000000D".to_owned(),
            file_name: file_name.to_owned(),
            status: status.to_owned(),
            rejection_reason: reason.map(str::to_owned),
        })
    }

    /// Every payload shape with the longest values it can carry.
    fn worst_cases() -> Vec<Event> {
        let mut payloads = Vec::new();
        for purpose in [OtpPurpose::Registration, OtpPurpose::Login, OtpPurpose::Recovery] {
            for minutes in [1, 5, 11, 99, 1000, MAX_OTP_LIFETIME_MINUTES] {
                payloads.push(EventPayload::OtpIssued {
                    destination: phone(),
                    code: "999999".to_owned(),
                    purpose,
                    expires_at: at() + Duration::minutes(minutes),
                });
            }
        }
        payloads.push(EventPayload::RegistrationAttempted { destination: phone() });
        payloads.push(EventPayload::AccountLocked { destinations: vec![phone()] });
        payloads.push(EventPayload::PasswordChanged { destinations: vec![phone()] });
        let long_ips = ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "255.255.255.255", "::ffff:255.255.255.255", &"x".repeat(500)];
        for device_type in ["desktop", "mobile", "tablet", "other", "a very long unknown device type"] {
            for ip in long_ips {
                payloads.push(EventPayload::NewLogin { destinations: vec![phone()], device_type: device_type.to_owned(), ip: ip.to_owned() });
            }
        }
        for method in ["sms", "totp", "backup_code", "something_new"] {
            for enabled in [true, false] {
                payloads.push(EventPayload::MfaChanged { destinations: vec![phone()], method: method.to_owned(), enabled });
            }
        }
        let long_titles = [
            "Замена паспорта гражданина Российской Федерации по достижении 20 и 45 лет, при изменении фамилии, имени, отчества или обнаружении ошибки",
            &"Ж".repeat(1000),
            &"😀".repeat(400),
            "Справка о наличии (отсутствии) судимости и (или) факта уголовного преследования либо о прекращении уголовного преследования\n\t с переводом строки",
            "",
        ];
        let long_numbers = [None, Some("1234567890-2025"), Some(&*"9".repeat(200)), Some(&*"№".repeat(200)), Some(&*"😀".repeat(100))];
        let statuses = ["draft", "submitted", "accepted", "in_progress", "info_requested", "approved", "rejected", "withdrawn", "some_future_status"];
        for title in long_titles {
            for number in long_numbers {
                for status in statuses {
                    payloads.push(EventPayload::ApplicationStatusChanged {
                        application_id: "01JAPP0000000000000000000A".to_owned(),
                        number: number.map(str::to_owned),
                        service_code: "x".repeat(100),
                        service_title: title.to_owned(),
                        status: status.to_owned(),
                        status_title: "С".repeat(500),
                        comment: Some("К".repeat(5000)),
                    });
                }
                payloads.push(EventPayload::ApplicationMessage {
                    application_id: "x".repeat(500),
                    number: number.map(str::to_owned),
                    service_title: title.to_owned(),
                    from_agency: true,
                    preview: "П".repeat(5000),
                });
            }
        }
        payloads.push(EventPayload::IdentityVerificationRequested {
            registry_agency_id: "mvd".to_owned(),
            request_id: "01JREQUEST".to_owned(),
            profile: Box::new(shared::identity::Profile::example()),
        });
        for level in ["simplified", "standard", "confirmed", "unknown_level"] {
            for reason in ["profile_changed", "verified", "verification_rejected", "identity_confirmed", &"r".repeat(500)] {
                payloads.push(EventPayload::IdentityLevelChanged {
                    level: level.to_owned(),
                    previous_level: "simplified".to_owned(),
                    reason: reason.to_owned(),
                });
            }
        }
        for file_name in ["скан.pdf", &"очень_длинное_имя_файла_".repeat(40), &"😀".repeat(300), "a\nb\u{7}c"] {
            payloads.push(EventPayload::DocumentVerdict {
                document_id: "01JDOC".to_owned(),
                file_name: file_name.to_owned(),
                status: "available".to_owned(),
                rejection_reason: None,
            });
            for reason in [Some("content_mismatch"), Some("too_large"), Some("empty"), Some("something_else"), None] {
                payloads.push(EventPayload::DocumentVerdict {
                    document_id: "01JDOC".to_owned(),
                    file_name: file_name.to_owned(),
                    status: "rejected".to_owned(),
                    rejection_reason: reason.map(str::to_owned),
                });
            }
        }
        payloads.into_iter().map(event).collect()
    }

    #[test]
    fn every_sms_template_fits_in_two_segments_with_its_longest_values() {
        for event in worst_cases() {
            let Some(text) = sms_text(&event) else { continue };
            assert!(
                sms_segments(&text) <= MAX_SMS_SEGMENTS,
                "{} takes {} segments ({} chars): {text}",
                event.type_name(),
                sms_segments(&text),
                text.chars().count()
            );
        }
    }

    #[test]
    fn worst_cases_cover_every_event_type() {
        let types: std::collections::BTreeSet<_> = worst_cases().iter().map(Event::type_name).collect();
        assert_eq!(types.len(), 11);
    }

    #[test]
    fn every_event_speaks_through_at_least_one_channel() {
        for event in worst_cases() {
            assert!(sms_text(&event).is_some() || email(&event, None).is_some() || inbox(&event).is_some(), "{}", event.type_name());
        }
    }

    #[test]
    fn every_email_has_a_subject_and_a_body_without_placeholders() {
        for event in worst_cases() {
            for portal in [None, Some("https://portal.example/")] {
                let Some(email) = email(&event, portal) else { continue };
                assert!(!email.subject.is_empty() && !email.subject.contains(['\n', '\r', '\t']), "{:?}", email.subject);
                assert!(email.body.starts_with("Здравствуйте!") && email.body.ends_with(FOOTER));
                assert!(!email.body.contains('{') && !email.body.contains('}'), "{}", email.body);
            }
        }
    }

    #[test]
    fn every_inbox_entry_has_a_one_line_title_a_body_and_a_cabinet_link() {
        for event in worst_cases() {
            let Some(entry) = inbox(&event) else { continue };
            assert!(!entry.title.is_empty() && !entry.title.contains(['\n', '\r', '\t']), "{:?}", entry.title);
            assert!(entry.title.encode_utf16().count() <= 200, "{}", entry.title);
            assert!(!entry.body.is_empty() && !entry.body.contains('{'), "{}", entry.body);
            if let Some(link) = &entry.link {
                assert!(link.starts_with('/') && link.len() <= 100 && !link.contains(char::is_whitespace), "{link}");
            }
        }
    }

    #[test]
    fn codes_and_contact_warnings_have_no_inbox_entry() {
        let otp = event(EventPayload::OtpIssued {
            destination: phone(),
            code: "123456".to_owned(),
            purpose: OtpPurpose::Login,
            expires_at: at() + Duration::minutes(5),
        });
        assert_eq!(inbox(&otp), None);
        assert_eq!(inbox(&event(EventPayload::RegistrationAttempted { destination: phone() })), None);
    }

    #[test]
    fn otp_texts_name_their_purpose_and_carry_the_code() {
        let otp =
            |purpose| event(EventPayload::OtpIssued { destination: phone(), code: "123456".to_owned(), purpose, expires_at: at() + Duration::minutes(5) });
        assert_eq!(sms(&otp(OtpPurpose::Registration)), "Код подтверждения для регистрации на Госуслугах: 123456. Никому не сообщайте его. Действует 5 минут.");
        assert!(sms(&otp(OtpPurpose::Login)).starts_with("Код для входа на Госуслуги: 123456."));
        assert!(sms(&otp(OtpPurpose::Recovery)).starts_with("Код для восстановления доступа к Госуслугам: 123456."));
        let message = mail(&otp(OtpPurpose::Login));
        assert_eq!(message.subject, "Код для входа на Госуслуги");
        assert!(message.body.contains(": 123456\n") && message.body.contains("действует 5 минут"));
    }

    #[test]
    fn the_code_is_the_only_six_digit_number_in_otp_messages() {
        let otp = event(EventPayload::OtpIssued {
            destination: phone(),
            code: "123456".to_owned(),
            purpose: OtpPurpose::Recovery,
            expires_at: at() + Duration::minutes(5),
        });
        for text in [sms(&otp), mail(&otp).body] {
            let runs: Vec<&str> = text.split(|c: char| !c.is_ascii_digit()).filter(|run| run.len() >= 6).collect();
            assert_eq!(runs, vec!["123456"]);
        }
    }

    #[test]
    fn code_lifetime_is_declined_in_russian() {
        let lifetime = |minutes| validity(at(), at() + Duration::minutes(minutes));
        assert_eq!(lifetime(1), "1 минуту");
        assert_eq!(lifetime(3), "3 минуты");
        assert_eq!(lifetime(5), "5 минут");
        assert_eq!(lifetime(11), "11 минут");
        assert_eq!(lifetime(21), "21 минуту");
        assert_eq!(lifetime(112), "112 минут");
        assert_eq!(validity(at(), at() + Duration::seconds(61)), "2 минуты");
        assert_eq!(validity(at(), at() - Duration::seconds(5)), "1 минуту");
    }

    #[test]
    fn security_messages_show_moscow_time() {
        let login = event(EventPayload::NewLogin { destinations: vec![phone()], device_type: "mobile".to_owned(), ip: "203.0.113.7".to_owned() });
        assert_eq!(sms(&login), "Госуслуги: вход в 00:59 МСК (телефон, IP 203.0.113.7). Если это не вы, срочно смените пароль.");
        assert!(mail(&login).body.contains("01.01.2026 в 00:59 (МСК) выполнен вход"));
    }

    #[test]
    fn an_unparsable_ip_is_not_copied_into_the_text() {
        let login = event(EventPayload::NewLogin { destinations: vec![phone()], device_type: "desktop".to_owned(), ip: "<script>".to_owned() });
        assert!(!sms(&login).contains("<script>"));
        assert!(sms(&login).contains("IP неизвестен"));
        assert!(!inbox(&login).unwrap().body.contains("<script>"));
    }

    #[test]
    fn registration_attempt_sms_warns_the_number_owner() {
        let attempt = event(EventPayload::RegistrationAttempted { destination: phone() });
        assert!(sms(&attempt).starts_with("Кто-то пытается зарегистрировать учётную запись на ваш номер."));
        assert!(mail(&attempt).body.contains("с этим адресом электронной почты"));
    }

    #[test]
    fn status_change_sms_follows_the_spec_and_adds_the_service_when_it_fits() {
        let approved = status_changed(Some("0042-2025"), "Справка о доходах 2-НДФЛ", "approved", None);
        assert_eq!(sms(&approved), "Заявление № 0042-2025: статус «Одобрено». Справка о доходах 2-НДФЛ");
    }

    #[test]
    fn a_long_service_title_is_shortened_on_a_character_boundary() {
        let title = "Замена паспорта гражданина Российской Федерации по достижении 20 и 45 лет, при изменении фамилии, имени, отчества или обнаружении ошибки";
        let text = sms(&status_changed(Some("0042-2025"), title, "in_progress", None));
        assert!(text.starts_with("Заявление № 0042-2025: статус «В работе». Замена паспорта"), "{text}");
        assert!(text.ends_with('…'), "{text}");
        assert_eq!(sms_segments(&text), 2);
    }

    #[test]
    fn a_status_sms_without_room_for_a_stub_of_the_title_leaves_it_out() {
        let text = sms(&status_changed(Some(&"9".repeat(200)), &"Ж".repeat(1000), "info_requested", None));
        assert!(text.starts_with("Заявление № 9999"), "{text}");
        assert!(text.contains("статус «Ожидание дополнений»"), "{text}");
        assert!(sms_segments(&text) <= MAX_SMS_SEGMENTS);
    }

    #[test]
    fn status_titles_come_from_the_spec_whatever_the_producer_sent() {
        let mut event = status_changed(Some("1"), "Услуга", "rejected", None);
        if let EventPayload::ApplicationStatusChanged { status_title, .. } = &mut event.payload {
            *status_title = "Rejected".to_owned();
        }
        assert!(sms(&event).contains("статус «Отклонено»"));
        let unknown = status_changed(Some("1"), "Услуга", "paused", None);
        assert!(sms(&unknown).contains("статус «Новый статус»"));
    }

    #[test]
    fn status_change_email_and_inbox_carry_the_comment_and_the_link() {
        let rejected = status_changed(Some("0042-2025"), "Регистрация транспортного средства", "rejected", Some("Не приложен ПТС"));
        let message = email(&rejected, Some("https://portal.example/")).unwrap();
        assert_eq!(message.subject, "Заявление № 0042-2025: статус «Отклонено»");
        assert!(message.body.contains("Новый статус: Отклонено\nКомментарий: Не приложен ПТС"), "{}", message.body);
        assert!(message.body.contains("Подробнее: https://portal.example/applications/01JAPP0000000000000000000A"), "{}", message.body);
        assert!(mail(&rejected).body.contains("раздел «Заявления»"));
        let entry = inbox(&rejected).unwrap();
        assert_eq!(entry.title, "Заявление № 0042-2025: статус «Отклонено»");
        assert_eq!(entry.body, "Услуга: Регистрация транспортного средства. Комментарий: Не приложен ПТС");
        assert_eq!(entry.link.as_deref(), Some("/applications/01JAPP0000000000000000000A"));
    }

    #[test]
    fn a_draft_without_a_number_is_named_without_one() {
        assert_eq!(sms(&status_changed(None, "Услуга", "submitted", None)), "Ваше заявление: статус «Отправлено». Услуга");
    }

    #[test]
    fn a_message_from_the_agency_is_announced_and_the_citizens_own_is_not() {
        let message = |from_agency| {
            event(EventPayload::ApplicationMessage {
                application_id: "01JAPP".to_owned(),
                number: Some("77".to_owned()),
                service_title: "Оформление полиса ОМС".to_owned(),
                from_agency,
                preview: "Приложите, пожалуйста, скан СНИЛС".to_owned(),
            })
        };
        assert_eq!(sms(&message(true)), "Госуслуги: новое сообщение от ведомства по заявлению № 77. Прочитайте его в личном кабинете.");
        let entry = inbox(&message(true)).unwrap();
        assert_eq!(entry.title, "Новое сообщение по заявлению № 77");
        assert_eq!(entry.body, "Оформление полиса ОМС: «Приложите, пожалуйста, скан СНИЛС»");
        assert_eq!((sms_text(&message(false)), email(&message(false), None), inbox(&message(false))), (None, None, None));
    }

    #[test]
    fn verification_request_is_an_inbox_note_only() {
        let requested = event(EventPayload::IdentityVerificationRequested {
            registry_agency_id: "mvd".to_owned(),
            request_id: "01JREQUEST".to_owned(),
            profile: Box::new(shared::identity::Profile::example()),
        });
        assert_eq!(sms_text(&requested), None);
        assert_eq!(email(&requested, None), None);
        assert_eq!(inbox(&requested).unwrap().title, "Данные отправлены на проверку");
    }

    #[test]
    fn level_change_names_the_new_level_in_russian() {
        let changed =
            event(EventPayload::IdentityLevelChanged { level: "standard".to_owned(), previous_level: "simplified".to_owned(), reason: "verified".to_owned() });
        assert_eq!(sms(&changed), "Госуслуги. Уровень учётной записи: Стандартная. Ведомство подтвердило данные профиля.");
        assert_eq!(mail(&changed).subject, "Уровень учётной записи: Стандартная");
        assert!(mail(&changed).body.contains("был «Упрощённая», теперь «Стандартная»"));
        let dropped = event(EventPayload::IdentityLevelChanged {
            level: "simplified".to_owned(),
            previous_level: "confirmed".to_owned(),
            reason: "profile_changed".to_owned(),
        });
        let entry = inbox(&dropped).unwrap();
        assert_eq!(entry.title, "Уровень учётной записи: Упрощённая");
        assert_eq!(entry.body, "Данные профиля изменились, поэтому их нужно проверить заново.");
    }

    #[test]
    fn a_rejected_document_explains_why_in_russian() {
        let rejected = verdict_event("паспорт.pdf", "rejected", Some("content_mismatch"));
        assert_eq!(sms(&rejected), "Госуслуги: документ «паспорт.pdf» отклонён — формат файла не соответствует заявленному. Загрузите его заново.");
        assert_eq!(inbox(&rejected).unwrap().title, "Документ «паспорт.pdf» отклонён");
        assert!(mail(&rejected).body.contains("не прошёл проверку: формат файла не соответствует заявленному."));
        assert!(sms(&verdict_event("a.pdf", "rejected", Some("too_large"))).contains("файл слишком большой"));
        assert!(sms(&verdict_event("a.pdf", "rejected", Some("empty"))).contains("файл пустой"));
        let accepted = verdict_event("снилс.jpg", "available", None);
        assert_eq!(inbox(&accepted).unwrap().link.as_deref(), Some("/documents/01JDOC0000000000000000000D"));
        assert_eq!(sms_text(&verdict_event("a.pdf", "pending_upload", None)), None);
    }

    #[test]
    fn quoted_values_lose_control_characters_and_are_clipped_on_character_boundaries() {
        assert_eq!(clean(" a\n\tb\u{7} c ", 100), "a b c");
        assert_eq!(clip("абвгд", 4), "абв…");
        assert_eq!(clip("😀😀😀", 4), "😀…");
        assert_eq!(clip("абв", 3), "абв");
        assert_eq!(clip("абв", 0), "");
    }

    #[test]
    fn an_id_that_is_not_a_plain_token_gets_no_link() {
        let mut event = status_changed(Some("1"), "Услуга", "approved", None);
        if let EventPayload::ApplicationStatusChanged { application_id, .. } = &mut event.payload {
            *application_id = "../../admin".to_owned();
        }
        assert_eq!(inbox(&event).unwrap().link, None);
        assert!(email(&event, Some("https://portal.example")).unwrap().body.contains("раздел «Заявления»"));
    }
}

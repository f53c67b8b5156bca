//! Russian texts of every message, one SMS and one email per event type.
//!
//! Every SMS must fit in `MAX_SMS_SEGMENTS` (Cyrillic makes it UCS-2: at most 134 characters);
//! a test renders each template with its longest possible values. Email bodies are plain text.
//! Texts carry no link or number other than the values shown, so a one-time code is the only
//! six-digit number in its message.

use std::net::IpAddr;

use chrono::{DateTime, FixedOffset, Utc};
use shared::events::{Event, EventPayload, OtpPurpose};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailMessage {
    pub subject: String,
    pub body: String,
}

/// The SMS text of `event`.
pub fn sms_text(event: &Event) -> String {
    match &event.payload {
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
        _ => "Госуслуги: новое уведомление в личном кабинете.".to_owned(),
    }
}

/// The email (subject and plain-text body) of `event`.
pub fn email(event: &Event) -> EmailMessage {
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
                OtpPurpose::Login => (
                    "Код для входа на Госуслуги",
                    "Код для входа на Госуслуги",
                    "Если вы не входили на портал, значит, кто-то знает ваш пароль: смените его.",
                ),
                OtpPurpose::Recovery => (
                    "Код для восстановления доступа к Госуслугам",
                    "Код для восстановления доступа к Госуслугам",
                    "Если вы не восстанавливали доступ, проигнорируйте это письмо: пароль останется прежним.",
                ),
            };
            (
                subject.to_owned(),
                format!(
                    "{lead}: {code}\n\nКод действует {validity}. Никому не сообщайте его — сотрудники Госуслуг никогда его не спрашивают.\n\n{if_not_you}"
                ),
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
        _ => ("Новое уведомление".to_owned(), "В личном кабинете на Госуслугах новое уведомление.".to_owned()),
    };
    EmailMessage { subject, body: format!("Здравствуйте!\n\n{text}\n\n{FOOTER}") }
}

const FOOTER: &str = "—\nГосуслуги. Письмо отправлено автоматически, отвечать на него не нужно.";

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

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use shared::events::Destination;

    use super::*;
    use crate::sms::{MAX_SMS_SEGMENTS, sms_segments};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 31, 21, 59, 0).single().expect("valid time")
    }

    fn event(payload: EventPayload) -> Event {
        Event { id: "01JTESTEVENT0000000000000".to_owned(), at: at(), user_id: None, payload }
    }

    fn phone() -> Destination {
        Destination::Sms("+79990000000".to_owned())
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
        payloads.into_iter().map(event).collect()
    }

    #[test]
    fn every_sms_template_fits_in_two_segments_with_its_longest_values() {
        for event in worst_cases() {
            let text = sms_text(&event);
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
        assert_eq!(types.len(), 6);
    }

    #[test]
    fn every_email_has_a_subject_and_a_body_without_placeholders() {
        for event in worst_cases() {
            let email = email(&event);
            assert!(!email.subject.is_empty() && !email.subject.contains('\n'));
            assert!(email.body.starts_with("Здравствуйте!") && email.body.ends_with(FOOTER));
            assert!(!email.body.contains('{') && !email.body.contains('}'), "{}", email.body);
        }
    }

    #[test]
    fn otp_texts_name_their_purpose_and_carry_the_code() {
        let otp = |purpose| {
            event(EventPayload::OtpIssued { destination: phone(), code: "123456".to_owned(), purpose, expires_at: at() + Duration::minutes(5) })
        };
        assert_eq!(
            sms_text(&otp(OtpPurpose::Registration)),
            "Код подтверждения для регистрации на Госуслугах: 123456. Никому не сообщайте его. Действует 5 минут."
        );
        assert!(sms_text(&otp(OtpPurpose::Login)).starts_with("Код для входа на Госуслуги: 123456."));
        assert!(sms_text(&otp(OtpPurpose::Recovery)).starts_with("Код для восстановления доступа к Госуслугам: 123456."));
        let mail = email(&otp(OtpPurpose::Login));
        assert_eq!(mail.subject, "Код для входа на Госуслуги");
        assert!(mail.body.contains(": 123456\n") && mail.body.contains("действует 5 минут"));
    }

    #[test]
    fn the_code_is_the_only_six_digit_number_in_otp_messages() {
        let otp = event(EventPayload::OtpIssued {
            destination: phone(),
            code: "123456".to_owned(),
            purpose: OtpPurpose::Recovery,
            expires_at: at() + Duration::minutes(5),
        });
        for text in [sms_text(&otp), email(&otp).body] {
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
        assert_eq!(sms_text(&login), "Госуслуги: вход в 00:59 МСК (телефон, IP 203.0.113.7). Если это не вы, срочно смените пароль.");
        assert!(email(&login).body.contains("01.01.2026 в 00:59 (МСК) выполнен вход"));
    }

    #[test]
    fn an_unparsable_ip_is_not_copied_into_the_text() {
        let login = event(EventPayload::NewLogin { destinations: vec![phone()], device_type: "desktop".to_owned(), ip: "<script>".to_owned() });
        assert!(!sms_text(&login).contains("<script>"));
        assert!(sms_text(&login).contains("IP неизвестен"));
    }

    #[test]
    fn registration_attempt_sms_warns_the_number_owner() {
        let attempt = event(EventPayload::RegistrationAttempted { destination: phone() });
        assert!(sms_text(&attempt).starts_with("Кто-то пытается зарегистрировать учётную запись на ваш номер."));
        assert!(email(&attempt).body.contains("с этим адресом электронной почты"));
    }
}

//! Auth's events: one-time codes, the warning to a contact someone tried to register, and the
//! security notices (lockout, password, new login, second factor).

use chrono::{DateTime, Utc};
use shared::events::OtpPurpose;
use shared::vocabulary::{DeviceType, MfaMethod};

use super::{Context, Messages, display_ip, entry, letter, moscow};
use crate::domain::routing::lifetime_minutes;

/// Cabinet path of the security settings.
const SECURITY_LINK: &str = "/profile/security";

pub(super) fn otp_issued(context: &Context, code: &str, purpose: OtpPurpose, expires_at: DateTime<Utc>) -> Messages {
    let validity = validity(context.at, expires_at);
    let (sms, subject, lead, if_not_you) = match purpose {
        OtpPurpose::Registration => (
            format!("Код подтверждения для регистрации на Госуслугах: {code}. Никому не сообщайте его. Действует {validity}."),
            "Код подтверждения регистрации на Госуслугах",
            "Код подтверждения для регистрации на Госуслугах",
            "Если вы не регистрировались, просто проигнорируйте это письмо.",
        ),
        OtpPurpose::Login => (
            format!("Код для входа на Госуслуги: {code}. Никому не сообщайте его, даже сотрудникам Госуслуг. Действует {validity}."),
            "Код для входа на Госуслуги",
            "Код для входа на Госуслуги",
            "Если вы не входили на портал, значит, кто-то знает ваш пароль: смените его.",
        ),
        OtpPurpose::Recovery => (
            format!("Код для восстановления доступа к Госуслугам: {code}. Никому не сообщайте его. Действует {validity}."),
            "Код для восстановления доступа к Госуслугам",
            "Код для восстановления доступа к Госуслугам",
            "Если вы не восстанавливали доступ, проигнорируйте это письмо: пароль останется прежним.",
        ),
    };
    let text = format!("{lead}: {code}\n\nКод действует {validity}. Никому не сообщайте его — сотрудники Госуслуг никогда его не спрашивают.\n\n{if_not_you}");
    Messages { sms: Some(sms), email: letter(subject, &text), inbox: None }
}

pub(super) fn registration_attempted(context: &Context) -> Messages {
    let when = context.when();
    let text = format!(
        "{when} кто-то пытался зарегистрировать на Госуслугах новую учётную запись с этим адресом электронной почты, \
         но он уже привязан к вашей учётной записи.\n\nЕсли это были вы и вы не помните пароль — восстановите доступ на странице входа. \
         Если нет — просто проигнорируйте это письмо."
    );
    Messages {
        sms: Some(
            "Кто-то пытается зарегистрировать учётную запись на ваш номер. Если это вы — восстановите доступ. Если нет — проигнорируйте сообщение.".to_owned(),
        ),
        email: letter("Попытка регистрации с вашим адресом почты", &text),
        inbox: None,
    }
}

pub(super) fn account_locked(context: &Context) -> Messages {
    let when = context.when();
    security_notice(
        "Учётная запись заблокирована",
        "Госуслуги: вход в учётную запись заблокирован из-за неверных попыток входа. Чтобы разблокировать, восстановите доступ.".to_owned(),
        &format!(
            "{when} вход в вашу учётную запись на Госуслугах заблокирован из-за нескольких неверных попыток входа подряд.\n\n\
             Чтобы разблокировать учётную запись, восстановите доступ на странице входа и задайте новый пароль. \
             Если пароль вводили не вы, это обязательно: кто-то пытается подобрать его."
        ),
        "Вход заблокирован из-за нескольких неверных попыток входа подряд. Чтобы разблокировать учётную запись, восстановите доступ и задайте новый пароль."
            .to_owned(),
    )
}

pub(super) fn password_changed(context: &Context) -> Messages {
    let when = context.when();
    security_notice(
        "Пароль изменён",
        "Госуслуги: пароль изменён, остальные сеансы завершены. Если это были не вы, срочно восстановите доступ.".to_owned(),
        &format!(
            "{when} пароль от вашей учётной записи на Госуслугах изменён, а все остальные сеансы завершены.\n\n\
             Если это были не вы, срочно восстановите доступ на странице входа."
        ),
        "Пароль от учётной записи изменён, остальные сеансы завершены. Если это были не вы, срочно восстановите доступ.".to_owned(),
    )
}

pub(super) fn new_login(context: &Context, device_type: DeviceType, ip: &str) -> Messages {
    let (when, device, ip) = (context.when(), device_type.title(), display_ip(ip));
    security_notice(
        "Вход в учётную запись",
        format!("Госуслуги: вход в {} МСК ({device}, IP {ip}). Если это не вы, срочно смените пароль.", moscow(context.at).format("%H:%M")),
        &format!(
            "{when} выполнен вход в вашу учётную запись на Госуслугах.\n\nУстройство: {device}\nIP-адрес: {ip}\n\n\
             Если это были не вы, срочно смените пароль и завершите чужие сеансы в настройках безопасности."
        ),
        format!("Выполнен вход: {device}, IP-адрес {ip}. Если это были не вы, смените пароль и завершите чужие сеансы."),
    )
}

pub(super) fn mfa_changed(context: &Context, method: MfaMethod, enabled: bool) -> Messages {
    let (when, change) = (context.when(), mfa_change(method, enabled));
    security_notice(
        "Изменены настройки подтверждения входа",
        format!("Госуслуги: {change}. Если это были не вы, срочно восстановите доступ."),
        &format!("{when} в вашей учётной записи на Госуслугах {change}.\n\nЕсли это были не вы, срочно восстановите доступ на странице входа."),
        format!("В учётной записи {change}. Если это были не вы, срочно восстановите доступ."),
    )
}

/// A security notice: the SMS, an email titled `title`, an inbox entry under the same title.
fn security_notice(title: &str, sms: String, email_text: &str, inbox_body: String) -> Messages {
    Messages { sms: Some(sms), email: letter(title, email_text), inbox: entry(title, inbox_body, Some(SECURITY_LINK.to_owned())) }
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

fn mfa_change(method: MfaMethod, enabled: bool) -> &'static str {
    match (method, enabled) {
        (MfaMethod::Sms, true) => "подтверждение входа по SMS включено",
        (MfaMethod::Sms, false) => "подтверждение входа по SMS отключено",
        (MfaMethod::Totp, true) => "подтверждение входа кодом из приложения включено",
        (MfaMethod::Totp, false) => "подтверждение входа кодом из приложения отключено",
        (MfaMethod::BackupCode, true) => "выпущены новые резервные коды",
        (MfaMethod::BackupCode, false) => "резервные коды отключены",
    }
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::Duration;
    use shared::events::EventPayload;

    use super::super::render;
    use super::super::testing::{at, event, inbox, mail, phone, sms};
    use super::*;

    pub fn otp(purpose: OtpPurpose, expires_at: DateTime<Utc>) -> EventPayload {
        EventPayload::OtpIssued { destination: phone(), code: "123456".to_owned(), purpose, expires_at }
    }

    fn login(device_type: DeviceType, ip: &str) -> shared::events::Event {
        event(EventPayload::NewLogin { destinations: vec![phone()], device_type, ip: ip.to_owned() })
    }

    #[test]
    fn codes_and_contact_warnings_have_no_inbox_entry() {
        assert_eq!(render(&event(otp(OtpPurpose::Login, at() + Duration::minutes(5))), None).inbox, None);
        assert_eq!(render(&event(EventPayload::RegistrationAttempted { destination: phone() }), None).inbox, None);
    }

    #[test]
    fn otp_texts_name_their_purpose_and_carry_the_code() {
        let otp = |purpose| event(otp(purpose, at() + Duration::minutes(5)));
        assert_eq!(sms(&otp(OtpPurpose::Registration)), "Код подтверждения для регистрации на Госуслугах: 123456. Никому не сообщайте его. Действует 5 минут.");
        assert!(sms(&otp(OtpPurpose::Login)).starts_with("Код для входа на Госуслуги: 123456."));
        assert!(sms(&otp(OtpPurpose::Recovery)).starts_with("Код для восстановления доступа к Госуслугам: 123456."));
        let message = mail(&otp(OtpPurpose::Login));
        assert_eq!(message.subject, "Код для входа на Госуслуги");
        assert!(message.body.contains(": 123456\n") && message.body.contains("действует 5 минут"));
    }

    #[test]
    fn the_code_is_the_only_six_digit_number_in_otp_messages() {
        let otp = event(otp(OtpPurpose::Recovery, at() + Duration::minutes(5)));
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
        let login = login(DeviceType::Mobile, "203.0.113.7");
        assert_eq!(sms(&login), "Госуслуги: вход в 00:59 МСК (телефон, IP 203.0.113.7). Если это не вы, срочно смените пароль.");
        assert!(mail(&login).body.contains("01.01.2026 в 00:59 (МСК) выполнен вход"));
    }

    #[test]
    fn an_unparsable_ip_is_not_copied_into_the_text() {
        let login = login(DeviceType::Desktop, "<script>");
        assert!(!sms(&login).contains("<script>"));
        assert!(sms(&login).contains("IP неизвестен"));
        assert!(!inbox(&login).body.contains("<script>"));
    }

    #[test]
    fn registration_attempt_sms_warns_the_number_owner() {
        let attempt = event(EventPayload::RegistrationAttempted { destination: phone() });
        assert!(sms(&attempt).starts_with("Кто-то пытается зарегистрировать учётную запись на ваш номер."));
        assert!(mail(&attempt).body.contains("с этим адресом электронной почты"));
    }

    #[test]
    fn a_second_factor_change_names_the_method() {
        let change = |method, enabled| event(EventPayload::MfaChanged { destinations: vec![phone()], method, enabled });
        assert_eq!(
            sms(&change(MfaMethod::Totp, true)),
            "Госуслуги: подтверждение входа кодом из приложения включено. Если это были не вы, срочно восстановите доступ."
        );
        assert_eq!(
            inbox(&change(MfaMethod::BackupCode, true)).body,
            "В учётной записи выпущены новые резервные коды. Если это были не вы, срочно восстановите доступ."
        );
    }
}

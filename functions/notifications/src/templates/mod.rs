//! Russian texts of every message, organised per event family ([`auth`], [`applications`],
//! [`identity`], [`documents`]): each family renders, per event, its SMS, its email and its
//! inbox entry, each `None` when the event does not speak through that channel (a one-time code
//! has no inbox entry; a "sent for verification" note is inbox only).
//!
//! Every SMS must fit in `MAX_SMS_SEGMENTS` (Cyrillic makes it UCS-2: at most 134 characters):
//! free-text values from events (titles, comments, file names) are cleaned and clipped on
//! character boundaries, and an optional tail (a service title, a reason) is shortened or left
//! out until the text fits. A test renders each template with its longest possible values.
//! Email bodies are plain text. Texts carry no number other than the values shown, so a
//! one-time code is the only six-digit number in its message.

mod applications;
mod auth;
mod documents;
mod identity;

use std::net::IpAddr;

use chrono::{DateTime, FixedOffset, Utc};
use shared::events::{Event, EventPayload};

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

/// What one event says through each channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Messages {
    pub sms: Option<String>,
    pub email: Option<EmailMessage>,
    pub inbox: Option<InboxMessage>,
}

/// The messages of `event`. `portal` is the public address of the citizen's cabinet; without
/// it emails name the cabinet section instead of linking into it.
pub fn render(event: &Event, portal: Option<&str>) -> Messages {
    let context = Context { at: event.at, portal };
    let context = &context;
    match &event.payload {
        EventPayload::OtpIssued { code, purpose, expires_at, .. } => auth::otp_issued(context, code, *purpose, *expires_at),
        EventPayload::RegistrationAttempted { .. } => auth::registration_attempted(context),
        EventPayload::RecoveryUnmatched { .. } => Messages::default(),
        EventPayload::AccountLocked { .. } => auth::account_locked(context),
        EventPayload::PasswordChanged { .. } => auth::password_changed(context),
        EventPayload::NewLogin { device_type, ip, .. } => auth::new_login(context, *device_type, ip),
        EventPayload::MfaChanged { method, enabled, .. } => auth::mfa_changed(context, *method, *enabled),
        EventPayload::ApplicationStatusChanged { application_id, number, service_title, status, comment, .. } => {
            applications::status_changed(context, application_id, number.as_deref(), service_title, *status, comment.as_deref())
        }
        EventPayload::ApplicationMessage { application_id, number, service_title, from_agency, preview } => {
            applications::message(context, application_id, number.as_deref(), service_title, *from_agency, preview)
        }
        EventPayload::IdentityVerificationRequested { .. } => identity::verification_requested(),
        EventPayload::IdentityLevelChanged { level, previous_level, reason } => identity::level_changed(context, *level, *previous_level, *reason),
        EventPayload::DocumentVerdict { document_id, file_name, status, rejection_reason } => {
            documents::verdict(context, document_id, file_name, *status, *rejection_reason)
        }
    }
}

/// What every template may draw on besides the event's own values.
struct Context<'a> {
    at: DateTime<Utc>,
    portal: Option<&'a str>,
}

impl Context<'_> {
    /// The event's time as emails open with it: `31.12.2025 в 21:59 (МСК)`.
    fn when(&self) -> String {
        moscow(self.at).format("%d.%m.%Y в %H:%M (МСК)").to_string()
    }

    /// The closing line of an email: a link into the cabinet, or where to look when none can be given.
    fn open_in_cabinet(&self, path: Option<String>, section: &str) -> String {
        match (self.portal.map(|base| base.trim_end_matches('/')).filter(|base| !base.is_empty()), path) {
            (Some(base), Some(path)) => format!("Подробнее: {base}{path}"),
            _ => format!("Подробности — в личном кабинете на Госуслугах, раздел {section}."),
        }
    }
}

/// An email: the greeting, `text`, the footer.
fn letter(subject: impl Into<String>, text: &str) -> Option<EmailMessage> {
    Some(EmailMessage { subject: subject.into(), body: format!("Здравствуйте!\n\n{text}\n\n{FOOTER}") })
}

fn entry(title: impl Into<String>, body: impl Into<String>, link: Option<String>) -> Option<InboxMessage> {
    Some(InboxMessage { title: title.into(), body: body.into(), link })
}

const FOOTER: &str = "—\nГосуслуги. Письмо отправлено автоматически, отвечать на него не нужно.";

/// Caps, in UTF-16 units, on values quoted from events.
const MAX_NUMBER_UNITS: usize = 32;
const MAX_INBOX_NAME_UNITS: usize = 80;
const MAX_EMAIL_TITLE_UNITS: usize = 300;
const MAX_EMAIL_TEXT_UNITS: usize = 1000;
/// An optional SMS tail shorter than this is left out rather than shown as a stub.
const MIN_SMS_TAIL: usize = 12;

/// Moscow has been UTC+3 all year round since 2014.
fn moscow(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&FixedOffset::east_opt(3 * 3600).expect("UTC+3 is a valid offset"))
}

/// The canonical form of an IP address, so an odd value can neither bloat nor inject text.
fn display_ip(ip: &str) -> String {
    ip.trim().parse::<IpAddr>().map_or_else(|_| "неизвестен".to_owned(), |ip| ip.to_string())
}

/// An id fit to appear in a link: what the producers generate (ULIDs, UUIDs), nothing else.
fn safe_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then_some(id)
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

/// Builders the family tests share.
#[cfg(test)]
mod testing {
    use chrono::TimeZone;
    use shared::domain::Phone;
    use shared::events::{Destination, Event, EventPayload};

    use super::{EmailMessage, InboxMessage, render};

    pub fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2025, 12, 31, 21, 59, 0).single().expect("valid time")
    }

    pub fn event(payload: EventPayload) -> Event {
        Event::at(at(), "01JTESTEVENT0000000000000".to_owned(), Some("01JUSER".to_owned()), payload)
    }

    pub fn phone() -> Destination {
        Destination::Sms(Phone::parse("+79990000000").expect("a valid phone"))
    }

    pub fn sms(event: &Event) -> String {
        render(event, None).sms.unwrap_or_else(|| panic!("{} has an SMS", event.type_name()))
    }

    pub fn mail(event: &Event) -> EmailMessage {
        render(event, None).email.unwrap_or_else(|| panic!("{} has an email", event.type_name()))
    }

    pub fn inbox(event: &Event) -> InboxMessage {
        render(event, None).inbox.unwrap_or_else(|| panic!("{} has an inbox entry", event.type_name()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::Duration;
    use shared::events::OtpPurpose;
    use shared::vocabulary::{ApplicationStatus, DeviceType, DocumentStatus, Level, LevelChangeReason, MfaMethod, RejectionReason};

    use super::testing::{at, event, phone};
    use super::*;
    use crate::domain::routing::MAX_OTP_LIFETIME_MINUTES;

    /// Every payload shape with the longest values it can carry.
    fn worst_cases() -> Vec<Event> {
        let mut payloads = Vec::new();
        for purpose in [OtpPurpose::Registration, OtpPurpose::Login, OtpPurpose::Recovery] {
            for minutes in [1, 5, 11, 99, 1000, MAX_OTP_LIFETIME_MINUTES] {
                payloads.push(auth::tests::otp(purpose, at() + Duration::minutes(minutes)));
            }
        }
        payloads.push(EventPayload::RegistrationAttempted { destination: phone() });
        payloads.push(EventPayload::AccountLocked { destinations: vec![phone()] });
        payloads.push(EventPayload::PasswordChanged { destinations: vec![phone()] });
        let long_ips = ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "255.255.255.255", "::ffff:255.255.255.255", &"x".repeat(500)];
        for &device_type in DeviceType::ALL {
            for ip in long_ips {
                payloads.push(EventPayload::NewLogin { destinations: vec![phone()], device_type, ip: ip.to_owned() });
            }
        }
        for &method in MfaMethod::ALL {
            for enabled in [true, false] {
                payloads.push(EventPayload::MfaChanged { destinations: vec![phone()], method, enabled });
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
        for title in long_titles {
            for number in long_numbers {
                for status in ApplicationStatus::ALL {
                    payloads.push(applications::tests::status_changed(number, title, status, Some(&"К".repeat(5000))));
                }
                payloads.push(applications::tests::message(number, title, true, &"П".repeat(5000)));
            }
        }
        payloads.push(identity::tests::verification_requested());
        for level in [Level::Simplified, Level::Standard, Level::Confirmed] {
            for &reason in LevelChangeReason::ALL {
                payloads.push(EventPayload::IdentityLevelChanged { level, previous_level: Level::Simplified, reason });
            }
        }
        for file_name in ["скан.pdf", &"очень_длинное_имя_файла_".repeat(40), &"😀".repeat(300), "a\nb\u{7}c"] {
            payloads.push(documents::tests::verdict(file_name, DocumentStatus::Available, None));
            for reason in RejectionReason::ALL.iter().copied().map(Some).chain([None]) {
                payloads.push(documents::tests::verdict(file_name, DocumentStatus::Rejected, reason));
            }
        }
        payloads.into_iter().map(event).collect()
    }

    #[test]
    fn every_sms_template_fits_in_two_segments_with_its_longest_values() {
        for event in worst_cases() {
            let Some(text) = render(&event, None).sms else { continue };
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
        let types: BTreeSet<_> = worst_cases().iter().map(Event::type_name).collect();
        assert_eq!(types.len(), 11);
    }

    #[test]
    fn every_event_speaks_through_at_least_one_channel() {
        for event in worst_cases() {
            assert_ne!(render(&event, None), Messages::default(), "{}", event.type_name());
        }
    }

    #[test]
    fn every_email_has_a_subject_and_a_body_without_placeholders() {
        for event in worst_cases() {
            for portal in [None, Some("https://portal.example/")] {
                let Some(email) = render(&event, portal).email else { continue };
                assert!(!email.subject.is_empty() && !email.subject.contains(['\n', '\r', '\t']), "{:?}", email.subject);
                assert!(email.body.starts_with("Здравствуйте!") && email.body.ends_with(FOOTER));
                assert!(!email.body.contains('{') && !email.body.contains('}'), "{}", email.body);
            }
        }
    }

    #[test]
    fn every_inbox_entry_has_a_one_line_title_a_body_and_a_cabinet_link() {
        for event in worst_cases() {
            let Some(entry) = render(&event, None).inbox else { continue };
            assert!(!entry.title.is_empty() && !entry.title.contains(['\n', '\r', '\t']), "{:?}", entry.title);
            assert!(entry.title.encode_utf16().count() <= 200, "{}", entry.title);
            assert!(!entry.body.is_empty() && !entry.body.contains('{'), "{}", entry.body);
            if let Some(link) = &entry.link {
                assert!(link.starts_with('/') && link.len() <= 100 && !link.contains(char::is_whitespace), "{link}");
            }
        }
    }

    #[test]
    fn quoted_values_lose_control_characters_and_are_clipped_on_character_boundaries() {
        assert_eq!(clean(" a\n\tb\u{7} c ", 100), "a b c");
        assert_eq!(clip("абвгд", 4), "абв…");
        assert_eq!(clip("😀😀😀", 4), "😀…");
        assert_eq!(clip("абв", 3), "абв");
        assert_eq!(clip("абв", 0), "");
    }
}

//! Who hears about an event, and through which channels: plain decisions over the event, the
//! citizen's preferences and their contacts, with no store and no sender in sight.
//!
//! One-time codes and the warning to a contact someone tried to register go to the destination
//! the event names and ignore preferences. Security events (lockout, password, new login,
//! second factor) go to the destinations auth named — security SMS and email cannot be switched
//! off — plus an inbox entry when the event names the citizen. Every other event names only
//! the citizen: contacts come from the account (confirmed phone for SMS, confirmed email for
//! email) and the citizen's preferences decide the channels.

use chrono::{DateTime, Utc};
use shared::events::{Destination, Event, EventPayload};

use super::preferences::{Category, Channel, Preferences};

/// The longest code lifetime we render; longer ones are refused as malformed events.
pub const MAX_OTP_LIFETIME_MINUTES: i64 = 24 * 60;

/// Whom an event addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The destinations the event names itself (auth's events); possibly none.
    Named(Vec<Destination>),
    /// Only the citizen: their confirmed contacts come from the account.
    Citizen,
}

/// Whom `payload` addresses.
pub fn audience(payload: &EventPayload) -> Audience {
    match payload {
        EventPayload::OtpIssued { destination, .. } | EventPayload::RegistrationAttempted { destination } => Audience::Named(vec![destination.clone()]),
        // Published only so an unknown login costs what a known one does: it names no one.
        EventPayload::RecoveryUnmatched { .. } => Audience::Named(Vec::new()),
        EventPayload::AccountLocked { destinations }
        | EventPayload::PasswordChanged { destinations }
        | EventPayload::NewLogin { destinations, .. }
        | EventPayload::MfaChanged { destinations, .. } => Audience::Named(destinations.clone()),
        EventPayload::ApplicationStatusChanged { .. }
        | EventPayload::ApplicationMessage { .. }
        | EventPayload::IdentityVerificationRequested { .. }
        | EventPayload::IdentityLevelChanged { .. }
        | EventPayload::DocumentVerdict { .. } => Audience::Citizen,
    }
}

/// Where one event goes: each destination once with its channel, and whether it gets an
/// inbox entry (or would get a push, which has no provider yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    pub destinations: Vec<Destination>,
    pub inbox: bool,
    pub push: bool,
}

/// Decides the route of an event of `category` (`None`: it ignores preferences) among
/// `candidates`, for a citizen (`has_citizen`) with these `preferences`.
pub fn route(category: Option<Category>, preferences: &Preferences, has_citizen: bool, candidates: Vec<Destination>) -> Route {
    let wants = |channel: Channel| category.is_none_or(|category| preferences.allows(category, channel));
    let mut destinations: Vec<Destination> = Vec::with_capacity(candidates.len());
    for destination in candidates {
        if wants(channel_of(&destination)) && !destinations.contains(&destination) {
            destinations.push(destination);
        }
    }
    let citizen_category = category.filter(|_| has_citizen);
    Route { destinations, inbox: citizen_category.is_some_and(|_| wants(Channel::Inbox)), push: citizen_category.is_some_and(|_| wants(Channel::Push)) }
}

pub fn channel_of(destination: &Destination) -> Channel {
    match destination {
        Destination::Sms(_) => Channel::Sms,
        Destination::Email(_) => Channel::Email,
    }
}

/// Why a queue message is not a deliverable event (the message is rejected, never retried).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the event id is unusable")]
    UnusableId,
    #[error("the citizen id is unusable")]
    UnusableCitizenId,
    #[error("the event names neither a destination nor a citizen")]
    NoOne,
    #[error("the one-time code is not six digits")]
    MalformedCode,
    #[error("the one-time code lives implausibly long")]
    ImplausibleLifetime,
}

/// Checks an event before anything is read or sent for it.
pub fn admit(event: &Event) -> Result<(), Refusal> {
    if !is_key_safe(&event.id) {
        return Err(Refusal::UnusableId);
    }
    if event.user_id.as_deref().is_some_and(|user_id| !is_key_safe(user_id)) {
        return Err(Refusal::UnusableCitizenId);
    }
    if audience(&event.payload) == Audience::Citizen && event.user_id.is_none() {
        return Err(Refusal::NoOne);
    }
    if let EventPayload::OtpIssued { code, expires_at, .. } = &event.payload {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Refusal::MalformedCode);
        }
        if lifetime_minutes(event.at, *expires_at) > MAX_OTP_LIFETIME_MINUTES {
            return Err(Refusal::ImplausibleLifetime);
        }
    }
    Ok(())
}

/// A one-time code that is dead already: delivering it would only confuse the citizen.
pub fn is_expired(event: &Event, now: DateTime<Utc>) -> bool {
    matches!(&event.payload, EventPayload::OtpIssued { expires_at, .. } if *expires_at <= now)
}

/// Whole minutes a code lives (rounded up, at least one).
pub fn lifetime_minutes(issued_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> i64 {
    let seconds = (expires_at - issued_at).num_seconds();
    ((seconds + 59) / 60).max(1)
}

/// Ids become parts of store keys: short, and nothing that could bend a key.
fn is_key_safe(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use serde_json::json;
    use shared::domain::{Email, Phone};
    use shared::events::OtpPurpose;
    use shared::ports::Ticker;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).single().expect("valid time")
    }

    fn sms() -> Destination {
        Destination::Sms(Phone::parse("+79990001122").unwrap())
    }

    fn email() -> Destination {
        Destination::Email(Email::parse("citizen@mail.example").unwrap())
    }

    fn otp(code: &str, lifetime: Duration) -> Event {
        let (ticker, _) = Ticker::fixed(at());
        Event::new(
            &ticker,
            None,
            EventPayload::OtpIssued { destination: sms(), code: code.to_owned(), purpose: OtpPurpose::Login, expires_at: at() + lifetime },
        )
    }

    #[test]
    fn codes_ignore_preferences_and_never_reach_the_inbox() {
        let everything_off = Preferences::default().updated(&json!({"categories": {"applications": {"sms": false, "inbox": false}}})).unwrap();
        let route = route(None, &everything_off, true, vec![sms()]);
        assert_eq!(route, Route { destinations: vec![sms()], inbox: false, push: false });
    }

    #[test]
    fn the_preferences_pick_among_the_citizens_contacts() {
        let defaults = Preferences::default();
        let applications = route(Some(Category::Applications), &defaults, true, vec![sms(), email()]);
        assert_eq!(applications, Route { destinations: vec![sms()], inbox: true, push: false });
        let personal = route(Some(Category::PersonalData), &defaults, true, vec![sms(), email()]);
        assert_eq!(personal.destinations, vec![email()]);
    }

    #[test]
    fn security_channels_are_used_whatever_the_preferences_say_and_each_destination_once() {
        let mut tampered = Preferences::default();
        tampered.categories.security.sms = false;
        tampered.categories.security.inbox = false;
        let route = route(Some(Category::Security), &tampered, true, vec![sms(), email(), sms()]);
        assert_eq!(route, Route { destinations: vec![sms(), email()], inbox: true, push: false });
    }

    #[test]
    fn an_event_naming_no_citizen_gets_no_inbox_entry() {
        assert!(!route(Some(Category::Security), &Preferences::default(), false, vec![sms()]).inbox);
    }

    #[test]
    fn events_that_are_not_deliverable_are_refused() {
        assert_eq!(admit(&otp("123456", Duration::minutes(5))), Ok(()));
        assert_eq!(admit(&otp("12345", Duration::minutes(5))), Err(Refusal::MalformedCode));
        assert_eq!(admit(&otp("12345a", Duration::minutes(5))), Err(Refusal::MalformedCode));
        assert_eq!(admit(&otp("123456", Duration::minutes(MAX_OTP_LIFETIME_MINUTES + 1))), Err(Refusal::ImplausibleLifetime));
        let mut bent = otp("123456", Duration::minutes(5));
        bent.user_id = Some("01JUSER#ACCOUNT".to_owned());
        assert_eq!(admit(&bent), Err(Refusal::UnusableCitizenId));
        bent.id = String::new();
        assert_eq!(admit(&bent), Err(Refusal::UnusableId));
        let (ticker, _) = Ticker::fixed(at());
        let orphan = Event::new(&ticker, None, EventPayload::PasswordChanged { destinations: vec![] });
        assert_eq!(admit(&orphan), Ok(()), "a security event names its destinations");
        let message = EventPayload::ApplicationMessage {
            application_id: "01JAPP".to_owned(),
            number: None,
            service_title: "Услуга".to_owned(),
            from_agency: true,
            preview: "Текст".to_owned(),
        };
        assert_eq!(admit(&Event::new(&ticker, None, message)), Err(Refusal::NoOne));
    }

    #[test]
    fn a_code_expires_at_its_expiry_time() {
        let event = otp("123456", Duration::minutes(5));
        assert!(!is_expired(&event, at() + Duration::minutes(4)));
        assert!(is_expired(&event, at() + Duration::minutes(5)));
    }
}

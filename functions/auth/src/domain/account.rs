//! Account rules, in one place: what each level demands, the account a registration creates,
//! password changes (with their history and the sessions they revoke), recovery (the only
//! way out of a lock), and storing a profile (which may drop a verified level).

use chrono::{DateTime, Utc};

use shared::domain::{Email, PersonalData, Phone, Snils};
use shared::events::{Destination, EventPayload};
use shared::identity::{Account, Level, MfaSettings, Profile, Verification};
use shared::vocabulary::LevelChangeReason;

use super::factors::MfaError;

/// How many previous passwords are kept besides the current one (SPEC §3.2: the last five
/// may not be reused).
const PASSWORD_HISTORY: usize = 4;

/// Whether an account at `level` must keep a second factor (SPEC §3.7: `confirmed` must).
pub fn level_requires_second_factor(level: Level) -> bool {
    matches!(level, Level::Confirmed)
}

/// Refuses an account state its level does not allow: a level that demands a second factor
/// with none on.
pub fn keeps_required_factor(account: &Account) -> Result<(), MfaError> {
    if level_requires_second_factor(account.level) && !(account.mfa.sms || account.totp_enabled()) {
        return Err(MfaError::LevelRequiresMfa);
    }
    Ok(())
}

/// The account a confirmed registration creates: `simplified`, its one contact confirmed,
/// the SMS second factor on for a phone (SPEC §3.5).
pub fn registered(user_id: String, contact: Destination, password_hash: String, now: DateTime<Utc>) -> Account {
    let (phone, email) = match contact {
        Destination::Sms(p) => (Some(p), None),
        Destination::Email(e) => (None, Some(e)),
    };
    Account {
        user_id,
        phone_confirmed: phone.is_some(),
        email_confirmed: email.is_some(),
        mfa: MfaSettings { sms: phone.is_some(), ..MfaSettings::default() },
        phone,
        email,
        level: Level::Simplified,
        password_hash,
        previous_password_hashes: Vec::new(),
        failed_attempts: 0,
        locked: false,
        profile: None,
        created_at: now,
        sessions_valid_from: None,
    }
}

/// The normalised login a contact is indexed under.
pub fn login_of(contact: &Destination) -> &str {
    match contact {
        Destination::Sms(p) => p.as_str(),
        Destination::Email(e) => e.as_str(),
    }
}

/// A new password: the old one joins the history, and every session from before `now` is
/// revoked (the caller renews the one that made the change, if any).
pub fn set_password(account: &mut Account, new_hash: String, now: DateTime<Utc>) -> EventPayload {
    let old = std::mem::replace(&mut account.password_hash, new_hash);
    account.previous_password_hashes.insert(0, old);
    account.previous_password_hashes.truncate(PASSWORD_HISTORY);
    account.sessions_valid_from = Some(now);
    EventPayload::PasswordChanged { destinations: account.security_destinations() }
}

/// Recovery: a new password, the lock lifted and the failure counter reset.
pub fn recover(account: &mut Account, new_hash: String, now: DateTime<Utc>) -> EventPayload {
    account.locked = false;
    account.failed_attempts = 0;
    set_password(account, new_hash, now)
}

/// What storing a profile did.
pub struct ProfileStored {
    pub profile: Profile,
    /// Name, birth date, SNILS or passport changed (or there was no profile).
    pub core_changed: bool,
    /// A verification request, and a level change when a verified level dropped.
    pub events: Vec<EventPayload>,
    /// A SNILS the new profile no longer has: it must stop naming this account at once.
    pub dropped_snils: Option<Snils>,
}

/// Stores `parsed` at `now` (SPEC §3.8). Changed core data is a new verification request
/// `request_id` to `registry_agency_id` (verdicts on older ones are void) and drops a
/// verified level back to `simplified`; unchanged core data keeps its verification.
pub fn store_profile(account: &mut Account, parsed: Profile, now: DateTime<Utc>, request_id: String, registry_agency_id: &str) -> ProfileStored {
    let previous = account.profile.take();
    let core_changed = previous.as_ref().is_none_or(|p| !p.same_core_data(&parsed));
    let mut profile = parsed;
    profile.updated_at = now;
    profile.verification = match (&previous, core_changed) {
        (Some(p), false) => p.verification.clone(),
        _ => Verification::requested(request_id),
    };
    let mut events = Vec::new();
    if core_changed {
        events.push(EventPayload::IdentityVerificationRequested {
            registry_agency_id: registry_agency_id.to_owned(),
            request_id: profile.verification.request_id.clone(),
            profile: Box::new(profile.clone()),
        });
        if account.level != Level::Simplified {
            events.push(EventPayload::IdentityLevelChanged {
                level: Level::Simplified,
                previous_level: account.level,
                reason: LevelChangeReason::ProfileChanged,
            });
            account.level = Level::Simplified;
        }
    }
    let dropped_snils = previous.map(|p| p.snils).filter(|old| *old != profile.snils);
    account.profile = Some(profile.clone());
    ProfileStored { profile, core_changed, events, dropped_snils }
}

/// The registry agency's delivery for a verification request (SPEC §3.8, §4.5
/// `identity.verification_requested`): exactly the profile the verdict will be about.
pub fn verification_request(user_id: &str, request_id: &str, profile: &Profile) -> serde_json::Value {
    serde_json::json!({"request_id": request_id, "user_id": user_id, "profile": profile})
}

/// What the password policy must not find inside a password: the contacts given (else the
/// account's) and the profile's names and birth date.
pub fn personal_data(account: Option<&Account>, phone: Option<&Phone>, email: Option<&Email>) -> PersonalData {
    let phone = phone.or_else(|| account.and_then(|a| a.phone.as_ref()));
    let email = email.or_else(|| account.and_then(|a| a.email.as_ref()));
    let profile = account.and_then(|a| a.profile.as_ref());
    PersonalData {
        phone_digits: phone.map(|p| p.digits().to_owned()),
        email_local_part: email.map(|e| e.local_part().to_owned()),
        first_name: profile.map(|p| p.first_name.clone()),
        last_name: profile.map(|p| p.last_name.clone()),
        middle_name: profile.and_then(|p| p.middle_name.clone()),
        birth_date: profile.map(|p| p.birth_date),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    /// A fresh email account at `simplified`.
    pub(crate) fn account() -> Account {
        registered("01JUSER".into(), Destination::Email(Email::parse("anna@example.ru").unwrap()), "hash-0".into(), at())
    }

    #[test]
    fn a_verification_request_names_the_request_the_citizen_and_exactly_the_stored_profile() {
        let mut account = account();
        let stored = store_profile(&mut account, Profile::example(), at(), "01JREQUEST".into(), "sfr");
        let data = verification_request(&account.user_id, &stored.profile.verification.request_id, &stored.profile);
        assert_eq!((data["request_id"].as_str(), data["user_id"].as_str()), (Some("01JREQUEST"), Some("01JUSER")));
        assert_eq!(data["profile"], serde_json::to_value(&stored.profile).unwrap());
        assert_eq!(data.as_object().map(|o| o.len()), Some(3));
    }

    #[test]
    fn registration_by_phone_turns_the_sms_factor_on_and_by_email_not() {
        let by_phone = registered("u".into(), Destination::Sms(Phone::parse("8 916 555-12-34").unwrap()), "h".into(), at());
        assert!(by_phone.phone_confirmed && by_phone.mfa.sms && !by_phone.email_confirmed);
        assert_eq!(by_phone.level, Level::Simplified);
        let by_email = account();
        assert!(by_email.email_confirmed && !by_email.mfa.sms);
    }

    #[test]
    fn the_password_history_keeps_the_last_four_and_revokes_older_sessions() {
        let mut a = account();
        for n in 1..=6 {
            set_password(&mut a, format!("hash-{n}"), at());
        }
        assert_eq!(a.password_hash, "hash-6");
        assert_eq!(a.previous_password_hashes, ["hash-5", "hash-4", "hash-3", "hash-2"]);
        assert_eq!(a.sessions_valid_from, Some(at()));
    }

    #[test]
    fn recovery_unlocks() {
        let mut a = account();
        a.locked = true;
        a.failed_attempts = 3;
        assert!(matches!(recover(&mut a, "new".into(), at()), EventPayload::PasswordChanged { .. }));
        assert!(!a.locked);
        assert_eq!(a.failed_attempts, 0);
    }

    #[test]
    fn only_confirmed_demands_a_second_factor() {
        assert!(!level_requires_second_factor(Level::Simplified));
        assert!(!level_requires_second_factor(Level::Standard));
        assert!(level_requires_second_factor(Level::Confirmed));
        let mut a = account();
        a.level = Level::Confirmed;
        assert_eq!(keeps_required_factor(&a), Err(MfaError::LevelRequiresMfa));
    }

    #[test]
    fn changed_core_data_is_a_new_request_and_drops_a_verified_level() {
        let mut a = account();
        let stored = store_profile(&mut a, Profile::example(), at(), "R1".into(), "sfr");
        assert!(stored.core_changed && stored.dropped_snils.is_none());
        assert_eq!(stored.profile.verification.request_id, "R1");
        assert_eq!(stored.events.len(), 1, "a request, no level change at simplified");
        a.level = Level::Standard;
        let mut same = Profile::example();
        same.inn = None;
        let stored = store_profile(&mut a, same, at(), "R2".into(), "sfr");
        assert!(!stored.core_changed && stored.events.is_empty());
        assert_eq!((stored.profile.verification.request_id.as_str(), a.level), ("R1", Level::Standard));
        let mut renamed = Profile::example();
        renamed.last_name = "Петрова".into();
        renamed.snils = Snils::parse("112-233-445 95").unwrap();
        let stored = store_profile(&mut a, renamed, at(), "R3".into(), "sfr");
        assert_eq!(a.level, Level::Simplified);
        assert!(stored.events.iter().any(|e| matches!(
            e,
            EventPayload::IdentityLevelChanged { level: Level::Simplified, previous_level: Level::Standard, reason: LevelChangeReason::ProfileChanged }
        )));
    }

    #[test]
    fn personal_data_prefers_the_given_contacts() {
        let a = account();
        let phone = Phone::parse("+79165551234").unwrap();
        let data = personal_data(Some(&a), Some(&phone), None);
        assert_eq!(data.phone_digits.as_deref(), Some("79165551234"));
        assert_eq!(data.email_local_part.as_deref(), Some("anna"));
    }
}

//! Second factors (SPEC §3.5, §3.7): TOTP codes and backup codes, each usable once; TOTP
//! enrolment and removal; the SMS switch. What a level demands of them is decided in
//! `account::level_requires_second_factor`.

use chrono::{DateTime, Utc};
use totp_rs::{Algorithm, Secret, TOTP};

use shared::events::EventPayload;
use shared::identity::Account;
use shared::vocabulary::MfaMethod;

use super::account::keeps_required_factor;
use crate::secrets;

/// Why a second-factor setting was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MfaError {
    /// Replacing a working authenticator needs its code: disable it first.
    #[error("TOTP is already on")]
    TotpAlreadyEnabled,
    #[error("TOTP enrolment was not started")]
    TotpNotStarted,
    #[error("TOTP is not on")]
    TotpNotEnabled,
    /// The account's level demands a second factor and this would leave none.
    #[error("the level requires a second factor")]
    LevelRequiresMfa,
    #[error("SMS needs a confirmed phone")]
    PhoneNotConfirmed,
    #[error("wrong code")]
    InvalidCode,
}

/// The time step at which `code` is valid for `secret` (RFC 6238, SHA-1, 6 digits, 30 s, ±1 step).
pub fn totp_step(secret_base32: &str, code: &str, now: DateTime<Utc>) -> Option<u64> {
    let totp = totp_for(secret_base32)?;
    let now = now.timestamp().max(0) as u64;
    let code = code.trim();
    [now.saturating_sub(30), now, now + 30].into_iter().find(|t| secrets::ct_eq(&totp.generate(*t), code)).map(|t| t / 30)
}

pub fn totp_for(secret_base32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_base32.to_owned()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, Some("Госуслуги".into()), "account".into()).ok()
}

/// Accepts a TOTP code (±1 step) and marks its step used, so the same code works once.
/// The caller writes the account conditionally: a lost race refuses the code.
pub fn use_totp(account: &mut Account, code: &str, now: DateTime<Utc>) -> bool {
    let Some(step) = account.mfa.totp_secret.as_deref().and_then(|secret| totp_step(secret, code, now)) else { return false };
    if account.mfa.totp_last_step.is_some_and(|last| step <= last) {
        return false;
    }
    account.mfa.totp_last_step = Some(step);
    true
}

/// Accepts a backup code by its hash (constant time) and strikes it: each works once.
pub fn use_backup_code(account: &mut Account, presented_hash: &str) -> bool {
    let Some(pos) = account.mfa.backup_code_hashes.iter().position(|h| secrets::ct_eq(h, presented_hash)) else { return false };
    account.mfa.backup_code_hashes.remove(pos);
    true
}

/// Offers `secret` as the pending TOTP secret.
pub fn start_totp(account: &mut Account, secret: String) -> Result<(), MfaError> {
    if account.totp_enabled() {
        return Err(MfaError::TotpAlreadyEnabled);
    }
    account.mfa.totp_pending_secret = Some(secret);
    Ok(())
}

/// A code from the authenticator turns the pending secret on, with fresh backup codes.
pub fn confirm_totp(account: &mut Account, code: &str, now: DateTime<Utc>, backup_code_hashes: Vec<String>) -> Result<EventPayload, MfaError> {
    if account.totp_enabled() {
        return Err(MfaError::TotpAlreadyEnabled);
    }
    let pending = account.mfa.totp_pending_secret.clone().ok_or(MfaError::TotpNotStarted)?;
    let step = totp_step(&pending, code, now).ok_or(MfaError::InvalidCode)?;
    account.mfa.totp_secret = Some(pending);
    account.mfa.totp_pending_secret = None;
    account.mfa.totp_last_step = Some(step);
    account.mfa.backup_code_hashes = backup_code_hashes;
    Ok(changed(account, MfaMethod::Totp, true))
}

/// Whether TOTP may be turned off at all (the code is checked after this).
pub fn may_disable_totp(account: &Account) -> Result<(), MfaError> {
    if !account.totp_enabled() {
        return Err(MfaError::TotpNotEnabled);
    }
    let mut without = account.clone();
    clear_totp(&mut without);
    keeps_required_factor(&without)
}

/// Turns TOTP off; its backup codes go with it.
pub fn disable_totp(account: &mut Account) -> Result<EventPayload, MfaError> {
    may_disable_totp(account)?;
    clear_totp(account);
    Ok(changed(account, MfaMethod::Totp, false))
}

fn clear_totp(account: &mut Account) {
    account.mfa.totp_secret = None;
    account.mfa.totp_last_step = None;
    account.mfa.backup_code_hashes.clear();
}

/// Turns the SMS factor on (a confirmed phone needed) or off; `None` when nothing changes.
pub fn switch_sms(account: &mut Account, enabled: bool) -> Result<Option<EventPayload>, MfaError> {
    if enabled == account.mfa.sms {
        return Ok(None);
    }
    if enabled && !(account.phone_confirmed && account.phone.is_some()) {
        return Err(MfaError::PhoneNotConfirmed);
    }
    let mut after = account.clone();
    after.mfa.sms = enabled;
    keeps_required_factor(&after)?;
    *account = after;
    Ok(Some(changed(account, MfaMethod::Sms, enabled)))
}

fn changed(account: &Account, method: MfaMethod, enabled: bool) -> EventPayload {
    EventPayload::MfaChanged { destinations: account.security_destinations(), method, enabled }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::tests::account;
    use shared::identity::Level;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn secret() -> String {
        Secret::Raw(vec![7; 20]).to_encoded().to_string()
    }

    fn code(at: DateTime<Utc>) -> String {
        totp_for(&secret()).unwrap().generate(at.timestamp() as u64)
    }

    fn with_totp() -> Account {
        let mut a = account();
        start_totp(&mut a, secret()).unwrap();
        confirm_totp(&mut a, &code(at()), at(), vec!["h1".into()]).unwrap();
        a
    }

    #[test]
    fn enrolment_needs_a_start_and_a_right_code() {
        let mut a = account();
        assert_eq!(confirm_totp(&mut a, "123456", at(), Vec::new()), Err(MfaError::TotpNotStarted));
        start_totp(&mut a, secret()).unwrap();
        let wrong = if code(at()) == "000000" { "111111" } else { "000000" };
        assert_eq!(confirm_totp(&mut a, wrong, at(), Vec::new()), Err(MfaError::InvalidCode));
        assert!(matches!(confirm_totp(&mut a, &code(at()), at(), Vec::new()), Ok(EventPayload::MfaChanged { method: MfaMethod::Totp, enabled: true, .. })));
        assert_eq!(start_totp(&mut a, secret()), Err(MfaError::TotpAlreadyEnabled));
    }

    #[test]
    fn a_totp_code_works_once_and_a_backup_code_once() {
        let mut a = with_totp();
        let next = at() + chrono::Duration::seconds(60);
        assert!(!use_totp(&mut a, &code(at()), at()), "the enrolment code's step is used");
        assert!(use_totp(&mut a, &code(next), next));
        assert!(!use_totp(&mut a, &code(next), next));
        assert!(use_backup_code(&mut a, "h1"));
        assert!(!use_backup_code(&mut a, "h1"));
    }

    #[test]
    fn a_confirmed_account_keeps_at_least_one_second_factor() {
        let mut a = with_totp();
        a.level = Level::Confirmed;
        assert_eq!(disable_totp(&mut a.clone()), Err(MfaError::LevelRequiresMfa));
        a.phone = Some(shared::domain::Phone::parse("+79165551234").unwrap());
        a.phone_confirmed = true;
        assert!(switch_sms(&mut a, true).unwrap().is_some());
        assert!(disable_totp(&mut a).is_ok());
        assert_eq!(switch_sms(&mut a, false), Err(MfaError::LevelRequiresMfa));
        assert!(a.mfa.sms, "a refusal leaves the switch");
        a.level = Level::Standard;
        assert!(switch_sms(&mut a, false).unwrap().is_some());
    }

    #[test]
    fn sms_needs_a_confirmed_phone() {
        let mut a = account();
        assert_eq!(switch_sms(&mut a, true), Err(MfaError::PhoneNotConfirmed));
        assert_eq!(switch_sms(&mut a, false), Ok(None));
        assert_eq!(may_disable_totp(&a), Err(MfaError::TotpNotEnabled));
    }
}

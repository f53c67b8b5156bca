//! Login decisions (SPEC §3.5): the failure counter and the lock, what a correct password
//! leads to, and what a success resets. Consecutive failures (wrong passwords and wrong
//! second-factor codes alike) lock the account at the threshold; a locked account refuses
//! every login until recovery.

use shared::events::{Destination, EventPayload};
use shared::identity::Account;
use shared::vocabulary::{DeviceType, MfaMethod};

use crate::store::AttemptResult;

/// Why a login step was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Wrong password, or a login that names no account: the two answer alike.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the account is locked")]
    Locked,
    #[error("wrong second-factor code")]
    WrongCode,
    /// The login did not offer this second factor.
    #[error("second factor not offered")]
    UnsupportedMethod,
}

/// What counting a password attempt before its check decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Counted; the password may be checked.
    Counted,
    /// The counter was already at the threshold (in-flight or crashed attempts): this attempt
    /// locks the account instead, and its owner is told.
    LocksNow,
    /// Already locked: nothing to write, the password is not checked.
    Locked,
}

/// Whether a failure was already counted by `reserve_attempt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    Already,
    No,
}

/// A recorded failure: whether it locked the account just now, and the answer to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub locks_now: bool,
    pub answer: LoginError,
}

/// What a correct password leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordAccepted {
    SignedIn,
    /// A second factor is required; these are the account's methods, in SPEC order.
    SecondFactor(Vec<MfaMethod>),
}

/// Counts an attempt *before* the password is checked, so parallel guesses cannot outrun the
/// lockout counter; a correct password gives it back (`release_reservation`).
pub fn reserve_attempt(account: &mut Account, max_failed: u32) -> Reservation {
    if account.locked {
        return Reservation::Locked;
    }
    if account.failed_attempts >= max_failed {
        account.locked = true;
        return Reservation::LocksNow;
    }
    account.failed_attempts += 1;
    Reservation::Counted
}

/// Gives back a reservation after a correct password (the second factor counts on its own).
pub fn release_reservation(account: &mut Account) {
    account.failed_attempts = account.failed_attempts.saturating_sub(1);
}

/// Records a failure of kind `result` (counting it unless already counted), locking the
/// account at the threshold.
pub fn record_failure(account: &mut Account, counted: Counted, max_failed: u32, result: AttemptResult) -> Failure {
    let was_locked = account.locked;
    if counted == Counted::No {
        account.failed_attempts += 1;
    }
    let locks_now = !was_locked && account.failed_attempts >= max_failed;
    account.locked |= locks_now;
    let answer = if account.locked {
        LoginError::Locked
    } else if result == AttemptResult::WrongPassword {
        LoginError::InvalidCredentials
    } else {
        LoginError::WrongCode
    };
    Failure { locks_now, answer }
}

/// After a correct password: signed in, or a second factor first.
pub fn after_password(account: &Account) -> PasswordAccepted {
    let methods = account.mfa_methods();
    if methods.is_empty() { PasswordAccepted::SignedIn } else { PasswordAccepted::SecondFactor(methods) }
}

/// A completed login resets the failure counter; a lock taken meanwhile still refuses it.
pub fn succeed(account: &mut Account) -> Result<(), LoginError> {
    if account.locked {
        return Err(LoginError::Locked);
    }
    account.failed_attempts = 0;
    Ok(())
}

/// The authentication methods of a session (`amr`): the password, and the second factor used.
pub fn amr(second_factor: Option<MfaMethod>) -> Vec<String> {
    let factor = match second_factor {
        None => return vec!["pwd".into()],
        Some(MfaMethod::Sms) => "sms",
        Some(MfaMethod::Totp | MfaMethod::BackupCode) => "otp",
    };
    vec!["pwd".into(), factor.into()]
}

/// The "new login" notice: to the confirmed email only (an SMS per login would be noise).
pub fn new_login_notice(account: &Account, device_type: DeviceType, ip: &str) -> Option<EventPayload> {
    let destinations: Vec<Destination> = account.security_destinations().into_iter().filter(|d| matches!(d, Destination::Email(_))).collect();
    (!destinations.is_empty()).then(|| EventPayload::NewLogin { destinations, device_type, ip: ip.to_owned() })
}

/// The lock notice, to every confirmed contact.
pub fn locked_notice(account: &Account) -> EventPayload {
    EventPayload::AccountLocked { destinations: account.security_destinations() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::tests::account;

    #[test]
    fn the_fourth_reservation_locks_instead_of_counting_and_a_locked_account_is_not_checked() {
        let mut a = account();
        for n in 1..=3 {
            assert_eq!(reserve_attempt(&mut a, 3), Reservation::Counted);
            assert_eq!(a.failed_attempts, n);
        }
        assert_eq!(reserve_attempt(&mut a, 3), Reservation::LocksNow);
        assert!(a.locked);
        assert_eq!(reserve_attempt(&mut a, 3), Reservation::Locked);
        assert_eq!(a.failed_attempts, 3);
    }

    #[test]
    fn a_counted_wrong_password_locks_at_the_threshold_and_says_so_once() {
        let mut a = account();
        for expected in [LoginError::InvalidCredentials, LoginError::InvalidCredentials] {
            reserve_attempt(&mut a, 3);
            assert_eq!(record_failure(&mut a, Counted::Already, 3, AttemptResult::WrongPassword), Failure { locks_now: false, answer: expected });
        }
        reserve_attempt(&mut a, 3);
        assert_eq!(record_failure(&mut a, Counted::Already, 3, AttemptResult::WrongPassword), Failure { locks_now: true, answer: LoginError::Locked });
        assert_eq!(record_failure(&mut a, Counted::No, 3, AttemptResult::WrongCode), Failure { locks_now: false, answer: LoginError::Locked });
    }

    #[test]
    fn wrong_codes_count_towards_the_same_lock() {
        let mut a = account();
        a.failed_attempts = 1;
        assert_eq!(record_failure(&mut a, Counted::No, 3, AttemptResult::WrongCode).answer, LoginError::WrongCode);
        assert_eq!(record_failure(&mut a, Counted::No, 3, AttemptResult::WrongCode).answer, LoginError::Locked);
    }

    #[test]
    fn success_resets_the_counter_unless_locked_meanwhile() {
        let mut a = account();
        a.failed_attempts = 2;
        assert_eq!(succeed(&mut a), Ok(()));
        assert_eq!(a.failed_attempts, 0);
        a.locked = true;
        assert_eq!(succeed(&mut a), Err(LoginError::Locked));
    }

    #[test]
    fn a_confirmed_phone_with_sms_on_requires_the_second_factor() {
        let mut a = account();
        assert_eq!(after_password(&a), PasswordAccepted::SignedIn);
        a.phone = Some(shared::domain::Phone::parse("+79165551234").unwrap());
        a.phone_confirmed = true;
        a.mfa.sms = true;
        assert_eq!(after_password(&a), PasswordAccepted::SecondFactor(vec![MfaMethod::Sms]));
        assert_eq!(amr(Some(MfaMethod::Sms)), ["pwd", "sms"]);
        assert_eq!(amr(Some(MfaMethod::BackupCode)), ["pwd", "otp"]);
    }

    #[test]
    fn the_new_login_notice_goes_to_the_confirmed_email_only() {
        let mut a = account();
        assert!(new_login_notice(&a, DeviceType::Desktop, "127.0.0.1").is_some());
        a.email_confirmed = false;
        assert!(new_login_notice(&a, DeviceType::Desktop, "127.0.0.1").is_none());
    }
}

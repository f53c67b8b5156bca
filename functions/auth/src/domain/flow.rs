//! One-time-code flows (registration, login second factor, recovery): opening one, judging a
//! code, resending. Decoy flows (a known contact at registration, an unknown login at
//! recovery) go through exactly the same decisions and never complete.

use chrono::{DateTime, Duration, Utc};

use shared::events::{Destination, EventPayload, OtpPurpose};

use crate::secrets;
use crate::store::{Flow, FlowKind};

/// Why a flow step was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// Unknown, finished, foreign or voided: all look like an expired code.
    #[error("no such flow")]
    NotFound,
    #[error("the code expired")]
    Expired,
    #[error("the flow's code attempts are spent")]
    AttemptsExceeded,
    #[error("wrong code")]
    InvalidCode,
    /// A resend sooner than the resend interval; seconds to wait.
    #[error("resend too soon")]
    ResendTooSoon(u64),
    /// The flow sends no code (a TOTP-only login).
    #[error("this flow sends no code")]
    ResendUnavailable,
    /// The contact was registered by another flow meanwhile.
    #[error("already registered")]
    AlreadyRegistered,
}

/// A freshly drawn code and the event that delivers it.
pub struct Issued {
    pub code_hash: String,
    pub event: EventPayload,
}

impl FlowKind {
    pub fn purpose(self) -> OtpPurpose {
        match self {
            Self::Registration | Self::RegistrationDecoy => OtpPurpose::Registration,
            Self::LoginMfa => OtpPurpose::Login,
            Self::Recovery | Self::RecoveryDecoy => OtpPurpose::Recovery,
        }
    }

    /// Whether a code really goes out (decoys send none).
    pub fn sends_code(self) -> bool {
        matches!(self, Self::Registration | Self::Recovery | Self::LoginMfa)
    }

    /// Recovery answers never name a channel: it would tell a real account from a decoy.
    pub fn names_channel(self) -> bool {
        !matches!(self, Self::Recovery | Self::RecoveryDecoy)
    }
}

impl Flow {
    /// A new flow of `kind` whose code (if it sends one) goes to `destination`; answers the
    /// flow and the code's delivery event.
    pub fn open(
        flow_id: String,
        kind: FlowKind,
        user_id: Option<String>,
        destination: Option<Destination>,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> (Self, Option<EventPayload>) {
        let mut flow = Self {
            flow_id,
            kind,
            user_id,
            destination,
            code_hash: None,
            wrong_attempts: 0,
            code_issued_at: now,
            expires_at: now + ttl,
            password_hash: None,
            methods: Vec::new(),
            limit_key: None,
        };
        let event = flow.issue_code(kind.sends_code()).map(|issued| issued.event);
        (flow, event)
    }

    /// Draws a new code when `sends` and there is somewhere to send it; the flow keeps its hash.
    fn issue_code(&mut self, sends: bool) -> Option<Issued> {
        let destination = self.destination.clone().filter(|_| sends)?;
        let code = secrets::new_code();
        let issued = Issued {
            code_hash: secrets::code_hash(&self.flow_id, &code),
            event: EventPayload::OtpIssued { destination, code, purpose: self.kind.purpose(), expires_at: self.expires_at },
        };
        self.code_hash = Some(issued.code_hash.clone());
        Some(issued)
    }

    /// Counts one attempt at `now` as `wrong` says, unless the code expired or its attempts are
    /// spent; answers whether it was wrong. The caller writes the flow before answering, so
    /// an attempt is counted before it is judged to the client.
    pub fn count_attempt(&mut self, now: DateTime<Utc>, max_attempts: u32, wrong: impl FnOnce(&Self) -> bool) -> Result<bool, FlowError> {
        if now > self.expires_at {
            return Err(FlowError::Expired);
        }
        if self.wrong_attempts >= max_attempts {
            return Err(FlowError::AttemptsExceeded);
        }
        let wrong = wrong(self);
        self.wrong_attempts += u32::from(wrong);
        Ok(wrong)
    }

    /// Whether `code` is this flow's current code (constant time; a decoy's never is).
    pub fn code_matches(&self, code: &str) -> bool {
        let presented = secrets::code_hash(&self.flow_id, code.trim());
        self.code_hash.as_deref().is_some_and(|h| secrets::ct_eq(h, &presented))
    }

    /// The answer to a wrong code counted on this flow: its last allowed attempt kills it.
    pub fn wrong_code(&self, max_attempts: u32) -> FlowError {
        if self.wrong_attempts >= max_attempts { FlowError::AttemptsExceeded } else { FlowError::InvalidCode }
    }

    /// A second factor checked outside the flow (TOTP, backup code) may be tried while the code lives.
    pub fn alive(&self, now: DateTime<Utc>) -> Result<(), FlowError> {
        if now > self.expires_at { Err(FlowError::Expired) } else { Ok(()) }
    }

    /// A login flow opened before `valid_from` (a password change or recovery since the
    /// password step) is void.
    pub fn opened_before(&self, valid_from: Option<DateTime<Utc>>) -> bool {
        let opened_at: DateTime<Utc> = ulid::Ulid::from_string(&self.flow_id).map(|id| id.datetime().into()).unwrap_or(self.code_issued_at);
        valid_from.is_some_and(|from| opened_at < from)
    }

    /// May a new code be asked for at `now`? Not for a flow that sends none, nor sooner than `interval`.
    pub fn may_resend(&self, now: DateTime<Utc>, interval: Duration) -> Result<(), FlowError> {
        if self.kind == FlowKind::LoginMfa && self.destination.is_none() {
            return Err(FlowError::ResendUnavailable);
        }
        let resend_at = self.code_issued_at + interval;
        if now < resend_at {
            return Err(FlowError::ResendTooSoon((resend_at - now).num_seconds().max(1) as u64));
        }
        Ok(())
    }

    /// Restarts the code at `now`: a new expiry, attempts back to zero, and a new code when
    /// `sends` (else the current code, if any, stays).
    pub fn resend(&mut self, now: DateTime<Utc>, ttl: Duration, sends: bool) -> Option<EventPayload> {
        self.code_issued_at = now;
        self.expires_at = now + ttl;
        self.wrong_attempts = 0;
        self.issue_code(sends).map(|issued| issued.event)
    }

    /// Withholds the code (an exhausted budget): the flow goes on without one.
    pub fn withhold_code(&mut self) {
        self.code_hash = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Email;
    use shared::ports::Ticker;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn flow(kind: FlowKind) -> (Flow, Option<EventPayload>) {
        let (ticker, _) = Ticker::fixed(at());
        let to = Destination::Email(Email::parse("anna@example.ru").unwrap());
        Flow::open(ticker.id(), kind, None, Some(to), ticker.now(), Duration::minutes(5))
    }

    fn code_of(event: Option<EventPayload>) -> String {
        match event {
            Some(EventPayload::OtpIssued { code, .. }) => code,
            other => panic!("no code: {other:?}"),
        }
    }

    #[test]
    fn a_registration_flow_sends_a_code_that_matches_and_a_decoy_sends_none() {
        let (real, event) = flow(FlowKind::Registration);
        let code = code_of(event);
        assert!(real.code_matches(&code));
        assert!(!real.code_matches("not-it"));
        let (decoy, event) = flow(FlowKind::RegistrationDecoy);
        assert!(event.is_none());
        assert!(!decoy.code_matches(&code));
    }

    #[test]
    fn attempts_are_counted_until_spent_then_refused_even_for_the_right_code() {
        let (mut f, event) = flow(FlowKind::Registration);
        let code = code_of(event);
        for n in 1..=5 {
            assert_eq!(f.count_attempt(at(), 5, |f| !f.code_matches("000000x")), Ok(true));
            assert_eq!(f.wrong_code(5), if n < 5 { FlowError::InvalidCode } else { FlowError::AttemptsExceeded });
        }
        assert_eq!(f.count_attempt(at(), 5, |f| !f.code_matches(&code)), Err(FlowError::AttemptsExceeded));
    }

    #[test]
    fn an_expired_code_is_refused_before_it_is_judged() {
        let (mut f, _) = flow(FlowKind::Registration);
        let judged = std::cell::Cell::new(false);
        let later = at() + Duration::minutes(6);
        assert_eq!(f.count_attempt(later, 5, |_| judged.replace(true)), Err(FlowError::Expired));
        assert!(!judged.get());
    }

    #[test]
    fn a_resend_waits_for_its_interval_and_restarts_the_code() {
        let (mut f, first) = flow(FlowKind::Registration);
        let first = code_of(first);
        assert_eq!(f.may_resend(at() + Duration::seconds(20), Duration::seconds(60)), Err(FlowError::ResendTooSoon(40)));
        let later = at() + Duration::seconds(60);
        f.wrong_attempts = 3;
        assert_eq!(f.may_resend(later, Duration::seconds(60)), Ok(()));
        let second = code_of(f.resend(later, Duration::minutes(5), true));
        assert_eq!((f.wrong_attempts, f.expires_at), (0, later + Duration::minutes(5)));
        assert!(f.code_matches(&second) && (first == second || !f.code_matches(&first)));
    }

    #[test]
    fn a_totp_only_login_flow_has_nothing_to_resend() {
        let (ticker, _) = Ticker::fixed(at());
        let (f, event) = Flow::open(ticker.id(), FlowKind::LoginMfa, Some("u".into()), None, at(), Duration::minutes(5));
        assert!(event.is_none());
        assert_eq!(f.may_resend(at() + Duration::hours(1), Duration::seconds(60)), Err(FlowError::ResendUnavailable));
    }
}

//! The auth function's problem answers (SPEC §3), built once here: the domain errors of
//! `crate::domain` and the few answers that belong to HTTP alone.

use axum::http::StatusCode;
use shared::http::ApiError;
use shared::persist::{Contended, UpdateError};
use shared::ports::KvError;

use crate::domain::{FlowError, LoginError, MfaError};

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "Неверный логин или пароль"),
            LoginError::Locked => {
                ApiError::new(StatusCode::LOCKED, "account_locked", "Учётная запись заблокирована. Восстановите доступ, чтобы разблокировать её")
            }
            LoginError::WrongCode => FlowError::InvalidCode.into(),
            LoginError::UnsupportedMethod => ApiError::field("method", "unsupported_method", "Этот способ подтверждения недоступен для учётной записи"),
        }
    }
}

impl From<FlowError> for ApiError {
    fn from(error: FlowError) -> Self {
        match error {
            // Unknown, finished and foreign flows look like an expired code.
            FlowError::NotFound | FlowError::Expired => ApiError::new(StatusCode::GONE, "otp_expired", "Срок действия кода истёк, запросите новый"),
            FlowError::AttemptsExceeded => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "otp_attempts_exceeded", "Превышено число попыток ввода кода, запросите новый")
            }
            FlowError::InvalidCode => ApiError::new(StatusCode::BAD_REQUEST, "otp_invalid", "Неверный код подтверждения"),
            FlowError::ResendTooSoon(seconds) => ApiError::rate_limited(seconds),
            FlowError::ResendUnavailable => conflict("resend_unavailable", "Для этого способа подтверждения код не отправляется"),
            FlowError::AlreadyRegistered => {
                conflict("already_registered", "Этот контакт уже зарегистрирован, воспользуйтесь входом или восстановлением доступа")
            }
        }
    }
}

impl From<MfaError> for ApiError {
    fn from(error: MfaError) -> Self {
        match error {
            MfaError::TotpAlreadyEnabled => {
                conflict("totp_already_enabled", "Приложение-аутентификатор уже подключено; чтобы сменить его, сначала отключите текущее")
            }
            MfaError::TotpNotStarted => conflict("totp_not_started", "Сначала начните подключение приложения-аутентификатора"),
            MfaError::TotpNotEnabled => conflict("totp_not_enabled", "Приложение-аутентификатор не подключено"),
            MfaError::LevelRequiresMfa => ApiError::new(StatusCode::FORBIDDEN, "level_requires_mfa", "Для подтверждённой учётной записи нужен второй фактор"),
            MfaError::PhoneNotConfirmed => conflict("phone_not_confirmed", "Для входа по SMS нужен подтверждённый номер телефона"),
            MfaError::InvalidCode => FlowError::InvalidCode.into(),
        }
    }
}

/// The error of a counted write (an attempt counter, a budget): one that kept losing races
/// answers 429 `rate_limited`, as the contract of every counting route declares, so a guess
/// that could not be counted is never judged.
#[derive(Debug)]
pub struct CounterError(pub ApiError);

impl From<Contended> for CounterError {
    fn from(_: Contended) -> Self {
        Self(ApiError::rate_limited(1))
    }
}

macro_rules! counter_error_from {
    ($($error:ty),+) => {$(
        impl From<$error> for CounterError {
            fn from(error: $error) -> Self {
                Self(error.into())
            }
        }
    )+};
}

counter_error_from!(ApiError, KvError, FlowError, LoginError);

impl From<CounterError> for ApiError {
    fn from(error: CounterError) -> Self {
        error.0
    }
}

/// The outcome of a counted `persist::update`: its refusal apart (`Ok(Err(_))`), a counter too
/// hot to write 429, store failures as usual.
pub fn counted<T, E>(result: Result<T, UpdateError<E>>) -> Result<Result<T, E>, ApiError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(UpdateError::Refused(refusal)) => Ok(Err(refusal)),
        Err(UpdateError::Contended(c)) => Err(CounterError::from(c).into()),
        Err(UpdateError::Kv(e)) => Err(e.into()),
    }
}

pub fn consent_required() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "consent_required", "Необходимо принять условия использования и согласие на обработку персональных данных")
}

pub fn token_reused() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "token_reused", "Токен обновления уже использован; сеанс завершён")
}

pub fn session_expired() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "session_expired", "Сеанс истёк, войдите снова")
}

pub fn invalid_refresh_token() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "Токен обновления недействителен")
}

pub fn wrong_current_password() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "invalid_credentials", "Текущий пароль указан неверно")
}

fn conflict(code: &'static str, detail: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, detail)
}

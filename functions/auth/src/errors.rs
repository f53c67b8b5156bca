//! The auth function's problem codes (SPEC §3), built once here.

use axum::http::StatusCode;
use shared::http::ApiError;

pub fn invalid_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "Неверный логин или пароль")
}

pub fn account_locked() -> ApiError {
    ApiError::new(StatusCode::LOCKED, "account_locked", "Учётная запись заблокирована. Восстановите доступ, чтобы разблокировать её")
}

pub fn consent_required() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "consent_required", "Необходимо принять условия использования и согласие на обработку персональных данных")
}

pub fn otp_invalid() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "otp_invalid", "Неверный код подтверждения")
}

pub fn otp_expired() -> ApiError {
    ApiError::new(StatusCode::GONE, "otp_expired", "Срок действия кода истёк, запросите новый")
}

pub fn otp_attempts_exceeded() -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "otp_attempts_exceeded", "Превышено число попыток ввода кода, запросите новый")
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

pub fn level_requires_mfa() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "level_requires_mfa", "Для подтверждённой учётной записи нужен второй фактор")
}

pub fn wrong_current_password() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "invalid_credentials", "Текущий пароль указан неверно")
}

pub fn flow_not_found() -> ApiError {
    // Unknown, finished and foreign flows look alike.
    ApiError::new(StatusCode::GONE, "otp_expired", "Срок действия кода истёк, запросите новый")
}

pub fn conflict(code: &'static str, detail: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, detail)
}

//! The applications function's problem codes (SPEC §4), built once here.

use axum::http::StatusCode;
use shared::domain::FieldError;
use shared::http::ApiError;

use crate::status::ApplicationStatus;

pub fn invalid_transition(from: ApplicationStatus, to: ApplicationStatus) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "invalid_transition", format!("Заявление в статусе «{}» нельзя перевести в статус «{}»", from.title(), to.title()))
}

pub fn not_a_draft(status: ApplicationStatus) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "invalid_transition", format!("Изменять можно только черновик; заявление в статусе «{}»", status.title()))
}

pub fn draft_has_no_thread() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "invalid_state", "Переписка с ведомством доступна после отправки заявления")
}

pub fn precondition_failed() -> ApiError {
    ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", "Заявление изменилось с момента последнего чтения; обновите его и повторите действие")
}

pub fn level_insufficient(required: shared::identity::Level) -> ApiError {
    let level = match required {
        shared::identity::Level::Simplified => "упрощённая",
        shared::identity::Level::Standard => "стандартная",
        shared::identity::Level::Confirmed => "подтверждённая",
    };
    ApiError::new(StatusCode::FORBIDDEN, "level_insufficient", format!("Для этой услуги нужна {level} учётная запись"))
}

/// 422 `validation_failed`: the request is well-formed but the application cannot proceed.
pub fn unprocessable(errors: Vec<FieldError>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Заявление содержит ошибки").with_errors(errors)
}

pub fn unprocessable_field(field: &str, code: &str, message: &str) -> ApiError {
    unprocessable(vec![FieldError::new(field, code, message)])
}

pub fn busy() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "concurrent_update", "Запрос конфликтует с другим изменением, повторите попытку")
}

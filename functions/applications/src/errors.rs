//! The applications function's problem codes (SPEC §4): every domain refusal is mapped to
//! problem+json here, once.

use axum::http::StatusCode;
use shared::domain::FieldError;
use shared::http::ApiError;
use shared::vocabulary::Level;

use crate::domain::{ChangeError, LevelError, SubmitError, Transition};

impl From<Transition> for ApiError {
    fn from(Transition { from, to }: Transition) -> Self {
        ApiError::new(StatusCode::CONFLICT, "invalid_transition", format!("Заявление в статусе «{}» нельзя перевести в статус «{}»", from.title(), to.title()))
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Transition(transition) => transition.into(),
            SubmitError::ServiceUnavailable => unprocessable_field("/service_code", "service_unavailable", "Услуга больше не оказывается"),
            SubmitError::LevelInsufficient(required) => {
                let level = match required {
                    Level::Simplified => "упрощённая",
                    Level::Standard => "стандартная",
                    Level::Confirmed => "подтверждённая",
                };
                ApiError::new(StatusCode::FORBIDDEN, "level_insufficient", format!("Для этой услуги нужна {level} учётная запись"))
            }
            SubmitError::Incomplete(problems) => unprocessable(problems),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Transition(transition) => transition.into(),
            ChangeError::NotADraft(status) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_transition", format!("Изменять можно только черновик; заявление в статусе «{}»", status.title()))
            }
            ChangeError::NoThread => ApiError::new(StatusCode::CONFLICT, "invalid_state", "Переписка с ведомством доступна после отправки заявления"),
            ChangeError::Unprocessable(problems) => unprocessable(problems),
        }
    }
}

impl From<LevelError> for ApiError {
    fn from(error: LevelError) -> Self {
        match error {
            LevelError::NoProfile => unprocessable_field("/data/user_id", "no_profile", "Гражданин не заполнил СНИЛС и паспортные данные"),
            LevelError::Outdated => {
                ApiError::new(StatusCode::CONFLICT, "verification_outdated", "Решение относится не к последнему запросу на проверку данных")
            }
            LevelError::Conflict { from, to } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_transition", format!("Уровень учётной записи {} нельзя сменить на {}", from.as_str(), to.as_str()))
            }
        }
    }
}

pub fn precondition_failed() -> ApiError {
    ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", "Заявление изменилось с момента последнего чтения; обновите его и повторите действие")
}

/// 422 `validation_failed`: the request is well-formed but the application cannot proceed.
pub fn unprocessable(errors: Vec<FieldError>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Заявление содержит ошибки").with_errors(errors)
}

pub fn unprocessable_field(field: &str, code: &str, message: &str) -> ApiError {
    unprocessable(vec![FieldError::new(field, code, message)])
}

//! The documents function's problem codes (SPEC §5): every domain refusal is mapped to
//! problem+json here, once.

use axum::http::StatusCode;
use shared::http::ApiError;

use crate::domain::{RestoreError, ShareError, SlotError};

const MIB: u64 = 1024 * 1024;

impl From<SlotError> for ApiError {
    fn from(error: SlotError) -> Self {
        match error {
            SlotError::UnsupportedMediaType => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Этот формат файла здесь не принимается")
            }
            SlotError::TooLarge { limit } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("Файл больше допустимого размера ({} МБ)", limit / MIB))
            }
            // SPEC names only `payload_too_large`; a full quota gets its own code so a frontend
            // can tell "pick a smaller file" from "delete something first".
            SlotError::QuotaExceeded { quota_bytes } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "quota_exceeded",
                format!("Превышен объём хранилища документов ({} МБ); удалите ненужные файлы", quota_bytes / MIB),
            ),
        }
    }
}

impl From<RestoreError> for ApiError {
    fn from(error: RestoreError) -> Self {
        match error {
            RestoreError::NotDeleted => ApiError::new(StatusCode::CONFLICT, "document_not_deleted", "Документ не удалён"),
            RestoreError::Gone => ApiError::not_found(),
        }
    }
}

impl From<ShareError> for ApiError {
    fn from(error: ShareError) -> Self {
        match error {
            ShareError::LifetimeOutOfRange { max_seconds } => ApiError::validation(vec![shared::domain::FieldError::new(
                "expires_in_seconds",
                "out_of_range",
                format!("Срок действия ссылки: от 1 до {max_seconds} секунд (7 дней)"),
            )]),
            ShareError::NotAvailable => ApiError::new(StatusCode::CONFLICT, "document_not_available", "Документ ещё не проверен или отклонён"),
        }
    }
}

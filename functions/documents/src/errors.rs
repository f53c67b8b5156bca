//! The documents function's errors: every domain refusal mapped to problem+json (SPEC §5)
//! here, once, and why a background job left an item for later.

use axum::http::StatusCode;
use shared::http::ApiError;
use shared::persist::Contended;
use shared::ports::{KvError, ObjectStoreError};
use shared::worker::HandlerError;

use crate::domain::{RestoreError, ShareError, SlotError};

const MIB: u64 = 1024 * 1024;

/// Why verification or the purge could not finish one object now; the next delivery or run
/// tries again.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("key-value store: {0}")]
    Kv(#[from] KvError),
    #[error("object store: {0}")]
    Objects(#[from] ObjectStoreError),
    #[error("object shrank while it was being hashed")]
    Shrank,
    #[error("concurrent updates of the document")]
    Contended(#[from] Contended),
    /// A one-shot write lost its race (the purge does not retry: the entry waits for the next run).
    #[error("document changed meanwhile")]
    Changed,
}

impl From<JobError> for HandlerError {
    fn from(error: JobError) -> Self {
        HandlerError::Retry(error.to_string())
    }
}

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

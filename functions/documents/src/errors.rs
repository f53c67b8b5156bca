//! The documents function's problem codes (SPEC §5), built once here.

use axum::http::StatusCode;
use shared::http::ApiError;

pub fn payload_too_large(limit_bytes: u64) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("Файл больше допустимого размера ({} МБ)", limit_bytes / (1024 * 1024)))
}

/// SPEC names only `payload_too_large`; a full quota gets its own code so a frontend can tell
/// "pick a smaller file" from "delete something first".
pub fn quota_exceeded(quota_bytes: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
        format!("Превышен объём хранилища документов ({} МБ); удалите ненужные файлы", quota_bytes / (1024 * 1024)),
    )
}

pub fn unsupported_media_type() -> ApiError {
    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Этот формат файла здесь не принимается")
}

pub fn not_available() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "document_not_available", "Документ ещё не проверен или отклонён")
}

pub fn not_deleted() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "document_not_deleted", "Документ не удалён")
}

pub fn busy() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "concurrent_update", "Запрос конфликтует с другим изменением, повторите попытку")
}
